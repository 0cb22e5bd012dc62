import pytest
import torch

from mmtrack_kd.models.losses import PredictionDifferenceLoss
from mmtrack_kd.models.losses.prediction_difference_loss import \
    bernoulli_kl_with_logits

SHAPE = (64, 64)
V5 = dict(type='yolov5', anchors=[[8, 24, 11, 34], [32, 96, 45, 135]],
          strides=[8, 16], num_classes=1)


def _v5_preds(seed=0, obj=-6.):
    """Two levels (8x8 and 4x4), 2 anchors x (5 + 1) channels; objectness
    low except at a few confident cells."""
    g = torch.Generator().manual_seed(seed)
    preds = []
    for hw in (8, 4):
        p = torch.randn(2, 12, hw, hw, generator=g) * 0.5
        p = p.view(2, 2, 6, hw, hw)
        p[:, :, 4] = obj
        p[:, 0, 4, 1, 2] = 3.  # confident anchor 0 at row 1, col 2
        p[:, 1, 4, 2, 1] = 2.
        preds.append(p.view(2, 12, hw, hw))
    return preds


def _clone(preds, grad=True):
    return [p.detach().clone().requires_grad_(grad) for p in preds]


def test_bernoulli_kl_is_zero_on_equal_and_positive_otherwise():
    o = torch.linspace(-5, 5, 11)
    assert bernoulli_kl_with_logits(o, o).abs().max() < 1e-6
    assert (bernoulli_kl_with_logits(o + 1, o) > 0).all()


def test_zero_when_equal_and_grad_to_student_only():
    loss_fn = PredictionDifferenceLoss(V5, topk=10)
    t = _clone(_v5_preds())
    s = _clone(t)
    assert loss_fn(s, t, SHAPE).item() == pytest.approx(0., abs=1e-5)
    s2 = _clone(_v5_preds(seed=1))
    loss = loss_fn(s2, t, SHAPE)
    assert loss.item() > 1e-3
    loss.backward()
    assert all(p.grad is None for p in t)
    assert sum(p.grad.abs().sum() for p in s2) > 0


def test_weight_rises_where_student_disagrees():
    loss_fn = PredictionDifferenceLoss(V5, topk=2)
    t = _v5_preds()
    s = [p.clone() for p in t]
    s[0].view(2, 2, 6, 8, 8)[:, 0, 4, 1, 2] = -1.  # student misses it
    s[0].view(2, 2, 6, 8, 8)[:, 0, 2, 1, 2] += 1.  # and its box is wider
    _, _, _, _, score, keep = loss_fn.select(s, t, SHAPE)
    # flat index of level 0, anchor 0, row 1, col 2
    idx = 0 * 64 + 1 * 8 + 2
    assert (score.argmax(1) == idx).all()
    assert keep[:, idx].all()
    others = score.clone()
    others[:, idx] = 0
    assert (score[:, idx] > 10 * others.max(1).values).all()
    # a candidate where both agree is still a candidate but scores ~0
    assert score[:, 64 + 2 * 8 + 1].max() < 1e-4
    # teacher-only confidence is enough to be a candidate: low obj in S
    loss = loss_fn(s, t, SHAPE)
    assert loss.item() > 0.1


def test_topk_limits_samples_and_no_candidate_is_finite():
    loss_fn = PredictionDifferenceLoss(V5, topk=1)
    t = _v5_preds()
    s = _v5_preds(seed=3)
    *_, keep = loss_fn.select(s, t, SHAPE)
    assert (keep.sum(1) <= 1).all()
    quiet_t = _v5_preds(obj=-9.)
    quiet_s = _clone(_v5_preds(seed=1, obj=-9.))
    for p in quiet_t + quiet_s:
        p.data.view(2, 2, 6, *p.shape[-2:])[:, :, 4] = -9.
    loss = loss_fn(quiet_s, quiet_t, SHAPE)
    assert torch.isfinite(loss) and loss.item() == 0
    loss.backward()
    assert all(p.grad is not None for p in quiet_s)


def test_identity_difference_equal_and_different_widths():
    loss_fn = PredictionDifferenceLoss(V5, topk=50, score_weights=(0, 0, 1))
    t = _v5_preds()
    g = torch.Generator().manual_seed(4)
    emb_T = torch.randn(2, 16, 8, 8, generator=g)
    emb_S = emb_T.clone()
    emb_S[:, :, 1, 2] = torch.randn(2, 16, generator=g)
    *_, score, keep = loss_fn.select(t, t, SHAPE, emb_S, emb_T)
    idx = 1 * 8 + 2
    assert (score[:, idx] > 0.2).all()
    assert score[:, 64 + 2 * 8 + 1].abs().max() < 1e-5
    # a 32-d student that is an orthogonal image of the 16-d teacher has no
    # identity difference (relational form)
    q, _ = torch.linalg.qr(torch.randn(32, 16, generator=g))
    emb_wide = torch.einsum('ed,ndhw->nehw', q, emb_T)
    *_, score_w, _ = loss_fn.select(t, t, SHAPE, emb_wide, emb_T)
    assert score_w.abs().max() < 1e-5
    emb_wide[:, :, 1, 2] = torch.randn(2, 32, generator=g)
    *_, score_w, _ = loss_fn.select(t, t, SHAPE, emb_wide, emb_T)
    assert (score_w[:, idx] > 0.02).all()
    assert (score_w.argmax(1) == idx).all()


def test_yolox_decoder_and_config_errors():
    loss_fn = PredictionDifferenceLoss(dict(type='yolox', strides=[8, 16]))
    g = torch.Generator().manual_seed(0)

    def head(seed_shift=0.):
        cls = [torch.randn(2, 1, h, h, generator=g) for h in (8, 4)]
        reg = [torch.randn(2, 4, h, h, generator=g) * 0.1 + seed_shift
               for h in (8, 4)]
        obj = [torch.randn(2, 1, h, h, generator=g) for h in (8, 4)]
        return cls, reg, obj

    t = head()
    assert loss_fn(t, t, SHAPE).item() == pytest.approx(0., abs=1e-5)
    s = head(0.3)
    s = tuple([x.requires_grad_(True) for x in lv] for lv in s)
    loss = loss_fn(s, t, SHAPE)
    assert loss.item() > 0
    loss.backward()
    assert s[1][0].grad is not None
    with pytest.raises(ValueError, match='decoder'):
        PredictionDifferenceLoss(dict(type='yolov8', strides=[8]))
    with pytest.raises(ValueError, match='anchors'):
        PredictionDifferenceLoss(dict(type='yolov5', strides=[8]))
