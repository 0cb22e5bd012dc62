"""Helpers shared by the distillation losses (torch only, no mmdet.models).

Boxes are x1, y1, x2, y2 in input pixels; feature maps are (N, C, H, W) and
their stride is derived from the batch input shape and the map size, so any
input resolution works.
"""
import functools
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..task_modules.grid import (  # noqa: F401 (centre_cells: for the losses)
    cell_grid,
    centre_cells,
    map_stride,
    point_rows_cols,
)
from ..task_modules.yolo_decode import decode_yolov5, decode_yolox

Maps = Union[Tensor, Sequence[Tensor]]


def as_level_list(preds_S: Maps, preds_T: Maps,
                  name: str) -> Tuple[List[Tensor], List[Tensor]]:
    """Turn a Tensor or a list/tuple of per-level Tensors into two lists.

    Raises:
        ValueError: naming the loss when the level counts differ.
    """
    if isinstance(preds_S, Tensor):
        preds_S = [preds_S]
    if isinstance(preds_T, Tensor):
        preds_T = [preds_T]
    preds_S, preds_T = list(preds_S), list(preds_T)
    if len(preds_S) != len(preds_T) or not preds_S:
        raise ValueError(f'{name}: preds_S has {len(preds_S)} levels and '
                         f'preds_T {len(preds_T)}; they must match and be >0')
    return preds_S, preds_T


def check_same_shape(s: Tensor, t: Tensor, name: str) -> None:
    """Raise a ValueError naming the loss when two maps differ in shape."""
    if s.shape != t.shape:
        raise ValueError(
            f'{name}: student map {tuple(s.shape)} and teacher map '
            f'{tuple(t.shape)} differ; put a connector on the student')


#: The smallest norm a vector is divided by (:func:`unit_vectors` and the
#: cosines of ``IDResponseConsistencyLoss``).
NORM_EPS = 1e-12


def channel_sum_squares(x: Tensor, chunk: int = 64) -> Tensor:
    """The sum of squares of (N, D, P) ``x`` over its channels (dim 1), in
    blocks of ``chunk`` channels.

    The same as ``x.pow(2).sum(1)`` (equal bit for bit when D <= ``chunk``;
    otherwise up to rounding), without the whole (N, D, P) square in memory:
    on one CPU thread, 2 x 512 x 10336 (a 512-channel map at 1088x608,
    stride 8) took 20 ms as one square and sum and 2.7-3 ms in blocks (the
    square of the whole map leaves the cache); small maps are one block.
    """
    out = x[:, :chunk].pow(2).sum(1)
    for start in range(chunk, x.shape[1], chunk):
        out += x[:, start:start + chunk].pow(2).sum(1)
    return out


def channel_cosines(x: Tensor, y: Tensor, eps: float = NORM_EPS,
                    chunk: int = 64) -> Tensor:
    """(N, P) cosines of the (N, D, P) maps ``x`` and ``y`` at each
    position, norms clamped at ``eps`` as :func:`unit_vectors` clamps them:
    ``(unit_vectors(x, 1) * unit_vectors(y, 1)).sum(1)`` up to rounding,
    without normalised copies of the maps; sums over blocks of ``chunk``
    channels (see :func:`channel_sum_squares`)."""
    dot = (x[:, :chunk] * y[:, :chunk]).sum(1)
    for start in range(chunk, x.shape[1], chunk):
        dot += (x[:, start:start + chunk] * y[:, start:start + chunk]).sum(1)
    floor = eps * eps
    return dot * channel_sum_squares(x, chunk).clamp_min(floor).rsqrt() * \
        channel_sum_squares(y, chunk).clamp_min(floor).rsqrt()


def unit_vectors(x: Tensor, dim: int = 1, eps: float = NORM_EPS) -> Tensor:
    """``x`` divided by its L2 norm along ``dim`` (at least ``eps``), as
    ``F.normalize``; several times faster than it when ``dim`` is not the
    innermost one (the channels of (N, C, H*W) maps).

    Args:
        x: any shape.
        dim: the dimension of the vectors.
        eps: the smallest norm divided by.

    Returns:
        Tensor: of the shape of ``x``.
    """
    # clamped before the square root: sqrt's gradient at 0 is infinite, and
    # a zero vector (an all-ReLU-off embedding) would make it NaN
    return x / x.pow(2).sum(dim, keepdim=True).clamp_min(eps * eps).sqrt()


