import pytest
import torch

from mmtrack_kd.models.losses import ObjectnessKDLoss

V5 = dict(type='yolov5', anchors=[[8, 24, 11, 34]], strides=[8],
          num_classes=1)


def test_objectness_kd_zero_when_equal_grads_and_value():
    loss_fn = ObjectnessKDLoss(V5, temperature=2.)
    t = [torch.randn(2, 12, 4, 4, requires_grad=True)]
    assert loss_fn([t[0].detach().clone()], t).item() == pytest.approx(
        0., abs=1e-6)
    s = [torch.randn(2, 12, 4, 4, requires_grad=True)]
    loss = loss_fn(s, t)
    loss.backward()
    assert t[0].grad is None and s[0].grad.abs().sum() > 0
    # value: tau^2 * mean Bernoulli KL of the objectness channels only
    o_s = s[0].detach().view(2, 2, 6, 4, 4)[:, :, 4] / 2
    o_t = t[0].detach().view(2, 2, 6, 4, 4)[:, :, 4] / 2
    p, q = o_t.sigmoid(), o_s.sigmoid()
    kl = p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()
    assert loss.item() == pytest.approx(4 * kl.mean().item(), rel=1e-4)


def test_objectness_kd_yolox():
    loss_fn = ObjectnessKDLoss(dict(type='yolox', strides=[8]))
    t = ([torch.randn(1, 2, 4, 4)], [torch.randn(1, 4, 4, 4)],
         [torch.randn(1, 1, 4, 4)])
    s = (t[0], t[1], [torch.randn(1, 1, 4, 4, requires_grad=True)])
    loss = loss_fn(s, t)
    assert loss.item() > 0
    loss.backward()
    assert s[2][0].grad is not None
