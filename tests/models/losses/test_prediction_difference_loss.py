import re

import numpy as np
import pytest
import torch

from mmtrack_kd.models.losses import PredictionDifferenceLoss
from mmtrack_kd.models.losses.prediction_difference_loss import (
    bernoulli_kl_with_logits,
)
from mmtrack_kd.models.task_modules import (
    BaseResponseDecoder,
    YOLOv5ResponseDecoder,
)

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
    # different ID maps give the candidates a score > 0, so the weighted
    # mean itself is computed (not the early return of an all-zero score)
    # and is 0 because every per-sample term vanishes
    g = torch.Generator().manual_seed(1)
    emb_S = torch.randn(2, 8, 8, 8, generator=g)
    emb_T = torch.randn(2, 8, 8, 8, generator=g)
    *_, score, keep = loss_fn.select(s, t, SHAPE, emb_S, emb_T)
    assert keep.any() and score[keep].min() > 0.1
    assert loss_fn(s, t, SHAPE, emb_S, emb_T).item() == pytest.approx(
        0., abs=1e-5)
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


# ---------------------------------------------------------------------------
# Reference values computed by hand (numpy, float64, independent of the
# package): decoding, the candidate rule, the difference score and its
# weights, top-k, the Bernoulli KL, GIoU and the weighted mean are pinned.
# ---------------------------------------------------------------------------
REF_SHAPE = (16, 16)  # input; one 2 x 2 level at stride 8
REF_V5 = dict(type='yolov5', anchors=[[12, 20, 6, 10]], strides=[8],
              num_classes=1)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _np_decode_v5(pred, anchors, stride):
    """pred (N, A*6, H, W) -> boxes (N, M, 4), objectness logits (N, M),
    priors ordered anchor, row, column."""
    n, _, h, w = pred.shape
    a = len(anchors) // 2
    p = pred.reshape(n, a, 6, h, w)
    boxes = np.zeros((n, a, h, w, 4))
    for k in range(a):
        for r in range(h):
            for c in range(w):
                x, y, bw, bh = (_sig(p[:, k, i, r, c]) for i in range(4))
                cx, cy = (2 * x - 0.5 + c) * stride, (2 * y - 0.5 + r) * stride
                bw = (2 * bw)**2 * anchors[2 * k]
                bh = (2 * bh)**2 * anchors[2 * k + 1]
                boxes[:, k, r, c] = np.stack(
                    [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)
    return boxes.reshape(n, -1, 4), p[:, :, 4].reshape(n, -1)


def _np_iou_giou(b1, b2):
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    iw = max(0., min(b1[2], b2[2]) - max(b1[0], b2[0]))
    ih = max(0., min(b1[3], b2[3]) - max(b1[1], b2[1]))
    inter = iw * ih
    union = area(b1) + area(b2) - inter
    hull = (max(b1[2], b2[2]) - min(b1[0], b2[0])) * (
        max(b1[3], b2[3]) - min(b1[1], b2[1]))
    return inter / union, inter / union - (hull - union) / hull


def _np_bern_kl(p, q):
    """KL(Bern(p) || Bern(q))."""
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=100, beta=1., thr=0.1,
                weights=(1., 1., 1.), id_diff=None, weight=1.,
                cand_rule=max, per_sample=None):
    """Returns the loss and, per image, the kept prior indices and their
    scores. ``id_diff``: (N, M) identity differences or None."""
    p_s, p_t = _sig(obj_s), _sig(obj_t)
    num = den = 0.
    kept = []
    for i in range(len(obj_s)):
        cands = [k for k in range(obj_s.shape[1])
                 if cand_rule(p_s[i, k], p_t[i, k]) > thr]
        scores = {}
        for k in cands:
            iou, _ = _np_iou_giou(box_t[i, k], box_s[i, k])
            scores[k] = weights[0] * abs(p_t[i, k] - p_s[i, k]) + \
                weights[1] * (1 - iou)
            if id_diff is not None:
                scores[k] += weights[2] * id_diff[i, k]
        top = sorted(cands, key=lambda k: -scores[k])[:topk]
        kept.append({k: scores[k] for k in top})
        for k in top:
            _, giou = _np_iou_giou(box_s[i, k], box_t[i, k])
            per = _np_bern_kl(p_t[i, k], p_s[i, k]) + beta * (1 - giou)
            if per_sample is not None:
                per = per_sample(p_t[i, k], p_s[i, k], box_s[i, k],
                                 box_t[i, k])
            num += scores[k] * per
            den += scores[k]
    return weight * num / den, kept


