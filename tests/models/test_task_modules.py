"""Tests of mmtrack_kd/models/task_modules (grid.py, yolo_decode.py)."""
import math

import torch

from mmtrack_kd.models.task_modules.grid import (
    centre_cells,
    map_stride,
    point_cells,
)
from mmtrack_kd.models.task_modules.yolo_decode import (
    decode_yolov5,
    decode_yolox,
)


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


# ---------------------------------------------------------------------------
# yolo_decode.py
# ---------------------------------------------------------------------------
LN3 = math.log(3.)  # sigmoid(ln 3) = 0.75, sigmoid(-ln 3) = 0.25


def test_decode_yolov5_hand_computed():
    """Two levels. Level 0 (stride 8, 1 x 2 map, anchors 10x20 and 30x40,
    2 classes); level 1 (stride 16, 1 x 1 map, anchor 50x60). With
    s = sigmoid: centre = (2 s(t) - 0.5 + cell) * stride, size =
    (2 s(t))^2 * anchor."""
    p0 = torch.zeros(1, 2, 7, 1, 2, dtype=torch.float64)  # (N, A, 5+C, H, W)
    # anchor 0, column 1: s = 0.75, 0.25, 0.75, 0.5
    p0[0, 0, :4, 0, 1] = p0.new_tensor([LN3, -LN3, LN3, 0.])
    p0[0, 0, 4, 0, 1] = 2.  # objectness
    p0[0, 0, 5:, 0, 1] = p0.new_tensor([0.5, -0.5])  # class logits
    p0[0, 1, 4, 0, 0] = -3.
    p0[0, 1, 6, 0, 1] = 4.
    p1 = torch.zeros(1, 1, 7, 1, 1, dtype=torch.float64)
    p1[0, 0, :4, 0, 0] = p1.new_tensor([LN3, LN3, -LN3, LN3])
    p1[0, 0, 4:, 0, 0] = p1.new_tensor([-1., 1., 2.])
    boxes, obj, cls = decode_yolov5(
        [p0.view(1, 14, 1, 2), p1.view(1, 7, 1, 1)],
        [[10, 20, 30, 40], [50, 60]], [8, 16], num_classes=2)
    # order: level, anchor, row, column
    want = torch.tensor([
        [[-1., -6., 9., 14.],  # l0 a0 c0: centre (4, 4), 10 x 20
         [4.75, -10., 27.25, 10.],  # l0 a0 c1: centre (16, 0), 22.5 x 20
         [-11., -16., 19., 24.],  # l0 a1 c0: centre (4, 4), 30 x 40
         [-3., -16., 27., 24.],  # l0 a1 c1: centre (12, 4), 30 x 40
         [9.75, -51.5, 22.25, 83.5]]  # l1: centre (16, 16), 12.5 x 135
    ], dtype=torch.float64)
    torch.testing.assert_close(boxes, want, atol=1e-9, rtol=0)
    torch.testing.assert_close(
        obj, torch.tensor([[0., 2., -3., 0., -1.]], dtype=torch.float64))
    torch.testing.assert_close(
        cls, torch.tensor([[[0., 0.], [0.5, -0.5], [0., 0.], [0., 4.],
                            [1., 2.]]], dtype=torch.float64))


def test_decode_yolov5_matches_the_cstrack_head_layout():
    """The row/column order follows the map: a 2 x 3 map, every cell
    neutral (logits 0) decodes to the cell centres."""
    pred = torch.zeros(2, 6, 2, 3)
    boxes, obj, _ = decode_yolov5([pred], [[4, 6]], [8])
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    want = torch.tensor([[4., 4.], [12., 4.], [20., 4.], [4., 12.],
                         [12., 12.], [20., 12.]])
    torch.testing.assert_close(centres, want.expand(2, -1, -1))
    torch.testing.assert_close(boxes[..., 2:] - boxes[..., :2],
                               torch.tensor([4., 6.]).expand(2, 6, 2))
    assert obj.shape == (2, 6)


def test_decode_yolox_matches_mmdet_yolox_head():
    """decode_yolox agrees with mmdet's own YOLOXHead decoding (its prior
    generator, ``_bbox_decode`` and ``predict_by_feat``) on a tiny head."""
    from mmdet.models.dense_heads import YOLOXHead
    from mmengine.config import ConfigDict
    torch.manual_seed(0)
    head = YOLOXHead(num_classes=2, in_channels=8, feat_channels=8,
                     stacked_convs=1, strides=[8, 16])
    head.eval()
    sizes = [(6, 5), (3, 3)]  # (H, W): a non-square map, not halved exactly
    feats = [torch.randn(2, 8, h, w) for h, w in sizes]
    with torch.no_grad():
        cls_scores, bbox_preds, objectnesses = head(feats)
        # scale the regression up so boxes are far from their priors
        bbox_preds = [b * 3 for b in bbox_preds]
    boxes, obj, cls = decode_yolox(cls_scores, bbox_preds, objectnesses,
                                   [8, 16])
    priors = torch.cat(
        head.prior_generator.grid_priors(sizes, dtype=torch.float32,
                                         device='cpu', with_stride=True))
    flat_reg = torch.cat(
        [b.permute(0, 2, 3, 1).reshape(2, -1, 4) for b in bbox_preds], 1)
    mm_boxes = head._bbox_decode(priors, flat_reg)
    torch.testing.assert_close(boxes, mm_boxes, atol=1e-4, rtol=1e-6)
    assert boxes.shape == (2, 6 * 5 + 3 * 3, 4)
    torch.testing.assert_close(
        obj, torch.cat([o.flatten(1) for o in objectnesses], 1))
    torch.testing.assert_close(
        cls, torch.cat([c.permute(0, 2, 3, 1).reshape(2, -1, 2)
                        for c in cls_scores], 1))
    # the whole predict path (no NMS, nothing filtered, no rescale): the same
    # boxes and the scores sigmoid(cls) * sigmoid(obj) of the best class
    metas = [dict(img_shape=(48, 40), scale_factor=(1., 1.))] * 2
    results = head.predict_by_feat(
        cls_scores, bbox_preds, objectnesses, batch_img_metas=metas,
        cfg=ConfigDict(score_thr=-1., nms=None), rescale=False,
        with_nms=False)
    for i, res in enumerate(results):
        score, label = (cls[i].sigmoid() *
                        obj[i, :, None].sigmoid()).max(1)
        torch.testing.assert_close(res.bboxes, boxes[i], atol=1e-4,
                                   rtol=1e-6)
        torch.testing.assert_close(res.scores, score)
        assert torch.equal(res.labels, label)
