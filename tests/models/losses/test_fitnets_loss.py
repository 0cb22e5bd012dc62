import pytest
import torch

from mmtrack_kd.models.losses import FitNetsLoss


def test_fitnets_value_zero_and_grads():
    loss_fn = FitNetsLoss(loss_weight=2.)
    t = torch.randn(2, 4, 5, 6, requires_grad=True)
    assert loss_fn(t.detach().clone(), t).item() == 0
    s = (t.detach() + 1.).requires_grad_(True)
    loss = loss_fn(s, t)
    assert loss.item() == pytest.approx(2 * 0.5 * 1.)
    loss.backward()
    assert t.grad is None and s.grad is not None
    # levels are summed by default (each hint pair is its own loss):
    # 2 * (0.5 * 1 + 0.5 * 9)
    s2 = t.detach() + 3.
    lv = loss_fn([s, s2], [t, t])
    assert lv.item() == pytest.approx(2 * (0.5 + 4.5))
    mean = FitNetsLoss(loss_weight=2., reduction='mean')
    assert mean([s, s2], [t, t]).item() == pytest.approx(2 * 5. / 2)
    with pytest.raises(ValueError, match='connector'):
        loss_fn(torch.randn(2, 3, 5, 6), t)


def test_fitnets_reduction_key_checked():
    with pytest.raises(ValueError, match='reduction'):
        FitNetsLoss(reduction='none')
