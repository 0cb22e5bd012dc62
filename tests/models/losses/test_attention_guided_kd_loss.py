import math

import pytest
import torch
from kd_fragment_build import batch, build_with_fragment

from mmtrack_kd.models.losses import AttentionGuidedKDLoss

LN3 = math.log(3.)


def _levels():
    """Level 1 (1 image, 1 channel, 1 x 2): T = (ln 3, 0) -> teacher
    attention 2 softmax = (3/2, 1/2), so the mask (>= 1) keeps position 0
    only; S - T = (1, 2) -> discrepancy attention 2 softmax(1, 2), whose
    position 0 is 2 / (1 + e). Loss: A_0 * 1^2 / (C 1 * kept 1) =
    (3/2 + 2 / (1 + e)) / 2.
    Level 2 (1 image, 2 channels, 1 x 2): T = 0 (uniform attention 1, both
    positions kept), S = 1 (uniform discrepancy): (2 + 2) / (C 2 * kept 2)
    = 1."""
    t = [torch.tensor([LN3, 0.]).view(1, 1, 1, 2), torch.zeros(1, 2, 1, 2)]
    s = [torch.tensor([LN3 + 1., 2.]).view(1, 1, 1, 2),
         torch.ones(1, 2, 1, 2)]
    return s, t


A0 = (1.5 + 2 / (1 + math.e)) / 2


def test_agkd_hand_computed_levels_and_reductions():
    s, t = _levels()
    loss_fn = AttentionGuidedKDLoss(temperature=1.)
    assert loss_fn(s[0], t[0]).item() == pytest.approx(A0, rel=1e-5)
    assert loss_fn(s[1], t[1]).item() == pytest.approx(1., rel=1e-5)
    assert loss_fn(s, t).item() == pytest.approx(A0 + 1., rel=1e-5)
    mean = AttentionGuidedKDLoss(temperature=1., reduction='mean',
                                 loss_weight=3.)
    assert mean(s, t).item() == pytest.approx(3 * (A0 + 1.) / 2, rel=1e-5)
    # fg_thr 0 keeps the teacher's background too: level 1 then averages
    # A (S - T)^2 over both positions, A_1 = (1/2 + 2 e / (1 + e)) / 2
    a1 = (0.5 + 2 * math.e / (1 + math.e)) / 2
    keep_all = AttentionGuidedKDLoss(temperature=1., fg_thr=0.)
    assert keep_all(s[0], t[0]).item() == pytest.approx(
        (A0 * 1 + a1 * 4) / 2, rel=1e-5)


def test_agkd_gradient_student_only_masked_background():
    s, t = _levels()
    s0 = s[0].clone().requires_grad_(True)
    t0 = t[0].clone().requires_grad_(True)
    AttentionGuidedKDLoss(temperature=1.)(s0, t0).backward()
    assert t0.grad is None
    # the attention carries no gradient: d/dS = 2 (S - T) A M
    torch.testing.assert_close(s0.grad.view(-1), torch.tensor([2 * A0, 0.]))


def test_agkd_images_averaged_and_errors():
    s, t = _levels()
    loss_fn = AttentionGuidedKDLoss(temperature=1.)
    # two images: the level-1 image and an identical pair (loss 0)
    s2 = torch.cat([s[0], t[0]])
    t2 = torch.cat([t[0], t[0]])
    assert loss_fn(s2, t2).item() == pytest.approx(A0 / 2, rel=1e-5)
    with pytest.raises(ValueError, match='connector'):
        loss_fn(torch.zeros(1, 2, 1, 2), t[0])
    with pytest.raises(ValueError, match='reduction'):
        AttentionGuidedKDLoss(reduction='none')
    with pytest.raises(ValueError, match='temperature'):
        AttentionGuidedKDLoss(temperature=0.)


def test_agkd_fragment_builds_in_distiller_and_trains(tmp_path):
    model = build_with_fragment('baselines/attention_guided.py',
                                'kd_attention_guided', str(tmp_path))
    assert type(model.distill_losses['kd_agkd']).__name__ == \
        'AttentionGuidedKDLoss'
    losses = model.loss(*batch())
    kd = losses['loss_kd_agkd']
    assert torch.isfinite(kd) and kd.item() > 0
    kd.backward()
    assert model.connectors['agkd_c0'].conv.weight.grad is not None