def _ref_heads():
    """Two frames, 2 anchors on a 2 x 2 map (8 priors per frame)."""
    rng = np.random.default_rng(11)
    t = rng.normal(0, 1., (2, 2, 6, 2, 2))
    s = t + rng.normal(0, 0.6, (2, 2, 6, 2, 2))
    t[:, :, 4], s[:, :, 4] = -6., -7.  # nobody confident ...
    # frame 0: (anchor, row, col)
    t[0, 0, 4, 0, 0], s[0, 0, 4, 0, 0] = 2.0, 0.5  # both confident
    t[0, 1, 4, 0, 1], s[0, 1, 4, 0, 1] = 1.0, -4.  # only the teacher
    t[0, 0, 4, 1, 1], s[0, 0, 4, 1, 1] = -4., 1.5  # only the student
    t[0, 1, 4, 1, 0], s[0, 1, 4, 1, 0] = -2.5, -3.  # both below 0.1
    # the student's box of (0, 0, 0) far to the right: no overlap
    s[0, 0, 0, 0, 0], t[0, 0, 0, 0, 0] = 4., -4.
    s[0, 0, 2, 0, 0], t[0, 0, 2, 0, 0] = -2., -1.
    # frame 1: four candidates, top-3 keeps three
    t[1, 0, 4, 0, 0], s[1, 0, 4, 0, 0] = 0.3, 0.2
    t[1, 1, 4, 1, 1], s[1, 1, 4, 1, 1] = 3.0, -1.
    t[1, 0, 4, 0, 1], s[1, 0, 4, 0, 1] = -3., 0.1
    t[1, 1, 4, 1, 0], s[1, 1, 4, 1, 0] = 1.2, 2.4
    return s.reshape(2, 12, 2, 2), t.reshape(2, 12, 2, 2)


REF_PRED_S, REF_PRED_T = _ref_heads()


def _ref_torch(grad=False):
    return ([torch.tensor(REF_PRED_S).requires_grad_(grad)],
            [torch.tensor(REF_PRED_T)])


def _ref_decoded():
    box_s, obj_s = _np_decode_v5(REF_PRED_S, REF_V5['anchors'][0], 8)
    box_t, obj_t = _np_decode_v5(REF_PRED_T, REF_V5['anchors'][0], 8)
    return box_s, obj_s, box_t, obj_t


def test_reference_decoding_and_candidates():
    box_s, obj_s, box_t, obj_t = _ref_decoded()
    loss_fn = PredictionDifferenceLoss(REF_V5, topk=3)
    got_bs, got_os, got_bt, got_ot, _, keep = loss_fn.select(
        *_ref_torch(), REF_SHAPE)
    np.testing.assert_allclose(got_bs.detach().numpy(), box_s, atol=1e-9)
    np.testing.assert_allclose(got_bt.numpy(), box_t, atol=1e-9)
    np.testing.assert_allclose(got_os.detach().numpy(), obj_s, atol=0)
    # flat index = anchor * 4 + row * 2 + col
    _, kept = _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=3)
    assert sorted(kept[0]) == [0, 3, 5]  # teacher-only 5, student-only 3
    assert len(kept[1]) == 3
    assert [sorted(np.flatnonzero(k)) for k in keep.numpy()] == \
        [sorted(k) for k in kept]
    # the ingredients the reference must tell apart are present
    iou, giou = _np_iou_giou(box_s[0, 0], box_t[0, 0])
    assert iou == 0 and giou < -0.1
    _, min_kept = _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=3,
                              cand_rule=min)
    assert sorted(min_kept[0]) == [0]


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(topk=3, beta=0.7, loss_weight=1.3),
    dict(score_weights=(0.3, 2.0, 0.), obj_thr=0.05),
    dict(score_weights=(2.0, 0.1, 1.), topk=2),
])
def test_reference_value(kwargs):
    box_s, obj_s, box_t, obj_t = _ref_decoded()
    loss = PredictionDifferenceLoss(REF_V5, **kwargs)(*_ref_torch(True),
                                                      REF_SHAPE)
    want, _ = _np_pd_loss(
        box_s, obj_s, box_t, obj_t, topk=kwargs.get('topk', 100),
        beta=kwargs.get('beta', 1.), thr=kwargs.get('obj_thr', 0.1),
        weights=kwargs.get('score_weights', (1., 1., 1.)),
        weight=kwargs.get('loss_weight', 1.))
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(want, rel=1e-7)


