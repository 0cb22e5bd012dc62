import pytest
import torch

from mmtrack_kd.models.losses import FGDLoss

SHAPE = (64, 64)


def _boxes():
    return [torch.tensor([[8., 8., 24., 40.], [30., 4., 60., 60.]]),
            torch.zeros(0, 4)]


def test_fgd_zero_at_init_when_equal_and_grads():
    loss_fn = FGDLoss(4)
    t = torch.randn(2, 4, 8, 8, requires_grad=True)
    # the global blocks start as the identity, so S == T costs nothing
    assert loss_fn(t.detach().clone(), t, _boxes(), SHAPE).item() == \
        pytest.approx(0., abs=1e-7)
    s = torch.randn(2, 4, 8, 8, requires_grad=True)
    loss = loss_fn(s, t, _boxes(), SHAPE)
    assert loss.item() > 0
    loss.backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    assert loss_fn.global_S[0].conv_mask.weight.grad is not None


def test_fgd_masks_scale_and_background():
    fg, bg = FGDLoss.masks(_boxes(), 2, 8, 8, SHAPE, 'cpu')
    # cells whose centre (4 + 8 k) is inside: box 1 2 x 4 -> 1/8 each,
    # box 2 4 x 8 -> 1/32
    assert fg[0, 2, 1].item() == pytest.approx(1 / 8)
    assert fg[0, 3, 5].item() == pytest.approx(1 / 32)
    assert bg[0].sum().item() == pytest.approx(1.)
    assert (bg[0][fg[0] > 0] == 0).all()
    assert fg[1].sum() == 0 and bg[1].sum().item() == pytest.approx(1.)


def test_fgd_finite_without_gt_and_levels():
    loss_fn = FGDLoss([4, 4])
    s = [torch.randn(2, 4, h, h, requires_grad=True) for h in (8, 4)]
    t = [torch.randn(2, 4, h, h) for h in (8, 4)]
    loss = loss_fn(s, t, [torch.zeros(0, 4)] * 2, SHAPE)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(x.grad).all() for x in s)
    with pytest.raises(ValueError, match='levels'):
        loss_fn(s[:1], t[:1], _boxes(), SHAPE)
