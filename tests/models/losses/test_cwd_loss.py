import pytest
import torch

from mmtrack_kd.models.losses import CWDLoss


def test_cwd_zero_when_equal_and_grads():
    loss_fn = CWDLoss(tau=2.)
    t = torch.randn(2, 4, 6, 6, requires_grad=True)
    assert loss_fn(t.detach().clone(), t).item() == pytest.approx(
        0., abs=1e-6)
    s = torch.randn(2, 4, 6, 6, requires_grad=True)
    loss = loss_fn(s, t)
    assert loss.item() > 0
    loss.backward()
    assert t.grad is None and s.grad.abs().sum() > 0


def test_cwd_properties():
    """Channel distributions over positions: adding a constant per channel
    changes nothing; moving a channel's peak does."""
    loss_fn = CWDLoss(tau=1.)
    t = torch.randn(1, 3, 5, 5)
    shift = torch.tensor([1., -2., 5.]).view(1, 3, 1, 1)
    assert loss_fn(t + shift, t).item() == pytest.approx(0., abs=1e-6)
    s = t.clone()
    s[0, 1] = s[0, 1].flip(-1)
    assert loss_fn(s, t).item() > 1e-3
    # the normalisation is per (image, channel): one wrong channel out of 3
    # costs a third of what it costs alone
    one = CWDLoss()(s[:, 1:2], t[:, 1:2])
    assert loss_fn(s, t).item() == pytest.approx(one.item() / 3, rel=1e-5)
