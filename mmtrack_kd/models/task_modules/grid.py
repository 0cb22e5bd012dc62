"""Where points and boxes given in input pixels fall on a dense feature map.

The map's stride is derived from the batch input shape and the map size, so
any input resolution works. The identity head, the tracker and the
distillation losses all read maps through these, so they pick the same cell.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def cell_grid(h: int, w: int, device=None,
              dtype=torch.float32) -> Tuple[Tensor, Tensor]:
    """Column and row index of every cell of an (h, w) map.

    Returns:
        tuple: xs, ys, each (h, w): ``xs[i, j] == j``, ``ys[i, j] == i``.
    """
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=dtype),
        torch.arange(w, device=device, dtype=dtype),
        indexing='ij')
    return xs, ys


def map_stride(feat_hw: Sequence[int],
               batch_input_shape: Sequence[int]) -> Tuple[float, float]:
    """Stride (x, y) of a map of size feat_hw = (H, W) for the input (H, W)."""
    h, w = int(feat_hw[0]), int(feat_hw[1])
    return float(batch_input_shape[1]) / w, float(batch_input_shape[0]) / h


def point_cells(points: Tensor, feat_hw: Sequence[int],
                batch_input_shape: Sequence[int]) -> Tensor:
    """Flat index (row * W + col) of the cell holding each point.

    Args:
        points: (K, 2) x, y in input pixels.
        feat_hw: (H, W) of the map.
        batch_input_shape: (H_in, W_in) of the padded batch.

    Returns:
        Tensor: (K,) long indices; points outside the map are clamped to its
        border.
    """
    row, col = point_rows_cols(points, feat_hw, batch_input_shape)
    return row * int(feat_hw[1]) + col


def point_rows_cols(points: Tensor, feat_hw: Sequence[int],
                    batch_input_shape: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Row and column (each (K,) long) of the cell holding each point (K, 2)
    x, y in input pixels, clamped into the (H, W) map (see
    :func:`point_cells`)."""
    h, w = int(feat_hw[0]), int(feat_hw[1])
    sx, sy = map_stride(feat_hw, batch_input_shape)
    col = (points[:, 0] / sx).floor().long().clamp(0, w - 1)
    row = (points[:, 1] / sy).floor().long().clamp(0, h - 1)
    return row, col


def centre_cells(bboxes: Tensor, feat_hw: Sequence[int],
                 batch_input_shape: Sequence[int]) -> Tensor:
    """Flat index (row * W + col) of the cell holding each box centre.

    Args:
        bboxes: (K, 4) x1, y1, x2, y2 in input pixels.
        feat_hw: (H, W) of the map.
        batch_input_shape: (H_in, W_in) of the padded batch.

    Returns:
        Tensor: (K,) long indices, clamped into the map.
    """
    centres = (bboxes[:, :2] + bboxes[:, 2:4]) / 2
    return point_cells(centres, feat_hw, batch_input_shape)