def frame_index(gt_bboxes: Sequence[Tensor],
                device: torch.device) -> Tuple[Tensor, Tensor]:
    """All frames' boxes in one tensor, and the frame of each.

    Args:
        gt_bboxes: per frame (K_i, 4) boxes.
        device: where the outputs go.

    Returns:
        tuple: boxes (K, 4) float, K = sum K_i, frame by frame; frame
        (K,) long, the index i of each box's frame.
    """
    counts = torch.tensor([len(b) for b in gt_bboxes], device=device)
    boxes = [b.to(device).float().reshape(-1, 4) for b in gt_bboxes]
    boxes = torch.cat(boxes) if boxes else torch.zeros(0, 4, device=device)
    frame = torch.repeat_interleave(
        torch.arange(len(gt_bboxes), device=device), counts)
    return boxes, frame


def zero_with_grad(*tensors: Tensor) -> Tensor:
    """A scalar 0 that stays in the graph of the given (student) tensors."""
    out = tensors[0].sum() * 0
    for t in tensors[1:]:
        out = out + t.sum() * 0
    return out


def frame_slots(frame: Tensor, n: int) -> Tuple[Tensor, int]:
    """The slot of each item in its frame's row of an (N, K_max) layout.

    Args:
        frame: (K,) the frame of each item, sorted (items of one frame
            together, frames in order).
        n: the number of frames N.

    Returns:
        tuple: (K,) slots 0..K_i-1 within each frame, and K_max (at least
        1).
    """
    counts = torch.bincount(frame, minlength=n)
    slot = torch.arange(len(frame), device=frame.device) - (
        torch.cumsum(counts, 0) - counts)[frame]
    return slot, max(int(counts.max()) if len(counts) else 0, 1)


