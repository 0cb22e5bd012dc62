"""Tests of mmtrack_kd/models/losses/_utils.py."""
import pytest
import torch

from mmtrack_kd.models.losses._utils import (
    YOLODecoder,
    box_cell_masks,
    box_iou_giou,
    centre_cells,
    zero_with_grad,
)


def test_iou_giou_values():
    a = torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.]])
    b = torch.tensor([[1., 0., 3., 2.], [4., 0., 6., 2.]])
    iou, giou = box_iou_giou(a, b)
    assert iou[0].item() == pytest.approx(1 / 3, rel=1e-5)
    assert giou[0].item() == pytest.approx(1 / 3, rel=1e-5)  # hull = union
    assert iou[1].item() == 0
    assert giou[1].item() == pytest.approx(-(12 - 8) / 12, rel=1e-5)
    _, g_same = box_iou_giou(a, a)
    assert torch.allclose(g_same, torch.ones(2), atol=1e-6)
    iou_only, none = box_iou_giou(a, b, giou=False)
    assert none is None and torch.equal(iou_only, iou)


def test_cells_follow_the_input_to_map_stride():
    boxes = torch.tensor([[0., 0., 16., 16.], [100., 60., 130., 90.]])
    # input 96 x 128 -> 12 x 16 map at stride 8; 2nd box centre clamps
    idx = centre_cells(boxes, (12, 16), (96, 128))
    assert idx.tolist() == [1 * 16 + 1, 9 * 16 + 14]
    m = box_cell_masks(boxes, (12, 16), (96, 128))
    assert m.shape == (2, 12, 16)
    assert m[0].sum().item() == 4  # centres 4 and 12 in x and y
    assert m[0, :2, :2].all()


def test_zero_with_grad_keeps_graph():
    x = torch.randn(3, requires_grad=True)
    z = zero_with_grad(x)
    z.backward()
    assert z.item() == 0 and x.grad is not None


def test_prior_centres_match_decoded_centres():
    """Zero offsets decode to the prior cell centres, in the same order."""
    v5 = YOLODecoder(
        dict(type='yolov5', anchors=[[8, 24, 11, 34], [32, 96, 45, 135]],
             strides=[8, 16]), 'T')
    preds = [torch.zeros(1, 12, 4, 6), torch.zeros(1, 12, 2, 3)]
    boxes, obj, _ = v5(preds)
    centres = (boxes[0, :, :2] + boxes[0, :, 2:]) / 2
    assert torch.allclose(centres, v5.prior_centres(preds))
    yx = YOLODecoder(dict(type='yolox', strides=[8, 16]), 'T')
    head = ([torch.zeros(1, 1, 4, 6), torch.zeros(1, 1, 2, 3)],
            [torch.full((1, 4, 4, 6), 0.5), torch.full((1, 4, 2, 3), 0.5)],
            [torch.zeros(1, 1, 4, 6), torch.zeros(1, 1, 2, 3)])
    boxes, _, _ = yx(head)
    centres = (boxes[0, :, :2] + boxes[0, :, 2:]) / 2
    assert torch.allclose(centres, yx.prior_centres(head))


def test_decoder_config_errors_name_the_key():
    with pytest.raises(ValueError, match='decoder.strides'):
        YOLODecoder(dict(type='yolox'), 'L')
    with pytest.raises(ValueError, match='unknown decoder keys'):
        YOLODecoder(dict(type='yolox', strides=[8], foo=1), 'L')
    with pytest.raises(ValueError, match='levels'):
        YOLODecoder(dict(type='yolov5', strides=[8, 16], anchors=[[1, 2]]),
                    'L')


def test_unit_vectors_of_a_zero_vector_have_a_finite_gradient():
    from mmtrack_kd.models.losses._utils import unit_vectors
    x = torch.zeros(2, 8, 5)
    x[0, :, 1] = torch.arange(8.)
    x.requires_grad_(True)
    y = unit_vectors(x, 1)
    assert torch.allclose(y[0, :, 1], torch.nn.functional.normalize(
        x[0, :, 1].detach(), dim=0))
    assert y[1].abs().sum() == 0
    y.pow(2).sum().backward()  # zero vectors: sqrt(0) would give NaN
    assert torch.isfinite(x.grad).all()


def test_id_loss_finite_when_an_embedding_is_zero():
    from mmtrack_kd.models.losses import IDResponseConsistencyLoss
    s = torch.randn(1, 8, 4, 6).relu()
    s[..., 1, 2] = 0  # a target's own cell all off
    s.requires_grad_(True)
    t = torch.randn(1, 8, 4, 6)
    boxes = [torch.tensor([[16., 8., 24., 16.], [0., 0., 8., 8.]])]
    IDResponseConsistencyLoss()(s, t, boxes, (32, 48)).backward()
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize('d', [5, 64, 150])
def test_channel_sums_in_blocks_match_the_whole_map(d):
    """The blocked sums equal the whole-map ones: bit for bit within one
    block, to rounding over several (150 channels: 64 + 64 + 22); the
    cosines are those of the normalised maps, 0 at an all-zero vector."""
    from mmtrack_kd.models.losses._utils import (
        channel_cosines,
        channel_sum_squares,
        unit_vectors,
    )
    g = torch.Generator().manual_seed(d)
    x = torch.randn(2, d, 33, generator=g)
    y = torch.randn(2, d, 33, generator=g)
    x[1, :, 7] = 0
    sq = channel_sum_squares(x)
    if d <= 64:
        assert torch.equal(sq, x.pow(2).sum(1))
    torch.testing.assert_close(sq, x.pow(2).sum(1))
    torch.testing.assert_close(channel_sum_squares(x, chunk=16),
                               x.pow(2).sum(1))
    cos = channel_cosines(x, y)
    torch.testing.assert_close(
        cos, (unit_vectors(x, 1) * unit_vectors(y, 1)).sum(1))
    assert cos[1, 7] == 0
