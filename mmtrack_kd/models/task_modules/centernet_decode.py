"""Decoding of CenterNet-style (FairMOT) heads: heatmap peaks to boxes.

A peak is a heatmap cell equal to the maximum of its 3x3 neighbourhood (the
max-pool "NMS" of CenterNet); the top-K peaks over all classes become boxes
from the size and centre-offset maps read at the peak, and embeddings are
read at the same cells.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def heatmap_nms(heat: Tensor, kernel: int = 3) -> Tensor:
    """Keep only the local maxima of a heatmap.

    Args:
        heat: (N, C, H, W) scores (after sigmoid).
        kernel: odd size of the max-pool window.

    Returns:
        Tensor: ``heat`` with every cell that is not the maximum of its
        ``kernel`` x ``kernel`` neighbourhood set to 0.
    """
    hmax = F.max_pool2d(heat, kernel, stride=1, padding=(kernel - 1) // 2)
    return heat * (hmax == heat).to(heat.dtype)


def topk_peaks(heat: Tensor, k: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``k`` highest cells over all classes of every image.

    Args:
        heat: (N, C, H, W) scores (usually after :func:`heatmap_nms`).
        k: number of peaks (capped at C*H*W).

    Returns:
        tuple: ``scores`` (N, K), ``inds`` (N, K) flat cell indices
        (y * W + x), ``labels`` (N, K) classes and ``xy`` (N, K, 2) float
        cell coordinates (x, y).
    """
    n, c, h, w = heat.shape
    k = min(int(k), c * h * w)
    scores, flat = heat.view(n, -1).topk(k)
    labels = torch.div(flat, h * w, rounding_mode='floor')
    inds = flat % (h * w)
    ys = torch.div(inds, w, rounding_mode='floor').to(heat.dtype)
    xs = (inds % w).to(heat.dtype)
    return scores, inds, labels, torch.stack([xs, ys], dim=-1)


def gather_cells(feat: Tensor, inds: Tensor) -> Tensor:
    """Read a map at flat cell indices.

    Args:
        feat: (N, D, H, W).
        inds: (N, K) flat indices y * W + x.

    Returns:
        Tensor: (N, K, D).
    """
    n, d = feat.shape[:2]
    flat = feat.view(n, d, -1)
    return flat.gather(2, inds.unsqueeze(1).expand(n, d, inds.size(1))) \
        .permute(0, 2, 1)


def decode_centernet(heatmap: Tensor,
                     wh: Tensor,
                     offset: Tensor,
                     stride: float,
                     k: int = 500,
                     ltrb: bool = True,
                     nms_kernel: int = 3) -> Tuple[Tensor, ...]:
    """Boxes of the top-K heatmap peaks.

    Args:
        heatmap: (N, C, H, W) logits (sigmoid applied here).
        wh: (N, 4, H, W) distances to the left, top, right and bottom sides
            (``ltrb``) or (N, 2, H, W) width and height, in map cells.
        offset: (N, 2, H, W) sub-cell offset (x, y) of the centre.
        stride: input pixels per map cell.
        k: peaks kept per image.
        ltrb: the layout of ``wh``.
        nms_kernel: max-pool window of :func:`heatmap_nms`.

    Returns:
        tuple: ``bboxes`` (N, K, 4) x1y1x2y2 in input pixels, ``scores``
        (N, K), ``labels`` (N, K), ``inds`` (N, K) flat cell indices (to
        read embeddings at the peaks with :func:`gather_cells`).
    """
    heat = heatmap_nms(heatmap.sigmoid(), nms_kernel)
    scores, inds, labels, xy = topk_peaks(heat, k)
    centre = xy + gather_cells(offset, inds)
    size = gather_cells(wh, inds)
    if ltrb:
        bboxes = torch.cat([centre - size[..., :2], centre + size[..., 2:]],
                           dim=-1)
    else:
        bboxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
    return bboxes * stride, scores, labels, inds
