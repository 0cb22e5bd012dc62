import pytest
import torch
from kd_fragment_build import batch, build_with_fragment

from mmtrack_kd.models.losses import CrossModelFeatureLoss


def test_cross_model_feature_levels_by_hand():
    """Level 1: S - T = 1 everywhere (MSE 1); level 2: S - T = 2 (MSE 4)."""
    t = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    s = [t[0] + 1., t[1] + 2.]
    assert CrossModelFeatureLoss()(s, t).item() == pytest.approx(5.)
    assert CrossModelFeatureLoss(reduction='mean', loss_weight=2.)(
        s, t).item() == pytest.approx(5.)
    assert CrossModelFeatureLoss(feat_weight=0.5)(s, t).item() == \
        pytest.approx(2.5)


def test_cross_model_attention_term_by_hand():
    """1 channel, 1 x 2: T = (1, 0) -> q_T = (1, 0); S = (0, 1) -> q_S =
    (0, 1); ||q_S - q_T||^2 = 2 and the MSE is (1 + 1) / 2 = 1."""
    t = torch.tensor([1., 0.]).view(1, 1, 1, 2)
    s = torch.tensor([0., 1.]).view(1, 1, 1, 2).requires_grad_(True)
    loss = CrossModelFeatureLoss(att_weight=0.5)(s, t)
    assert loss.item() == pytest.approx(1. + 0.5 * 2)
    loss.backward()
    assert s.grad.abs().sum() > 0
    # scaling a model's maps does not move its normalised attention
    assert CrossModelFeatureLoss(feat_weight=0., att_weight=1.)(
        3 * t, t).item() == pytest.approx(0., abs=1e-6)


def test_cross_model_grads_and_errors():
    t = torch.randn(1, 2, 3, 3, requires_grad=True)
    s = torch.randn(1, 2, 3, 3, requires_grad=True)
    CrossModelFeatureLoss(att_weight=1.)([s], [t]).backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='connector'):
        CrossModelFeatureLoss()(torch.zeros(1, 3, 3, 3), t)
    with pytest.raises(ValueError, match='reduction'):
        CrossModelFeatureLoss(reduction='none')
    with pytest.raises(ValueError, match='att_weight'):
        CrossModelFeatureLoss(att_weight=-1.)


def test_atttrack_fragment_builds_in_distiller_and_trains(tmp_path):
    model = build_with_fragment('baselines/atttrack.py', 'kd_atttrack',
                                str(tmp_path))
    losses = model.loss(*batch())
    kd = losses['loss_kd_atttrack']
    assert torch.isfinite(kd) and kd.item() > 0
    kd.backward()
    assert model.connectors['atttrack_c2'].conv.weight.grad is not None


def test_cross_model_without_attention_is_fitnets_times_two():
    """With ``att_weight=0`` (the fragment's default) the loss is FitNets's
    0.5 * MSE per level times 2: the same gradient direction, so under the
    benchmark's gradient balance the two baselines train identically
    (docs/benchmark.md, "Baselines under the protocol")."""
    from mmtrack_kd.models.losses import FitNetsLoss
    t = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    s = [torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)]
    assert CrossModelFeatureLoss()(s, t).item() == pytest.approx(
        2 * FitNetsLoss(reduction='sum')(s, t).item(), rel=1e-6)
    # the attention term makes it another loss
    assert CrossModelFeatureLoss(att_weight=1.)(s, t).item() != \
        pytest.approx(2 * FitNetsLoss(reduction='sum')(s, t).item(),
                      rel=1e-3)
