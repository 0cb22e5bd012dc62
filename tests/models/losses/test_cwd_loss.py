import math

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


def test_cwd_two_levels_summed_by_hand():
    """1 image, 1 channel, 2 positions per level, tau 1.

    Level 1: T = (0, 0) -> p = (1/2, 1/2); S = (ln 3, 0) -> q = (3/4, 1/4):
    KL(p||q) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3).
    Level 2: T = (ln 3, 0) -> p = (3/4, 1/4); S = (0, 0) -> q = (1/2, 1/2):
    KL = 3/4 ln(3/2) + 1/4 ln(1/2).
    """
    ln3 = math.log(3.)
    s = [torch.tensor([ln3, 0.]).view(1, 1, 1, 2),
         torch.zeros(1, 1, 1, 2)]
    t = [torch.zeros(1, 1, 1, 2),
         torch.tensor([ln3, 0.]).view(1, 1, 1, 2)]
    kl1 = 0.5 * math.log(4 / 3)
    kl2 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert CWDLoss(loss_weight=10.)(s, t).item() == pytest.approx(
        10 * (kl1 + kl2), rel=1e-5)
    assert CWDLoss(loss_weight=10., reduction='mean')(s, t).item() == \
        pytest.approx(10 * (kl1 + kl2) / 2, rel=1e-5)
    # tau scales the logits and multiplies by tau^2: tau = 2 on 2 S, 2 T
    # gives the same distributions, so 4 times the tau = 1 value
    s2, t2 = [2 * x for x in s], [2 * x for x in t]
    assert CWDLoss(tau=2.)(s2, t2).item() == pytest.approx(
        4 * (kl1 + kl2), rel=1e-5)
    with pytest.raises(ValueError, match='reduction'):
        CWDLoss(reduction='avg')
