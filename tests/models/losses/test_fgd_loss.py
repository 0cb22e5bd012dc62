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


def test_fgd_two_levels_summed_by_hand():
    """No boxes (background mask 1 / HW), T = 0 and S = c everywhere: both
    attentions are uniform (L_at = 0), the global blocks start as the
    identity, so a level costs beta * C c^2 + lambda * C H W c^2.
    Level 1: C 4, 2 x 2, c 1 -> 0.5 * 4 + 0.25 * 16 = 6; level 2: C 4,
    1 x 1, c 2 -> 0.5 * 16 + 0.25 * 16 = 12."""
    kw = dict(alpha_fgd=7., beta_fgd=0.5, gamma_fgd=3., lambda_fgd=0.25)
    t = [torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 1, 1)]
    s = [torch.ones(1, 4, 2, 2), 2 * torch.ones(1, 4, 1, 1)]
    no_gt = [torch.zeros(0, 4)]
    assert FGDLoss([4, 4], **kw)(s, t, no_gt, (16, 16)).item() == \
        pytest.approx(18., rel=1e-5)
    assert FGDLoss([4, 4], reduction='mean', **kw)(
        s, t, no_gt, (16, 16)).item() == pytest.approx(9., rel=1e-5)
    with pytest.raises(ValueError, match='reduction'):
        FGDLoss(4, reduction='none')