def box_cell_axes(bboxes: Tensor, feat_hw: Sequence[int],
                  batch_input_shape: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """The rows and the columns of the cells covered by each box (the cells
    whose centre lies inside it): :func:`box_cell_masks` is their outer
    product.

    A box too small to cover any cell centre gets the row and the column of
    the cell holding its own centre, so that no target disappears from the
    map.

    Args:
        bboxes: (K, 4) in input pixels.
        feat_hw: (H, W).
        batch_input_shape: (H_in, W_in).

    Returns:
        tuple: (K, H) and (K, W) float 0/1 masks.
    """
    h, w = int(feat_hw[0]), int(feat_hw[1])
    sx, sy = map_stride(feat_hw, batch_input_shape)
    xs, ys, cols, rows = _cell_axes(h, w, sx, sy, bboxes.device,
                                    torch.is_inference_mode_enabled())
    b = bboxes.float()
    in_x = (xs >= b[:, 0:1]) & (xs <= b[:, 2:3])  # (K, W)
    in_y = (ys >= b[:, 1:2]) & (ys <= b[:, 3:4])  # (K, H)
    # a box covering no cell centre takes the row and the column of its
    # centre's cell (centre_cells), computed for every box and kept where
    # needed: no host sync, no masked assignment
    empty = ~(in_x.any(1) & in_y.any(1))[:, None]
    row, col = point_rows_cols((b[:, :2] + b[:, 2:4]) / 2, (h, w),
                               batch_input_shape)
    in_y = torch.where(empty, rows == row[:, None], in_y)
    in_x = torch.where(empty, cols == col[:, None], in_x)
    return in_y.float(), in_x.float()


@functools.lru_cache(maxsize=64)
def _cell_axes(h: int, w: int, sx: float, sy: float, device: torch.device,
               inference: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(1, W) and (1, H) cell centres in input pixels, (1, W) and (1, H)
    column and row numbers of a map (cached: read only; ``inference`` is
    part of the key, as an inference-mode tensor cannot meet autograd)."""
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * sx
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * sy
    return (xs[None], ys[None], torch.arange(w, device=device)[None],
            torch.arange(h, device=device)[None])


def box_cell_masks(bboxes: Tensor, feat_hw: Sequence[int],
                   batch_input_shape: Sequence[int]) -> Tensor:
    """Cells covered by each box: those whose centre lies inside the box.

    A box too small to cover any cell centre gets the cell holding its own
    centre, so that no target disappears from the map.

    Args:
        bboxes: (K, 4) in input pixels.
        feat_hw: (H, W).
        batch_input_shape: (H_in, W_in).

    Returns:
        Tensor: (K, H, W) float 0/1 masks.
    """
    rows, cols = box_cell_axes(bboxes, feat_hw, batch_input_shape)
    return rows[:, :, None] * cols[:, None, :]


def box_iou_giou(b1: Tensor, b2: Tensor, eps: float = 1e-7,
                 giou: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
    """Element-wise IoU and GIoU of two box sets of the same shape (..., 4)
    (None for the GIoU with ``giou=False``: its enclosing box not made)."""
    area1 = (b1[..., 2] - b1[..., 0]).clamp(min=0) * (
        b1[..., 3] - b1[..., 1]).clamp(min=0)
    area2 = (b2[..., 2] - b2[..., 0]).clamp(min=0) * (
        b2[..., 3] - b2[..., 1]).clamp(min=0)
    lt = torch.max(b1[..., :2], b2[..., :2])
    rb = torch.min(b1[..., 2:], b2[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area1 + area2 - inter + eps
    iou = inter / union
    if not giou:
        return iou, None
    lt_c = torch.min(b1[..., :2], b2[..., :2])
    rb_c = torch.max(b1[..., 2:], b2[..., 2:])
    hull = (rb_c - lt_c).clamp(min=0).prod(-1) + eps
    giou = iou - (hull - union) / hull
    return iou, giou


class YOLODecoder:
    """Decode raw YOLO head outputs into per-prior predictions.

    Built from the loss's ``decoder`` config: ``dict(type='yolov5',
    anchors=[[w, h, ...] per level], strides=[8, 16, 32], num_classes=1)``
    (CSTrack / YOLOv5 heads, preds = list of (N, A*(5+C), H_l, W_l)) or
    ``dict(type='yolox', strides=[8, 16, 32])`` (mmdet ``YOLOXHead``, preds =
    (cls_scores, bbox_preds, objectnesses), each a list of levels).

    Args:
        cfg: the decoder dict.
        owner: name of the loss, used in error messages.
    """

    def __init__(self, cfg: dict, owner: str) -> None:
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise ValueError(f'{owner}: `decoder` must be a dict with a type '
                             f"'yolov5' or 'yolox', got {cfg!r}")
        cfg = dict(cfg)
        self.type = cfg.pop('type')
        if self.type not in ('yolov5', 'yolox'):
            raise ValueError(f"{owner}: decoder.type must be 'yolov5' or "
                             f"'yolox', got {self.type!r}")
        if 'strides' not in cfg:
            raise ValueError(f'{owner}: decoder.strides is required')
        self.strides = [int(s) for s in cfg.pop('strides')]
        if self.type == 'yolov5':
            if 'anchors' not in cfg:
                raise ValueError(f'{owner}: decoder.anchors is required for '
                                 "type='yolov5'")
            self.anchors = [list(a) for a in cfg.pop('anchors')]
            if len(self.anchors) != len(self.strides):
                raise ValueError(
                    f'{owner}: decoder.anchors has {len(self.anchors)} '
                    f'levels but decoder.strides {len(self.strides)}')
            self.num_classes = int(cfg.pop('num_classes', 1))
        if cfg:
            raise ValueError(f'{owner}: unknown decoder keys {sorted(cfg)}')
        self.owner = owner

    def _levels(self, preds) -> List[Tensor]:
        return list(preds) if self.type == 'yolov5' else list(preds[2])

    def __call__(self, preds) -> Tuple[Tensor, Tensor, Tensor]:
        """Returns boxes (N, M, 4), objectness logits (N, M), class logits
        (N, M, C)."""
        if self.type == 'yolov5':
            if len(preds) != len(self.strides):
                raise ValueError(f'{self.owner}: got {len(preds)} head levels '
                                 f'but decoder.strides has '
                                 f'{len(self.strides)}')
            return decode_yolov5(preds, self.anchors, self.strides,
                                 self.num_classes)
        if len(preds) != 3:
            raise ValueError(f'{self.owner}: yolox preds must be the tuple '
                             '(cls_scores, bbox_preds, objectnesses)')
        cls_scores, bbox_preds, objectnesses = preds
        return decode_yolox(cls_scores, bbox_preds, objectnesses,
                            self.strides)

    def prior_centres(self, preds) -> Tensor:
        """(M, 2) x, y centre in input pixels of each prior's grid cell, in
        the decoders' order (level, anchor, row, column)."""
        out = []
        for lvl, (pred, stride) in enumerate(
                zip(self._levels(preds), self.strides)):
            h, w = pred.shape[-2:]
            xs, ys = cell_grid(h, w, pred.device, torch.float32)
            c = torch.stack([(xs + 0.5) * stride, (ys + 0.5) * stride],
                            -1).view(-1, 2)
            if self.type == 'yolov5':
                c = c.repeat(len(self.anchors[lvl]) // 2, 1)
            out.append(c)
        return torch.cat(out, 0)


def detach_preds(preds):
    """Detach a Tensor or a (nested) list/tuple of Tensors."""
    if isinstance(preds, Tensor):
        return preds.detach()
    return type(preds)(detach_preds(p) for p in preds)

