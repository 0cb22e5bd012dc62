"""Decoding of YOLO-family dense head outputs into per-anchor predictions.

One function per head family; the CSTrack head, the tracker and the
response-distillation losses all use these, so that teacher and student are
decoded identically.
"""
import functools
from typing import Sequence, Tuple

import torch
from torch import Tensor

from .grid import cell_grid


@functools.lru_cache(maxsize=32)
def _yolov5_priors(shapes: Tuple[Tuple[int, int], ...],
                   anchors: Tuple[Tuple[float, ...], ...],
                   strides: Tuple[int, ...], device: torch.device,
                   dtype: torch.dtype,
                   inference: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """The constants of every prior of :func:`decode_yolov5`, in its order
    (level, anchor, row, column): cell (2, M) x, y; stride (M,); anchor
    (2, M) w, h. Cached per shapes, device, dtype and inference mode (an
    inference-mode tensor cannot be saved for a later backward); the
    callers only read them."""
    cells, steps, sizes = [], [], []
    for (h, w), anc, stride in zip(shapes, anchors, strides):
        a = len(anc) // 2
        xs, ys = cell_grid(h, w, device, dtype)
        cells.append(torch.stack([xs, ys]).reshape(2, 1, h * w).expand(
            2, a, h * w).reshape(2, -1))
        steps.append(torch.full((a * h * w, ), float(stride), device=device,
                                dtype=dtype))
        sizes.append(torch.tensor(anc, device=device, dtype=dtype).view(
            a, 2).t()[:, :, None].expand(2, a, h * w).reshape(2, -1))
    return torch.cat(cells, 1), torch.cat(steps), torch.cat(sizes, 1)


def decode_yolov5(preds: Sequence[Tensor],
                  anchors: Sequence[Sequence[float]],
                  strides: Sequence[int],
                  num_classes: int = 1) -> Tuple[Tensor, Tensor, Tensor]:
    """Decode YOLOv5 head maps.

    Per prior with raw outputs t at cell (i, j) of a level of stride s and
    anchor (a_w, a_h): centre ((2 sigma(t_x) - 0.5 + j) s,
    (2 sigma(t_y) - 0.5 + i) s), size ((2 sigma(t_w))^2 a_w,
    (2 sigma(t_h))^2 a_h). Every level is laid out as (N, 5+C, priors) and
    decoded in one pass (a few dozen tensor operations whatever the number
    of levels: the losses decode both heads at every training step).

    Args:
        preds: per level a tensor (N, A*(5+C), H_l, W_l); channels grouped by
            anchor, each group ordered x, y, w, h, objectness, class logits.
        anchors: per level a flat list [w1, h1, w2, h2, ...] of A anchors in
            input pixels.
        strides: per level the stride in input pixels.
        num_classes: C.

    Returns:
        tuple: boxes (N, M, 4) as x1, y1, x2, y2 in input pixels; objectness
        logits (N, M); class logits (N, M, C). M = sum_l A*H_l*W_l, ordered
        level, anchor, row, column.
    """
    raw, (cell, stride, size) = _yolov5_raw(preds, anchors, strides,
                                            num_classes)
    boxes = _yolov5_boxes(raw[:, :4], cell, stride, size, 1)
    return (boxes.transpose(1, 2).contiguous(), raw[:, 4].contiguous(),
            raw[:, 5:].transpose(1, 2).contiguous())


def _yolov5_raw(preds: Sequence[Tensor], anchors: Sequence[Sequence[float]],
                strides: Sequence[int], num_classes: int
                ) -> Tuple[Tensor, Tuple[Tensor, Tensor, Tensor]]:
    """Every level's outputs as one (N, 5+C, M) tensor, in the decoded
    order, and the priors' constants (:func:`_yolov5_priors`)."""
    ch = 5 + num_classes
    flat = []
    for pred, anc in zip(preds, anchors):
        n, _, h, w = pred.shape
        flat.append(pred.reshape(n, len(anc) // 2, ch, h * w).transpose(
            1, 2).reshape(n, ch, -1))
    raw = torch.cat(flat, 2) if len(flat) > 1 else flat[0]
    return raw, _yolov5_priors(
        tuple(tuple(p.shape[-2:]) for p in preds),
        tuple(tuple(float(v) for v in a) for a in anchors),
        tuple(int(s) for s in strides), raw.device, raw.dtype,
        torch.is_inference_mode_enabled())


def _yolov5_boxes(t: Tensor, cell: Tensor, stride: Tensor, size: Tensor,
                  dim: int) -> Tensor:
    """x1, y1, x2, y2 along ``dim`` from the raw x, y, w, h along ``dim``
    (the constants broadcast against the other dimensions)."""
    sig = t.sigmoid()
    xy, wh = sig.split(2, dim)
    centre = (xy * 2 - 0.5 + cell) * stride
    half = (wh * 2)**2 * size / 2
    return torch.cat([centre - half, centre + half], dim)


def decode_yolov5_at(preds: Sequence[Tensor],
                     anchors: Sequence[Sequence[float]],
                     strides: Sequence[int], num_classes: int, img: Tensor,
                     prior: Tensor) -> Tuple[Tensor, Tensor]:
    """Boxes (K, 4) and objectness logits (K,) of the priors ``prior`` of
    the images ``img`` (both (K,) long, indices into the output of
    :func:`decode_yolov5`), with the values of that decoding and a gradient
    that reaches ``preds`` through those K priors only: a loss that reads a
    few priors of a decoded map back-propagates through them alone.
    """
    return yolov5_boxes_at(
        _yolov5_flat(preds, anchors, strides, num_classes), img, prior)


def _yolov5_flat(preds: Sequence[Tensor], anchors: Sequence[Sequence[float]],
                 strides: Sequence[int], num_classes: int) -> tuple:
    """Each image's levels flattened end to end, (N, F) (one contiguous
    copy, none for one level: no transposed copy of the heads), and where
    the raw outputs of every prior sit in it (:func:`_yolov5_index`)."""
    n, ch = preds[0].shape[0], 5 + num_classes
    for p, anc in zip(preds, anchors):
        if p.shape[1] != len(anc) // 2 * ch:
            raise ValueError(
                f'YOLOv5 head level {tuple(p.shape)}: {p.shape[1]} channels, '
                f'expected {len(anc) // 2} anchors x (5 + {num_classes})')
    flat = [p.reshape(n, -1) for p in preds]
    flat = torch.cat(flat, 1) if len(flat) > 1 else flat[0]
    return flat, _yolov5_index(
        tuple(tuple(p.shape[-2:]) for p in preds),
        tuple(tuple(float(v) for v in a) for a in anchors),
        tuple(int(s) for s in strides), int(num_classes), flat.device,
        flat.dtype, torch.is_inference_mode_enabled())


@functools.lru_cache(maxsize=32)
def _yolov5_index(shapes: Tuple[Tuple[int, int], ...],
                  anchors: Tuple[Tuple[float, ...], ...],
                  strides: Tuple[int, ...], num_classes: int,
                  device: torch.device, dtype: torch.dtype,
                  inference: bool) -> Tuple[Tensor, Tensor, tuple]:
    """For the priors of :func:`decode_yolov5`, in its order: (M, 5) the
    positions of their raw x, y, w, h and objectness in
    :func:`_yolov5_flat`'s rows, (M,) those of their objectness, and their
    constants (M, 2) cell x, y, (M, 1) stride, (M, 2) anchor w, h. Cached
    like :func:`_yolov5_priors`; the callers only read them."""
    ch = 5 + num_classes
    pos, start = [], 0
    for (h, w), anc in zip(shapes, anchors):
        a, hw = len(anc) // 2, h * w
        # anchor j, cell c: output k at start + (j * ch + k) * hw + c
        first = start + (torch.arange(a, device=device)[:, None] * (ch * hw)
                         + torch.arange(hw, device=device)[None])
        pos.append(first.reshape(-1, 1) +
                   torch.arange(5, device=device)[None] * hw)
        start += a * ch * hw
    pos = torch.cat(pos, 0)
    cell, stride, size = _yolov5_priors(shapes, anchors, strides, device,
                                        dtype, inference)
    return pos, pos[:, 4].contiguous(), (
        cell.t().contiguous(), stride[:, None], size.t().contiguous())


def yolov5_layout(preds: Sequence[Tensor], anchors: Sequence[Sequence[float]],
                  strides: Sequence[int], num_classes: int = 1
                  ) -> Tuple[Tensor, tuple]:
    """The objectness logits (N, M) of every prior (as
    :func:`decode_yolov5` gives them) and a state for
    :func:`yolov5_boxes_at`, which decodes boxes where asked only."""
    state = _yolov5_flat(preds, anchors, strides, num_classes)
    flat, (_, obj_pos, _) = state
    return flat.index_select(1, obj_pos), state


def yolov5_boxes_at(state: tuple, img: Tensor,
                    prior: Tensor) -> Tuple[Tensor, Tensor]:
    """Boxes (K, 4) and objectness logits (K,) of the priors ``prior`` of
    the images ``img`` from the state of :func:`yolov5_layout` (the values
    of :func:`decode_yolov5` there)."""
    flat, (pos, _, (cell, stride, size)) = state
    t = flat[img[:, None], pos[prior]]  # (K, 5): x, y, w, h, objectness
    boxes = _yolov5_boxes(t[:, :4], cell[prior], stride[prior], size[prior],
                          1)
    return boxes, t[:, 4]


def decode_yolox(cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                 objectnesses: Sequence[Tensor],
                 strides: Sequence[int]) -> Tuple[Tensor, Tensor, Tensor]:
    """Decode mmdet ``YOLOXHead`` outputs (anchor-free, one prior per cell).

    Args:
        cls_scores: per level (N, C, H_l, W_l) class logits.
        bbox_preds: per level (N, 4, H_l, W_l): dx, dy, log w, log h.
        objectnesses: per level (N, 1, H_l, W_l) objectness logits.
        strides: per level stride in input pixels.

    Returns:
        tuple: boxes (N, M, 4) x1, y1, x2, y2; objectness logits (N, M);
        class logits (N, M, C).
    """
    boxes, objs, clss = [], [], []
    for cls, reg, obj, stride in zip(cls_scores, bbox_preds, objectnesses,
                                     strides):
        n, c, h, w = cls.shape
        xs, ys = cell_grid(h, w, reg.device, reg.dtype)
        cx = reg[:, 0] * stride + xs * stride
        cy = reg[:, 1] * stride + ys * stride
        bw = reg[:, 2].exp() * stride
        bh = reg[:, 3].exp() * stride
        box = torch.stack(
            [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
        boxes.append(box.reshape(n, -1, 4))
        objs.append(obj.reshape(n, -1))
        clss.append(cls.permute(0, 2, 3, 1).reshape(n, -1, c))
    return torch.cat(boxes, 1), torch.cat(objs, 1), torch.cat(clss, 1)

