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
