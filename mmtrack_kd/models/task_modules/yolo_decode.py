"""Decoding of YOLO-family dense head outputs into per-anchor predictions.

One function per head family; the CSTrack head, the tracker and the
response-distillation losses all use these, so that teacher and student are
decoded identically.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor

from .grid import cell_grid


def decode_yolov5(preds: Sequence[Tensor],
                  anchors: Sequence[Sequence[float]],
                  strides: Sequence[int],
                  num_classes: int = 1) -> Tuple[Tensor, Tensor, Tensor]:
    """Decode YOLOv5 head maps.

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
    boxes, objs, clss = [], [], []
    for pred, anc, stride in zip(preds, anchors, strides):
        n, _, h, w = pred.shape
        anc_t = pred.new_tensor(anc).view(-1, 2)
        a = anc_t.shape[0]
        p = pred.view(n, a, 5 + num_classes, h, w)
        xs, ys = cell_grid(h, w, pred.device, pred.dtype)
        cx = (p[:, :, 0].sigmoid() * 2 - 0.5 + xs) * stride
        cy = (p[:, :, 1].sigmoid() * 2 - 0.5 + ys) * stride
        bw = (p[:, :, 2].sigmoid() * 2)**2 * anc_t[:, 0].view(1, a, 1, 1)
        bh = (p[:, :, 3].sigmoid() * 2)**2 * anc_t[:, 1].view(1, a, 1, 1)
        box = torch.stack(
            [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
        boxes.append(box.reshape(n, -1, 4))
        objs.append(p[:, :, 4].reshape(n, -1))
        clss.append(p[:, :, 5:].permute(0, 1, 3, 4, 2).reshape(
            n, -1, num_classes))
    return torch.cat(boxes, 1), torch.cat(objs, 1), torch.cat(clss, 1)


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