def test_reference_each_term_matters():
    """The reference value moves by far more than its tolerance if any
    ingredient changes: KL direction, the objectness term, GIoU vs IoU, the
    difference weighting (vs a plain mean), the candidate rule."""
    box_s, obj_s, box_t, obj_t = _ref_decoded()
    got = PredictionDifferenceLoss(REF_V5, topk=3)(*_ref_torch(),
                                                   REF_SHAPE).item()
    base, kept = _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=3)
    assert got == pytest.approx(base, rel=1e-7)

    def giou_term(bs, bt):
        return 1 - _np_iou_giou(bs, bt)[1]

    wrong = [
        # KL(S || T)
        lambda pt, ps, bs, bt: _np_bern_kl(ps, pt) + giou_term(bs, bt),
        # no objectness term
        lambda pt, ps, bs, bt: giou_term(bs, bt),
        # IoU instead of GIoU
        lambda pt, ps, bs, bt: _np_bern_kl(pt, ps) + 1 - _np_iou_giou(
            bs, bt)[0],
    ]
    for per in wrong:
        value, _ = _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=3,
                               per_sample=per)
        assert abs(value - base) > 1e-3 * base
    # a plain mean over the kept samples
    pers = [_np_bern_kl(_sig(obj_t[i, k]), _sig(obj_s[i, k])) +
            giou_term(box_s[i, k], box_t[i, k])
            for i in range(2) for k in kept[i]]
    assert abs(np.mean(pers) - base) > 1e-3 * base
    value, _ = _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=3,
                           cand_rule=min)
    assert abs(value - base) > 1e-3 * base


