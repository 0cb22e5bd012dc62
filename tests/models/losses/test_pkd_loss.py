import pytest
import torch

from mmtrack_kd.models.losses import PKDLoss


def _pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm())


def test_pkd_is_one_minus_pearson_and_affine_invariant():
    loss_fn = PKDLoss()
    g = torch.Generator().manual_seed(0)
    t = torch.randn(2, 3, 4, 4, generator=g)
    s = torch.randn(2, 3, 4, 4, generator=g)
    r = torch.stack([
        _pearson(s[:, c].flatten(), t[:, c].flatten()) for c in range(3)
    ])
    assert loss_fn(s, t).item() == pytest.approx(
        (1 - r).mean().item(), rel=1e-4)
    scale = torch.tensor([0.1, 3., 50.]).view(1, 3, 1, 1)
    bias = torch.tensor([5., -1., 2.]).view(1, 3, 1, 1)
    assert loss_fn(s * scale + bias, t).item() == pytest.approx(
        loss_fn(s, t).item(), rel=1e-4)
    assert loss_fn(t * scale + bias, t).item() == pytest.approx(0., abs=1e-5)


def test_pkd_grads_student_only():
    t = torch.randn(2, 3, 4, 4, requires_grad=True)
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    PKDLoss()([s], [t]).backward()
    assert t.grad is None and s.grad.abs().sum() > 0


def test_pkd_two_levels_summed_by_hand():
    """Level 1: S = T (r = 1, loss 0). Level 2: 1 channel of 4 values,
    S = (1, -1, 1, -1), T = (1, 1, -1, -1) (both already standardised,
    r = 0): 0.5 * mean((S - T)^2) = 0.5 * (0 + 4 + 4 + 0) / 4 = 1."""
    t1 = torch.randn(2, 3, 4, 4)
    s2 = torch.tensor([1., -1., 1., -1.]).view(1, 1, 2, 2)
    t2 = torch.tensor([1., 1., -1., -1.]).view(1, 1, 2, 2)
    assert PKDLoss()(s2, t2).item() == pytest.approx(1., rel=1e-5)
    # per level r: the levels may have any shapes
    assert PKDLoss(loss_weight=10.)([t1.clone(), s2], [t1, t2]).item() == \
        pytest.approx(10., rel=1e-5)
    assert PKDLoss(loss_weight=10., reduction='mean')(
        [t1.clone(), s2], [t1, t2]).item() == pytest.approx(5., rel=1e-5)
    with pytest.raises(ValueError, match='reduction'):
        PKDLoss(reduction='max')
