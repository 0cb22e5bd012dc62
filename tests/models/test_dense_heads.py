"""Tests of the YOLOv5 detection head and the CSTrack ID head."""
import math

import pytest
import torch

from mmtrack_kd.models.dense_heads import (
    CSTrackIDHead,
    YOLOv5Head,
    bbox_ciou,
    gather_embeddings,
)
from mmtrack_kd.models.task_modules.yolo_decode import decode_yolov5

CHANNELS = [16, 32, 64]
# pedestrian anchors for a 128x160 input
ANCHORS = [[2, 6, 3, 8, 4, 12], [8, 24, 11, 34, 16, 48],
           [32, 96, 45, 135, 64, 192]]


def _feats(h=64, w=96, n=2):
    return [
        torch.randn(n, c, h // s, w // s)
        for c, s in zip(CHANNELS, (8, 16, 32))
    ]


def test_yolov5_head_shapes_and_prior():
    head = YOLOv5Head(num_classes=2, in_channels=CHANNELS, anchors=ANCHORS)
    assert head.num_anchors == 3 and head.strides == [8, 16, 32]
    preds = head(_feats())
    for p, s in zip(preds, (8, 16, 32)):
        assert p.shape == (2, 3 * 7, 64 // s, 96 // s)
    bias = head.convs[0].bias.view(3, 7)
    assert torch.allclose(bias[:, 4], torch.full((3, ), math.log(8 / 80**2)))
    # decoding agrees with the head layout
    boxes, obj, cls = decode_yolov5(preds, head.anchors, head.strides, 2)
    m = sum(3 * (64 // s) * (96 // s) for s in (8, 16, 32))
    assert boxes.shape == (2, m, 4) and cls.shape == (2, m, 2)


def test_yolov5_head_config_errors():
    with pytest.raises(ValueError, match='bbox_head.in_channels'):
        YOLOv5Head()
    with pytest.raises(ValueError, match='bbox_head.anchors'):
        YOLOv5Head(in_channels=CHANNELS, anchors=ANCHORS[:2])


def test_ciou_properties():
    a = torch.tensor([[5., 5., 4., 8.], [0., 0., 2., 2.]])
    assert torch.allclose(bbox_ciou(a, a), torch.ones(2), atol=1e-5)
    far = torch.tensor([[50., 50., 4., 8.], [10., 0., 2., 2.]])
    assert (bbox_ciou(a, far) < 0).all()


def test_target_assignment_neighbours_and_ratio():
    head = YOLOv5Head(in_channels=CHANNELS, anchors=ANCHORS)
    # level 0 (stride 8): centre (4.3, 2.7) cells, size matches anchor 0
    gts = torch.tensor([[0., 0., 4.3 * 8, 2.7 * 8, 2., 6.]])
    b, a, gj, gi, tbox, anc, _ = head._build_targets((8, 12), 0, gts)
    cells = {(int(j), int(i)) for j, i in zip(gj, gi)}
    # centre cell, left neighbour (x frac 0.3), lower neighbour (y frac 0.7)
    assert cells == {(2, 4), (2, 3), (3, 4)}
    # anchors 0 and 1 are within the 4x ratio, anchor 2 (4x12) too
    assert set(a.tolist()) == {0, 1, 2}
    assert ((tbox[:, :2] > -0.5) & (tbox[:, :2] < 1.5)).all()
    # a box 5x larger than every anchor of the level is not assigned
    big = torch.tensor([[0., 0., 40., 40., 30., 80.]])
    assert head._build_targets((8, 12), 0, big)[0].numel() == 0


def test_yolov5_loss_finite_empty_and_one_target():
    head = YOLOv5Head(num_classes=2, in_channels=CHANNELS, anchors=ANCHORS)
    preds = head(_feats())
    empty = head.loss(preds, [torch.zeros(0, 4)] * 2,
                      [torch.zeros(0, dtype=torch.long)] * 2)
    assert set(empty) == {'loss_box', 'loss_obj', 'loss_cls'}
    assert all(torch.isfinite(v) for v in empty.values())
    assert empty['loss_box'] == 0 and empty['loss_obj'] > 0
    sum(empty.values()).backward()
    assert head.convs[0].weight.grad is not None

    one = head.loss(preds, [torch.tensor([[10., 5., 30., 60.]]),
                            torch.zeros(0, 4)],
                    [torch.tensor([1]), torch.zeros(0, dtype=torch.long)])
    assert all(torch.isfinite(v) for v in one.values())
    assert one['loss_box'] > 0 and one['loss_cls'] > 0

    with pytest.raises(ValueError, match='bbox_head.num_classes'):
        head.loss(preds, [torch.tensor([[10., 5., 30., 60.]])] * 2,
                  [torch.tensor([2])] * 2)

    single = YOLOv5Head(in_channels=CHANNELS, anchors=ANCHORS)
    assert 'loss_cls' not in single.loss(
        single(_feats()), [torch.zeros(0, 4)] * 2, [torch.zeros(0)] * 2)


def test_gather_embeddings_reads_centre_cell():
    emb = torch.arange(2 * 4 * 6, dtype=torch.float).view(2, 4, 6)
    centres = torch.tensor([[0., 0.], [47.9, 31.9], [100., -5.], [20., 9.]])
    out = gather_embeddings(emb, centres, (32, 48))  # stride 8
    assert out.shape == (4, 2)
    assert out[0].tolist() == emb[:, 0, 0].tolist()
    assert out[1].tolist() == emb[:, 3, 5].tolist()
    assert out[2].tolist() == emb[:, 0, 5].tolist()  # clamped
    assert out[3].tolist() == emb[:, 1, 2].tolist()


def test_id_head_shapes_and_loss():
    head = CSTrackIDHead(num_ids=10, in_channels=CHANNELS, embed_channels=12)
    assert head.embed_channels == 12 and head.num_ids == 10
    assert head.classifier.bias is None
    assert math.isclose(head.embed_scale, math.sqrt(2) * math.log(9))
    id_map = head(_feats())
    assert id_map.shape == (2, 12, 8, 12)
    boxes = [torch.tensor([[10., 5., 30., 60.]]), torch.zeros(0, 4)]
    ids = [torch.tensor([7]), torch.zeros(0, dtype=torch.long)]
    loss = head.loss(id_map, boxes, ids, (64, 96))['loss_id']
    assert torch.isfinite(loss) and loss > 0
    empty = head.loss(id_map, [torch.zeros(0, 4)] * 2,
                      [torch.zeros(0, dtype=torch.long)] * 2, (64, 96))
    assert empty['loss_id'] == 0
    empty['loss_id'].backward()
    assert head.classifier.weight.grad is not None


@pytest.mark.parametrize('bad', [10, -1])
def test_id_head_invalid_id_raises(bad):
    head = CSTrackIDHead(num_ids=10, in_channels=CHANNELS, embed_channels=8)
    id_map = head(_feats(n=1))
    with pytest.raises(ValueError, match='id_head.num_ids'):
        head.loss(id_map, [torch.tensor([[10., 5., 30., 60.]])],
                  [torch.tensor([bad])], (64, 96))


def test_loss_agrees_with_decoding():
    """Zero logits decode to anchor-sized boxes at cell centres; a GT equal
    to such a box is assigned to exactly that cell/anchor with box loss 0."""
    anchors = [[2, 6, 60, 180, 60, 180], [400, 1200] * 3, [400, 1200] * 3]
    head = YOLOv5Head(in_channels=CHANNELS, anchors=anchors)
    preds = [torch.zeros(1, 18, 64 // s, 96 // s) for s in (8, 16, 32)]
    gt = torch.tensor([[3.5 * 8 - 1, 2.5 * 8 - 3, 3.5 * 8 + 1, 2.5 * 8 + 3]])
    boxes, _, _ = decode_yolov5(preds, head.anchors, head.strides, 1)
    index = 0 * 8 * 12 + 2 * 12 + 3  # level 0, anchor 0, row 2, col 3
    assert torch.allclose(boxes[0, index], gt[0])
    gts = torch.tensor([[0., 0., 28., 20., 2., 6.]])
    b, a, gj, gi, _, _, _ = head._build_targets((8, 12), 0, gts)
    assert (a.tolist(), gj.tolist(), gi.tolist()) == ([0], [2], [3])
    losses = head.loss(preds, [gt], [torch.zeros(1)])
    assert losses['loss_box'].abs() < 1e-5


def test_id_head_auto_num_ids_unresolved_names_key():
    from mmdet.registry import MODELS
    with pytest.raises(ValueError, match='id_head.num_ids'):
        MODELS.build(dict(type='CSTrackIDHead', num_ids='auto',
                          in_channels=[8, 8, 8], embed_channels=8))