def _np_cell(k, emb_hw, shape, grid=(2, 2), stride=8):
    """Cell on the ID map of prior k (anchor, row, col) of the 2 x 2 grid:
    the one holding the prior's cell centre, clamped into the map."""
    r, c = divmod(k % (grid[0] * grid[1]), grid[1])
    sy, sx = shape[0] / emb_hw[0], shape[1] / emb_hw[1]
    return (min(int((r + 0.5) * stride // sy), emb_hw[0] - 1),
            min(int((c + 0.5) * stride // sx), emb_hw[1] - 1))


def _np_id_diff(emb_s, emb_t, obj_t, cands, num_ref, shape):
    """Identity difference (N, M) of every prior, equal or different
    widths."""
    n, m = obj_t.shape
    hw = emb_t.shape[-2:]
    out = np.zeros((n, m))
    for i in range(n):
        unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
        es = {k: unit(emb_s[i][(slice(None), ) + _np_cell(k, hw, shape)])
              for k in range(m)}
        et = {k: unit(emb_t[i][(slice(None), ) + _np_cell(k, hw, shape)])
              for k in range(m)}
        if emb_s.shape[1] == emb_t.shape[1]:
            for k in range(m):
                out[i, k] = 1 - es[k] @ et[k]
            continue
        refs = sorted(cands[i], key=lambda k: -obj_t[i, k])[:num_ref]
        for k in range(m):
            out[i, k] = np.mean([abs(es[k] @ es[j] - et[k] @ et[j])
                                 for j in refs]) / 2 if refs else 0.
    return out


@pytest.mark.parametrize('ds,num_ref,emb_hw,shape,quiet_first', [
    (5, 32, (4, 4), REF_SHAPE, False),
    (3, 2, (4, 4), REF_SHAPE, False),
    (7, 1, (4, 4), REF_SHAPE, False),
    # ID map at the head's own stride: prior (row, col) reads (row, col)
    (5, 32, (2, 2), REF_SHAPE, False),
    (3, 32, (2, 2), REF_SHAPE, False),
    # a 12 x 12 input, the head grid padded to 16 x 16: the last prior
    # centre (12) falls off the 3 x 3 ID map and is clamped onto it
    (5, 32, (3, 3), (12, 12), False),
    (3, 4, (3, 3), (12, 12), False),
    # no candidate at all in the first frame
    (3, 32, (4, 4), REF_SHAPE, True),
])
def test_reference_value_with_identity_difference(ds, num_ref, emb_hw,
                                                  shape, quiet_first):
    """Equal widths: 1 - cos; different widths: the relational form over
    the ``num_ref`` candidates the teacher is most sure of."""
    rng = np.random.default_rng(ds)
    emb_t = rng.normal(0, 1, (2, 5) + emb_hw)
    emb_s = rng.normal(0, 1, (2, ds) + emb_hw)
    if ds == 5:
        emb_s = emb_t + 0.8 * emb_s
    pred_s, pred_t = REF_PRED_S.copy(), REF_PRED_T.copy()
    if quiet_first:
        pred_s.reshape(2, 2, 6, 2, 2)[0, :, 4] = -6.
        pred_t.reshape(2, 2, 6, 2, 2)[0, :, 4] = -6.
    box_s, obj_s = _np_decode_v5(pred_s, REF_V5['anchors'][0], 8)
    box_t, obj_t = _np_decode_v5(pred_t, REF_V5['anchors'][0], 8)
    cands = [[k for k in range(8)
              if max(_sig(obj_s[i, k]), _sig(obj_t[i, k])) > 0.1]
             for i in range(2)]
    assert bool(cands[0]) != quiet_first
    id_diff = _np_id_diff(emb_s, emb_t, obj_t, cands, num_ref, shape)
    assert (id_diff[1] > 1e-3).sum() >= 4
    weights = (0.5, 1.5, 2.0)
    loss_fn = PredictionDifferenceLoss(REF_V5, topk=3, beta=0.8,
                                       score_weights=weights,
                                       num_ref=num_ref)
    s = [torch.tensor(pred_s).requires_grad_(True)]
    t = [torch.tensor(pred_t)]
    *_, score, keep = loss_fn.select(s, t, shape, torch.tensor(emb_s),
                                     torch.tensor(emb_t))
    want, kept = _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=3, beta=0.8,
                             weights=weights, id_diff=id_diff)
    for i in range(2):
        for k, value in kept[i].items():
            assert score[i, k].item() == pytest.approx(value, rel=1e-6)
    loss = loss_fn(s, t, shape, torch.tensor(emb_s), torch.tensor(emb_t))
    assert loss.item() == pytest.approx(want, rel=1e-6)
    # without the identity term the value differs
    plain, _ = _np_pd_loss(box_s, obj_s, box_t, obj_t, topk=3, beta=0.8,
                           weights=weights)
    assert abs(plain - want) > 1e-3 * want


def test_reference_value_yolox():
    """YOLOX decoding: centre (d + col) * stride, size exp(log wh) * stride,
    one prior per cell."""
    rng = np.random.default_rng(5)
    strides = [8, 16]
    sizes = [(2, 2), (1, 1)]
    t = [(rng.normal(0, 1, (2, 1) + hw), rng.normal(0, 0.4, (2, 4) + hw),
          rng.normal(0, 2, (2, 1) + hw)) for hw in sizes]
    s = [tuple(x + rng.normal(0, 0.5, x.shape) for x in lv) for lv in t]

    def decode(head):
        boxes, objs = [], []
        for (_, reg, obj), stride, (h, w) in zip(head, strides, sizes):
            for r in range(h):
                for c in range(w):
                    cx = (reg[:, 0, r, c] + c) * stride
                    cy = (reg[:, 1, r, c] + r) * stride
                    bw = np.exp(reg[:, 2, r, c]) * stride
                    bh = np.exp(reg[:, 3, r, c]) * stride
                    boxes.append(np.stack([cx - bw / 2, cy - bh / 2,
                                           cx + bw / 2, cy + bh / 2], -1))
                    objs.append(obj[:, 0, r, c])
        return np.stack(boxes, 1), np.stack(objs, 1)

    box_s, obj_s = decode(s)
    box_t, obj_t = decode(t)
    want, _ = _np_pd_loss(box_s, obj_s, box_t, obj_t, beta=1.2)

    def as_torch(head):
        return tuple([torch.tensor(lv[j]) for lv in head] for j in range(3))

    loss = PredictionDifferenceLoss(
        dict(type='yolox', strides=strides), beta=1.2)(as_torch(s),
                                                       as_torch(t),
                                                       REF_SHAPE)
    assert loss.item() == pytest.approx(want, rel=1e-7)


def test_zero_when_equal_reaches_the_formula():
    """Equal heads but different ID maps: the candidates score > 0 (identity
    difference), so the weighted mean is computed, and it is 0 because every
    per-sample term (KL, 1 - GIoU) vanishes."""
    s, t = _ref_torch(True)
    s = [torch.tensor(REF_PRED_T).requires_grad_(True)]
    rng = np.random.default_rng(2)
    emb_t = torch.tensor(rng.normal(0, 1, (2, 5, 4, 4)))
    emb_s = torch.tensor(rng.normal(0, 1, (2, 5, 4, 4)))
    loss_fn = PredictionDifferenceLoss(REF_V5)
    *_, score, keep = loss_fn.select(s, t, REF_SHAPE, emb_s, emb_t)
    assert keep.any() and score[keep].min() > 1e-3
    loss = loss_fn(s, t, REF_SHAPE, emb_s, emb_t)
    assert loss.item() == pytest.approx(0., abs=1e-6)
    loss.backward()
    assert s[0].grad.abs().max() < 1e-5


def test_one_sgd_step_lowers_the_loss():
    for kwargs in (dict(), dict(topk=3, beta=0.5)):
        loss_fn = PredictionDifferenceLoss(REF_V5, **kwargs)
        s, t = _ref_torch(True)
        before = loss_fn(s, t, REF_SHAPE)
        before.backward()
        with torch.no_grad():
            s2 = [s[0] - 0.05 * s[0].grad]
        after = loss_fn(s2, t, REF_SHAPE)
        assert after.item() < before.item()


def test_defaults():
    loss_fn = PredictionDifferenceLoss(REF_V5)
    assert (loss_fn.topk, loss_fn.beta, loss_fn.obj_thr, loss_fn.num_ref,
            loss_fn.loss_weight) == (100, 1.0, 0.1, 32, 1.0)
    assert loss_fn.score_weights == (1.0, 1.0, 1.0)


def test_candidate_threshold_is_strict():
    """A prior where both models sit exactly at ``obj_thr`` (logit 0,
    sigmoid 0.5) is not a candidate."""
    pred_s, pred_t = REF_PRED_S.copy(), REF_PRED_T.copy()
    # frame 1, anchor 1, row 0, col 0 (flat prior 4)
    pred_s.reshape(2, 2, 6, 2, 2)[1, 1, 4, 0, 0] = 0.
    pred_t.reshape(2, 2, 6, 2, 2)[1, 1, 4, 0, 0] = 0.
    box_s, obj_s = _np_decode_v5(pred_s, REF_V5['anchors'][0], 8)
    box_t, obj_t = _np_decode_v5(pred_t, REF_V5['anchors'][0], 8)
    want, kept = _np_pd_loss(box_s, obj_s, box_t, obj_t, thr=0.5)
    assert 4 not in kept[1] and kept[0] and kept[1]
    at_thr, _ = _np_pd_loss(box_s, obj_s, box_t, obj_t, thr=0.5,
                            cand_rule=lambda a, b: max(a, b) + 1e-12)
    assert abs(at_thr - want) > 1e-3 * want
    loss = PredictionDifferenceLoss(REF_V5, obj_thr=0.5)(
        [torch.tensor(pred_s)], [torch.tensor(pred_t)], REF_SHAPE)
    assert loss.item() == pytest.approx(want, rel=1e-7)


def test_small_total_weight_still_counts():
    """One disagreeing prior with a score well below 1 (every other
    candidate agrees): the loss is its own per-sample term, not 0."""
    pred_t = REF_PRED_T.copy()
    pred_s = pred_t.copy()
    pred_s.reshape(2, 2, 6, 2, 2)[1, 1, 4, 1, 1] += 0.3  # p 0.953 -> 0.964
    box_s, obj_s = _np_decode_v5(pred_s, REF_V5['anchors'][0], 8)
    box_t, obj_t = _np_decode_v5(pred_t, REF_V5['anchors'][0], 8)
    want, kept = _np_pd_loss(box_s, obj_s, box_t, obj_t)
    assert sum(sum(k.values()) for k in kept) < 0.1
    kl = _np_bern_kl(_sig(obj_t[1, 7]), _sig(obj_s[1, 7]))
    assert want == pytest.approx(kl, rel=1e-4) and want > 1e-4
    loss = PredictionDifferenceLoss(REF_V5)([torch.tensor(pred_s)],
                                            [torch.tensor(pred_t)],
                                            REF_SHAPE)
    # the agreeing candidates keep a score of about 1e-9 (the IoU's eps),
    # against about 0.01 for the disagreeing one
    assert loss.item() == pytest.approx(want, rel=1e-5)


def test_student_embedding_alone_is_ignored():
    s, t = _ref_torch()
    loss_fn = PredictionDifferenceLoss(REF_V5)
    emb = torch.randn(2, 5, 4, 4, dtype=torch.float64)
    assert loss_fn(s, t, REF_SHAPE, emb_S=emb).item() == \
        loss_fn(s, t, REF_SHAPE).item()


def test_no_candidate_keeps_every_head_output_in_the_graph():
    """YOLOX: boxes and objectness come from different tensors; the zero
    returned without candidates reaches both."""
    hw = (2, 2)
    cls = [torch.zeros(2, 1, *hw, requires_grad=True)]
    reg = [torch.zeros(2, 4, *hw, requires_grad=True)]
    obj = [torch.full((2, 1, *hw), -9., requires_grad=True)]
    loss_fn = PredictionDifferenceLoss(dict(type='yolox', strides=[8]))
    loss = loss_fn((cls, reg, obj), ([torch.zeros(2, 1, *hw)],
                                     [torch.zeros(2, 4, *hw)],
                                     [torch.full((2, 1, *hw), -9.)]),
                   REF_SHAPE)
    assert loss.item() == 0
    loss.backward()
    assert reg[0].grad is not None and obj[0].grad is not None


def _raises(msg):
    return pytest.raises(ValueError, match='^' + re.escape(msg) + '$')


def test_errors_name_the_loss():
    with _raises('PredictionDifferenceLoss: topk must be >= 1, got 0'):
        PredictionDifferenceLoss(REF_V5, topk=0)
    with _raises('PredictionDifferenceLoss: score_weights must be (w_obj, '
                 'w_loc, w_id), each >= 0, got (1, 1)'):
        PredictionDifferenceLoss(REF_V5, score_weights=(1, 1))
    # a negative weight would make sample weights negative
    with _raises('PredictionDifferenceLoss: score_weights must be (w_obj, '
                 'w_loc, w_id), each >= 0, got (1, -0.5, 1)'):
        PredictionDifferenceLoss(REF_V5, score_weights=(1, -0.5, 1))
    with pytest.raises(ValueError, match='^PredictionDifferenceLoss: '):
        PredictionDifferenceLoss(dict(type='yolov8', strides=[8]))
    loss_fn = PredictionDifferenceLoss(REF_V5)
    s, t = _ref_torch()
    with _raises('PredictionDifferenceLoss: student and teacher decode to '
                 '(2, 18, 4) and (2, 8, 4) priors; heads must match'):
        loss_fn([torch.zeros(2, 12, 3, 3, dtype=torch.float64)], t,
                REF_SHAPE)
    emb = torch.zeros(2, 5, 4, 4)
    with _raises('PredictionDifferenceLoss: emb_S (1, 5, 4, 4) and emb_T '
                 '(2, 5, 4, 4) must share N, H, W'):
        loss_fn(s, t, REF_SHAPE, emb[:1], emb)
    with _raises('PredictionDifferenceLoss: emb_S (2, 5, 4, 4) and emb_T '
                 '(2, 5, 4, 3) must share N, H, W'):
        loss_fn(s, t, REF_SHAPE, emb, emb[..., :3])


def test_gt_gate_drops_the_teachers_mistakes():
    """gt_iou_thr: a teacher detection without GT (false positive) and a
    student detection on a GT the teacher misses are not distilled."""
    plain = PredictionDifferenceLoss(V5, topk=50)
    gated = PredictionDifferenceLoss(V5, topk=50, gt_iou_thr=0.5)
    t = _v5_preds()
    s = _v5_preds(seed=2)
    # the student alone fires at level 1, anchor 0, row 3, col 3
    s[1].view(2, 2, 6, 4, 4)[:, 0, 4, 3, 3] = 4.
    box_T, _, _ = plain.decoder(t)
    box_S, _, _ = plain.decoder(s)
    hit = 0 * 64 + 1 * 8 + 2  # teacher's confident prior, kept as true
    fp = 64 + 2 * 8 + 1  # teacher's other confident prior: no GT there
    miss = 128 + 3 * 4 + 3  # level 1: student only, on a GT box
    gts = [torch.stack([box_T[i, hit], box_S[i, miss]]) for i in range(2)]
    *_, keep_plain = plain.select(s, t, SHAPE)
    *_, keep = gated.select(s, t, SHAPE, gt_bboxes=gts)
    for k in (hit, fp, miss):
        assert keep_plain[:, k].all(), k
    assert keep[:, hit].all()
    assert not keep[:, fp].any() and not keep[:, miss].any()
    assert gated(s, t, SHAPE, gt_bboxes=gts).item() > 0
    # no GT at all: every teacher detection is a false positive
    *_, keep = gated.select(s, t, SHAPE,
                            gt_bboxes=[torch.zeros(0, 4)] * 2)
    assert not keep[:, hit].any()
    with pytest.raises(ValueError, match='no gt_bboxes'):
        gated(s, t, SHAPE)
    with pytest.raises(ValueError, match='gt_iou_thr'):
        PredictionDifferenceLoss(V5, gt_iou_thr=0.)


def _same_value_and_gradient(loss_a, loss_b, preds_S, preds_T, extra):
    """Both losses on copies of ``preds_S``: a positive value, equal to
    1e-6, and equal gradients; returns the gradients (two lists)."""
    values, grads = [], []
    for loss_fn in (loss_a, loss_b):
        s = _clone(preds_S)
        loss = loss_fn(s, preds_T, SHAPE, **extra)
        loss.backward()
        values.append(loss.detach())
        grads.append([p.grad for p in s])
    assert values[0].item() > 0
    torch.testing.assert_close(values[0], values[1], rtol=1e-6, atol=0)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)
    return grads


class _EveryPriorV5(YOLOv5ResponseDecoder):
    """The YOLOv5 decoder without its selected-prior decoding: the loss
    decodes the student's every prior with its gradient."""
    decode_at = BaseResponseDecoder.decode_at


@pytest.mark.parametrize('kwargs', [
    dict(), dict(topk=3), dict(emb=True), dict(gt=True)])
def test_selected_decoding_equals_decoding_every_prior(kwargs):
    """With the YOLOv5 decoder the kept priors are decoded again with
    their gradient (the selection reads the student detached): the value
    and the gradient are those of decoding every prior with its gradient."""
    fast = PredictionDifferenceLoss(V5, topk=kwargs.get('topk', 100))
    slow = PredictionDifferenceLoss(V5, topk=kwargs.get('topk', 100))
    slow.decoder = _EveryPriorV5(V5['anchors'], V5['strides'])
    assert fast.decoder.decodes_selected
    assert not slow.decoder.decodes_selected
    t = _v5_preds()
    extra = {}
    if kwargs.get('emb'):
        g = torch.Generator().manual_seed(4)
        extra = dict(emb_S=torch.randn(2, 8, 8, 8, generator=g),
                     emb_T=torch.randn(2, 8, 8, 8, generator=g))
    if kwargs.get('gt'):
        fast.gt_iou_thr = slow.gt_iou_thr = 0.3
        box_T, _, _ = fast.decoder(t)
        extra = dict(gt_bboxes=[box_T[i, [10, 74]] for i in range(2)])
    grads = _same_value_and_gradient(fast, slow, _v5_preds(seed=2, obj=-1.),
                                     t, extra)
    # the gradient reaches the kept priors' cells only
    keep = fast.select(_v5_preds(seed=2, obj=-1.), t, SHAPE, **extra)[-1]
    flat = torch.cat([g.view(2, 2, 6, -1).transpose(1, 2).reshape(2, 6, -1)
                      for g in grads[0]], 2)
    assert torch.equal(flat.abs().sum(1) > 0, keep)


def test_selected_decoding_without_candidates_keeps_the_head_in_graph():
    loss_fn = PredictionDifferenceLoss(V5)
    t = _v5_preds()
    for p in t:  # no confident prior in either head
        p.view(2, 2, 6, *p.shape[-2:])[:, :, 4] = -12.
    s = _clone(t)
    loss = loss_fn(s, t, SHAPE)
    assert loss.item() == 0
    loss.backward()
    assert all(p.grad is not None and not p.grad.any() for p in s)


class _DenseV5(YOLOv5ResponseDecoder):
    """The YOLOv5 decoder without its layout: the loss decodes every
    prior's box to select (its kept priors still alone with a gradient)."""
    decodes_sparse = False


@pytest.mark.parametrize('emb_widths', [None, (8, 8), (4, 8)])
def test_sparse_selection_equals_the_dense_one(emb_widths):
    """YOLOv5's decoder lays the heads out and decodes boxes at the
    candidate priors only (``decodes_sparse``): the same scores (to the
    last bits of a sigmoid, vectorised or not), kept priors, value and
    gradient as decoding every prior (:meth:`select`)."""
    sparse = PredictionDifferenceLoss(V5, topk=3)
    dense = PredictionDifferenceLoss(V5, topk=3)
    dense.decoder = _DenseV5(V5['anchors'], V5['strides'])
    assert sparse.decoder.decodes_sparse and not dense.decoder.decodes_sparse
    t = _v5_preds()
    extra = {}
    if emb_widths:
        g = torch.Generator().manual_seed(4)
        extra = dict(emb_S=torch.randn(2, emb_widths[0], 8, 8, generator=g),
                     emb_T=torch.randn(2, emb_widths[1], 8, 8, generator=g))
    s0 = _v5_preds(seed=2, obj=-1.)
    obj_S, state_S = sparse.decoder.layout(s0)
    _, _, score, keep = sparse._select_sparse(
        obj_S, state_S, t, SHAPE, extra.get('emb_S'), extra.get('emb_T'),
        None)
    want = dense.select(s0, t, SHAPE, **extra)
    assert torch.equal(keep, want[-1])
    torch.testing.assert_close(score, want[-2], rtol=1e-6, atol=0)
    assert 0 < int(keep.sum()) < int((score > 0).sum())  # top 3 of more
    _same_value_and_gradient(sparse, dense, s0, t, extra)
