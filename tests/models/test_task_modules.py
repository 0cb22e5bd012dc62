"""Tests of mmtrack_kd/models/task_modules/grid.py."""
import torch

from mmtrack_kd.models.task_modules.grid import (centre_cells, map_stride,
                                                 point_cells)


def test_stride_follows_input_and_map_sizes():
    assert map_stride((12, 16), (96, 128)) == (8.0, 8.0)
    # non-square, non-integer stride (input not a multiple of the map)
    assert map_stride((13, 17), (100, 130)) == (130 / 17, 100 / 13)


def test_point_cells_floor_and_clamp():
    pts = torch.tensor([[0., 0.], [7.99, 8.], [127.9, 95.9], [-3., 200.],
                        [500., -1.]])
    idx = point_cells(pts, (12, 16), (96, 128))
    rows, cols = (idx // 16).tolist(), (idx % 16).tolist()
    assert list(zip(rows, cols)) == [(0, 0), (1, 0), (11, 15), (11, 0),
                                     (0, 15)]
    assert idx.dtype == torch.long


def test_centre_cells_are_the_cells_of_the_box_centres():
    torch.manual_seed(0)
    xy = torch.rand(50, 2) * torch.tensor([130., 100.])
    wh = torch.rand(50, 2) * 40
    boxes = torch.cat([xy, xy + wh], 1)
    got = centre_cells(boxes, (13, 17), (100, 130))
    want = point_cells((boxes[:, :2] + boxes[:, 2:]) / 2, (13, 17),
                       (100, 130))
    assert torch.equal(got, want)
    assert int(got.max()) < 13 * 17
