import re

import numpy as np
import pytest
import torch

from mmtrack_kd.models.losses import KeyFeatureLoss

SHAPE = (128, 128)  # input; maps at stride 8 -> 16 x 16
SMALL = torch.tensor([[8., 8., 16., 24.]])  # 1 x 2 cells
LARGE = torch.tensor([[64., 16., 128., 112.]])  # 8 x 12 cells


def _feat(seed=0, c=8, hw=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, c, hw, hw, generator=g)


def _cells(box, stride=8, hw=16):
    m = torch.zeros(hw, hw, dtype=torch.bool)
    x1, y1, x2, y2 = (box[0] / stride).tolist()
    m[int(y1):int(y2), int(x1):int(x2)] = True
    return m


def test_zero_when_equal_and_grad_to_student_only():
    loss_fn = KeyFeatureLoss()
    boxes = [torch.cat([SMALL, LARGE]), torch.zeros(0, 4)]
    t = _feat().requires_grad_(True)
    s = t.detach().clone().requires_grad_(True)
    assert loss_fn(s, t, boxes, SHAPE).item() == pytest.approx(0., abs=1e-7)
    s2 = _feat(1).requires_grad_(True)
    loss = loss_fn(s2, t, boxes, SHAPE)
    assert loss.item() > 0.1
    loss.backward()
    assert t.grad is None and s2.grad.abs().sum() > 0


def test_each_box_carries_the_same_total_weight():
    t = _feat()
    sp_T = t.abs().mean(1).softmax(-1)  # any positive attention works
    boxes = [torch.cat([SMALL, LARGE]), LARGE]
    w_fg, w_bg = KeyFeatureLoss.box_weights(sp_T, boxes, SHAPE)
    small, large = _cells(SMALL), _cells(LARGE)
    assert w_fg[0][small].sum().item() == pytest.approx(1., rel=1e-5)
    assert w_fg[0][large].sum().item() == pytest.approx(1., rel=1e-5)
    assert w_fg[0].sum().item() == pytest.approx(2., rel=1e-5)
    assert w_fg[1].sum().item() == pytest.approx(1., rel=1e-5)
    # background weight is zero inside boxes, positive elsewhere
    assert (w_bg[0][small | large] == 0).all()
    assert (w_bg[0][~(small | large)] > 0).all()


def test_tiny_box_without_cell_centre_is_kept():
    sp_T = torch.ones(1, 16, 16)
    tiny = [torch.tensor([[17., 17., 19., 19.]])]  # covers no cell centre
    w_fg, _ = KeyFeatureLoss.box_weights(sp_T, tiny, SHAPE)
    assert w_fg.sum().item() == pytest.approx(1.)
    assert w_fg[0, 2, 2].item() == pytest.approx(1.)


def _error_in(mask, t, scale=1.0):
    s = t.clone()
    s[:, :, mask] += scale
    return s


def test_small_target_not_drowned_by_large_target_or_background():
    """The same error over a whole small target costs as much fg loss as over
    a whole large target, and a huge background error does not change the fg
    term."""
    t = torch.ones(1, 4, 16, 16)  # flat teacher: uniform attention
    boxes = [torch.cat([SMALL, LARGE])]
    fg_only = KeyFeatureLoss(beta_bg=0., gamma_at=0.)
    small, large = _cells(SMALL), _cells(LARGE)
    l_small = fg_only(_error_in(small, t), t, boxes, SHAPE)
    l_large = fg_only(_error_in(large, t), t, boxes, SHAPE)
    assert l_small.item() == pytest.approx(l_large.item(), rel=1e-5)
    assert l_small.item() > 0
    bg = ~(small | large)
    noisy = _error_in(bg, _error_in(small, t), scale=10.)
    assert fg_only(noisy, t, boxes, SHAPE).item() == pytest.approx(
        l_small.item(), rel=1e-5)
    # background term on: the ~150 background cells with an error d weigh
    # as one mean (d), the 2-cell target with the same error d as one box out
    # of two (d / 2): not 150 to 2
    full = KeyFeatureLoss(alpha_fg=1., beta_bg=1., gamma_at=0.)
    both = full(_error_in(bg, _error_in(small, t)), t, boxes, SHAPE)
    assert both.item() == pytest.approx(3 * l_small.item(), rel=1e-5)


def test_attention_transfer_term():
    """A student with the right values but the wrong attention pattern pays
    only the attention term when fg/bg terms are off."""
    loss_fn = KeyFeatureLoss(alpha_fg=0., beta_bg=0., gamma_at=1.)
    t = _feat()
    assert loss_fn(t * 1.0, t, [SMALL, SMALL], SHAPE).item() == \
        pytest.approx(0., abs=1e-7)
    s = t.flip(-1)  # same values, attention moved
    assert loss_fn(s, t, [SMALL, SMALL], SHAPE).item() > 0.01


def test_finite_without_gt_and_levels_and_errors():
    loss_fn = KeyFeatureLoss()
    s = _feat(1).requires_grad_(True)
    t = _feat()
    loss = loss_fn(s, t, [torch.zeros(0, 4)] * 2, SHAPE)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(s.grad).all()
    one = loss_fn(s, t, [SMALL, torch.zeros(0, 4)], SHAPE)
    assert torch.isfinite(one) and one.item() > 0
    # a list of levels at strides 8 and 16 is averaged
    s16, t16 = _feat(2, hw=8), _feat(3, hw=8)
    boxes = [SMALL, LARGE]
    lv = loss_fn([s, s16], [t, t16], boxes, SHAPE)
    ref = (loss_fn(s, t, boxes, SHAPE) + loss_fn(s16, t16, boxes, SHAPE)) / 2
    assert lv.item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(ValueError, match='connector'):
        loss_fn(_feat(c=4), t, boxes, SHAPE)


def test_normalize_ignores_per_channel_scale_and_shift():
    """With normalize=True a student map that is the teacher's up to a
    per-channel affine map (positive scale) costs only the attention
    term; without it, it costs the squared difference."""
    boxes = [torch.cat([SMALL, LARGE]), SMALL]
    t = _feat()
    scale = torch.rand(1, 8, 1, 1) * 3 + 0.5
    s = t * scale + torch.randn(1, 8, 1, 1)
    plain = KeyFeatureLoss(gamma_at=0.)(s, t, boxes, SHAPE)
    normed = KeyFeatureLoss(gamma_at=0., normalize=True)(s, t, boxes, SHAPE)
    assert plain.item() > 0.1
    assert normed.item() == pytest.approx(0., abs=1e-4)
    # different patterns still cost, and the gradient reaches the student
    s2 = _feat(1).requires_grad_(True)
    loss = KeyFeatureLoss(normalize=True)(s2, t, boxes, SHAPE)
    assert loss.item() > 0.1
    loss.backward()
    assert s2.grad.abs().sum() > 0


# ---------------------------------------------------------------------------
# Reference values computed by hand (numpy, float64, independent of the
# package): attentions, box weights, fg/bg means, channel weighting, the
# attention-transfer term, temperature and normalize are all pinned.
# ---------------------------------------------------------------------------
REF_SHAPE = (32, 32)  # input; 4 x 4 maps at stride 8, 2 x 2 at stride 16


def _np_softmax(x):
    z = np.exp(x - x.max())
    return z / z.sum()


def _np_attention(f, temp):
    """f (C, H, W) -> spatial (H, W) and channel (C,) attention, mean 1."""
    c, h, w = f.shape
    a = np.abs(f)
    sp = h * w * _np_softmax(a.mean(0).ravel() / temp).reshape(h, w)
    ch = c * _np_softmax(a.mean((1, 2)) / temp)
    return sp, ch


def _np_box_masks(boxes, h, w, shape):
    """Cells whose centre lies in the box (edges included); a box covering
    no centre gets the cell of its own centre."""
    sx, sy = shape[1] / w, shape[0] / h
    xs, ys = (np.arange(w) + 0.5) * sx, (np.arange(h) + 0.5) * sy
    out = []
    for x1, y1, x2, y2 in boxes:
        m = ((ys[:, None] >= y1) & (ys[:, None] <= y2) & (xs[None] >= x1) &
             (xs[None] <= x2)).astype(float)
        if m.sum() == 0:
            m[int((y1 + y2) / 2 // sy), int((x1 + x2) / 2 // sx)] = 1.
        out.append(m)
    return out


def _np_standardize(f):
    mean = f.mean((1, 2), keepdims=True)
    std = f.std((1, 2), ddof=1, keepdims=True)
    return (f - mean) / (std + 1e-6)


def _np_kf_level(s, t, boxes, temp=0.5, alpha=1., beta=0.5, gamma=0.1,
                 normalize=False, spatial_from='T'):
    fg_num = fg_den = bg_num = bg_den = 0.
    sp_gap, ch_gap = [], []
    for s_f, t_f, b in zip(s, t, boxes):
        sp_t, ch_t = _np_attention(t_f, temp)
        sp_s, ch_s = _np_attention(s_f, temp)
        sp_w = sp_t if spatial_from == 'T' else sp_s
        sp_gap.append(np.abs(sp_s - sp_t).ravel())
        ch_gap.append(np.abs(ch_s - ch_t))
        c, h, w = t_f.shape
        if normalize:
            s_f, t_f = _np_standardize(s_f), _np_standardize(t_f)
        d = (ch_t[:, None, None] * (s_f - t_f)**2).mean(0)
        covered = np.zeros((h, w), bool)
        w_fg = np.zeros((h, w))
        for m in _np_box_masks(b, h, w, REF_SHAPE):
            w_fg += m * sp_w / (m * sp_w).sum()
            covered |= m > 0
        w_bg = np.where(covered, 0., sp_w)
        fg_num += (w_fg * d).sum()
        fg_den += w_fg.sum()
        bg_num += (w_bg * d).sum()
        bg_den += w_bg.sum()
    loss = 0.
    if fg_den > 0:
        loss += alpha * fg_num / fg_den
    if bg_den > 0:
        loss += beta * bg_num / bg_den
    at = np.concatenate(sp_gap).mean() + np.concatenate(ch_gap).mean()
    return loss + gamma * at


# frame 0: a 2 x 2-cell box and a tiny box (no cell centre inside, so its
# centre cell (2, 2)); frame 1: two overlapping boxes sharing two cells.
REF_BOXES = [[[0., 0., 16., 16.], [21., 21., 23., 23.]],
             [[8., 0., 32., 8.], [16., 0., 32., 16.]]]
_rng = np.random.default_rng(7)
# teacher: small values with a strong peak at cell (1, 1) of frame 0 (inside
# the first box) and a channel that dominates; student: its own peak at
# (0, 0) of frame 0 and (3, 3) of frame 1.
REF_T = _rng.normal(0, 0.3, (2, 3, 4, 4))
REF_T[0, :, 1, 1] += 3.
REF_T[:, 2] += 0.8
REF_S = REF_T + _rng.normal(0, 0.4, (2, 3, 4, 4))
REF_S[0, :, 0, 0] -= 2.5
REF_S[1, 0, 3, 3] += 2.
REF_T16 = _rng.normal(0, 1., (2, 3, 2, 2))
REF_S16 = REF_T16 + _rng.normal(0, 0.5, (2, 3, 2, 2))


def _t(x, grad=False):
    return torch.tensor(x, dtype=torch.float64).requires_grad_(grad)


def _ref_boxes():
    return [torch.tensor(b, dtype=torch.float64) for b in REF_BOXES]


def test_reference_masks_are_the_expected_cells():
    m = _np_box_masks(REF_BOXES[0], 4, 4, REF_SHAPE)
    assert np.argwhere(m[0]).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert np.argwhere(m[1]).tolist() == [[2, 2]]
    m = _np_box_masks(REF_BOXES[1], 4, 4, REF_SHAPE)
    assert np.argwhere(m[0]).tolist() == [[0, 1], [0, 2], [0, 3]]
    assert np.argwhere(m[1]).tolist() == [[0, 2], [0, 3], [1, 2], [1, 3]]


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(temperature=2.0),
    dict(temperature=0.2, alpha_fg=0.7, beta_bg=1.3, gamma_at=0.5,
         loss_weight=2.5),
    dict(normalize=True),
    dict(normalize=True, temperature=1.5, gamma_at=0.),
])
def test_reference_value(kwargs):
    kwargs = dict(kwargs)  # popped below; the parameter is shared
    loss = KeyFeatureLoss(**kwargs)(_t(REF_S, True), _t(REF_T), _ref_boxes(),
                                    REF_SHAPE)
    weight = kwargs.pop('loss_weight', 1.)
    args = dict(temp=kwargs.pop('temperature', 0.5),
                alpha=kwargs.pop('alpha_fg', 1.), beta=kwargs.pop(
                    'beta_bg', 0.5), gamma=kwargs.pop('gamma_at', 0.1),
                normalize=kwargs.pop('normalize', False))
    want = weight * _np_kf_level(REF_S, REF_T, REF_BOXES, **args)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(want, rel=1e-9)


def test_reference_levels_are_averaged():
    loss = KeyFeatureLoss(gamma_at=0.3)([_t(REF_S), _t(REF_S16)],
                                        [_t(REF_T), _t(REF_T16)],
                                        _ref_boxes(), REF_SHAPE)
    want = (_np_kf_level(REF_S, REF_T, REF_BOXES, gamma=0.3) +
            _np_kf_level(REF_S16, REF_T16, REF_BOXES, gamma=0.3)) / 2
    assert loss.item() == pytest.approx(want, rel=1e-9)


def test_reference_each_term_matters():
    """Every ingredient moves the reference value by far more than its
    tolerance: the teacher's spatial attention (not the student's) weighs
    the box cells, the teacher's channel attention weighs the channels, the
    temperature, the square of the error, the attention-transfer term and
    each term's weight."""
    base = _np_kf_level(REF_S, REF_T, REF_BOXES)
    got = KeyFeatureLoss()(_t(REF_S), _t(REF_T), _ref_boxes(),
                           REF_SHAPE).item()
    assert got == pytest.approx(base, rel=1e-9)
    wrong = [
        _np_kf_level(REF_S, REF_T, REF_BOXES, spatial_from='S'),
        _np_kf_level(REF_S, REF_T, REF_BOXES, temp=1.0),
        _np_kf_level(REF_S, REF_T, REF_BOXES, gamma=0.),
        _np_kf_level(REF_S, REF_T, REF_BOXES, alpha=0.),
        _np_kf_level(REF_S, REF_T, REF_BOXES, beta=0.),
    ]
    for value in wrong:
        assert abs(value - base) > 1e-3 * base
    # the teacher's peak is inside the first box: it takes most of that
    # box's weight, the student's peak cell only a little
    sp_t, _ = _np_attention(REF_T[0], 0.5)
    assert sp_t[1, 1] / sp_t[:2, :2].sum() > 0.9
    _, ch_t = _np_attention(REF_T[0], 0.5)
    assert ch_t.max() / ch_t.min() > 2  # channel weights far from uniform


def test_teacher_attention_picks_the_key_cell():
    """An error at the teacher's peak cell costs (almost) the whole box
    weight; the same error at a cell the student finds salient but the
    teacher does not costs little."""
    loss_fn = KeyFeatureLoss(alpha_fg=1., beta_bg=0., gamma_at=0.)
    t = _t(REF_T[:1])
    box = [_ref_boxes()[0][:1]]
    at_peak, at_other = t.clone(), t.clone()
    at_peak[0, :, 1, 1] += 1.
    at_other[0, :, 0, 0] += 1.
    hi = loss_fn(at_peak, t, box, REF_SHAPE).item()
    lo = loss_fn(at_other, t, box, REF_SHAPE).item()
    sp_t, ch_t = _np_attention(REF_T[0], 0.5)
    w = sp_t[:2, :2] / sp_t[:2, :2].sum()
    # D = mean_c A_c^T(c) * 1 = 1 at the changed cell; one box of weight 1
    assert hi == pytest.approx(w[1, 1], rel=1e-9)
    assert lo == pytest.approx(w[0, 0], rel=1e-9)
    assert hi > 0.9 and lo < 0.1


def test_zero_only_when_equal():
    loss_fn = KeyFeatureLoss()
    t = _t(REF_T)
    assert loss_fn(t.clone(), t, _ref_boxes(), REF_SHAPE).item() == 0.
    s = t.clone()
    s[1, 0, 3, 0] += 1e-2  # one background value of one channel
    assert loss_fn(s, t, _ref_boxes(), REF_SHAPE).item() > 1e-6
    s = t.clone()
    s[0, 1, 2, 2] += 1e-2  # inside the tiny box
    assert loss_fn(s, t, _ref_boxes(), REF_SHAPE).item() > 1e-6


def test_one_sgd_step_lowers_the_loss():
    for normalize in (False, True):
        loss_fn = KeyFeatureLoss(normalize=normalize)
        s = _t(REF_S, True)
        before = loss_fn(s, _t(REF_T), _ref_boxes(), REF_SHAPE)
        before.backward()
        with torch.no_grad():
            s2 = s - 0.05 * s.grad
        after = loss_fn(s2, _t(REF_T), _ref_boxes(), REF_SHAPE)
        assert after.item() < before.item()


@pytest.mark.parametrize('boxes', [
    # an empty first frame
    [[], REF_BOXES[1]],
    # every cell covered: no background term at all
    [[[0., 0., 32., 32.]], [[0., 0., 32., 16.], [0., 16., 32., 32.]]],
    # all but cell (3, 3) of frame 0 covered: the background weight sums to
    # less than 1 and still counts
    [[[0., 0., 32., 24.], [0., 24., 24., 32.]], [[0., 0., 32., 32.]]],
])
def test_reference_value_empty_and_fully_covered_frames(boxes):
    loss = KeyFeatureLoss(gamma_at=0.2)(
        _t(REF_S), _t(REF_T),
        [torch.tensor(b, dtype=torch.float64).view(-1, 4) for b in boxes],
        REF_SHAPE)
    want = _np_kf_level(REF_S, REF_T, boxes, gamma=0.2)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(want, rel=1e-9)
    if len(boxes[0]) == 2:
        sp_t, _ = _np_attention(REF_T[0], 0.5)
        assert 0 < sp_t[3, 3] < 1
        no_bg = _np_kf_level(REF_S, REF_T, boxes, gamma=0.2, beta=0.)
        assert abs(no_bg - want) > 1e-3 * want


def _raises(msg):
    return pytest.raises(ValueError, match='^' + re.escape(msg) + '$')


def test_errors_name_the_loss():
    loss_fn = KeyFeatureLoss()
    s, t = _t(REF_S), _t(REF_T)
    with _raises('KeyFeatureLoss: 1 gt_bboxes for a batch of 2'):
        loss_fn(s, t, _ref_boxes()[:1], REF_SHAPE)
    with pytest.raises(ValueError, match='^KeyFeatureLoss: student map '):
        loss_fn(s[:, :2], t, _ref_boxes(), REF_SHAPE)
    with pytest.raises(ValueError, match='^KeyFeatureLoss: preds_S has 1 '):
        loss_fn([s], [t, t], _ref_boxes(), REF_SHAPE)
    for temp in (0., -0.5):
        with _raises(f'KeyFeatureLoss: temperature must be > 0, got {temp}'):
            KeyFeatureLoss(temperature=temp)


def _full_level(s, t, boxes, temp=0.5, alpha=1., beta=0.5, gamma=0.1,
                normalize=False):
    """The whole computation of one level, every term computed and then
    weighted (also by a zero weight), Tensor.std for the standardisation:
    what the loss computed before it skipped zero-weighted terms."""
    from mmtrack_kd.models.losses.key_feature_loss import (
        spatial_channel_attention,
    )
    sp_t, ch_t = spatial_channel_attention(t, temp)
    sp_s, ch_s = spatial_channel_attention(s, temp)
    w_fg, w_bg = KeyFeatureLoss.box_weights(sp_t, boxes, REF_SHAPE)
    if normalize:
        s, t = [(x - x.mean((2, 3), keepdim=True)) /
                (x.std((2, 3), keepdim=True) + 1e-6) for x in (s, t)]
    d = ((s - t)**2 * ch_t[:, :, None, None]).mean(1)
    loss = alpha * (w_fg * d).sum() / w_fg.sum() + \
        beta * (w_bg * d).sum() / w_bg.sum()
    at = (sp_s - sp_t).abs().mean() + (ch_s - ch_t).abs().mean()
    return loss + gamma * at


@pytest.mark.parametrize('kwargs', [
    dict(gamma_at=0.),
    dict(beta_bg=0.),
    dict(beta_bg=0., gamma_at=0., normalize=True),  # the fragment's
    dict(beta_bg=0., gamma_at=0.3, temperature=1.5, normalize=True),
])
def test_zero_weight_shortcuts_keep_value_and_gradient(kwargs):
    """A zero beta_bg / gamma_at skips its term: the value and the
    student's gradient are those of the whole computation."""
    got_s, want_s = _t(REF_S, True), _t(REF_S, True)
    got = KeyFeatureLoss(**kwargs)(got_s, _t(REF_T), _ref_boxes(), REF_SHAPE)
    want = _full_level(want_s, _t(REF_T), _ref_boxes(),
                       temp=kwargs.get('temperature', 0.5),
                       beta=kwargs.get('beta_bg', 0.5),
                       gamma=kwargs.get('gamma_at', 0.1),
                       normalize=kwargs.get('normalize', False))
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(got_s.grad, want_s.grad, rtol=1e-10,
                               atol=1e-12)
    # and the numpy reference agrees
    ref = _np_kf_level(REF_S, REF_T, REF_BOXES,
                       temp=kwargs.get('temperature', 0.5),
                       beta=kwargs.get('beta_bg', 0.5),
                       gamma=kwargs.get('gamma_at', 0.1),
                       normalize=kwargs.get('normalize', False))
    assert got.item() == pytest.approx(ref, rel=1e-9)


def test_standardize_matches_tensor_std_in_value_and_gradient():
    from mmtrack_kd.models.losses.key_feature_loss import _standardize
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64) * 3 + 1
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    got = _standardize(a)
    want = (b - b.mean((2, 3), keepdim=True)) / (
        b.std((2, 3), keepdim=True) + 1e-6)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    weight = torch.randn_like(x)
    (got * weight).sum().backward()
    (want * weight).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    # float32 too, to float tolerance
    x32 = x.float()
    torch.testing.assert_close(
        _standardize(x32), (x32 - x32.mean((2, 3), keepdim=True)) /
        (x32.std((2, 3), keepdim=True) + 1e-6), rtol=1e-5, atol=1e-5)
    # one cell: NaN, as Tensor.std
    assert torch.isnan(_standardize(torch.ones(1, 2, 1, 1))).all()


def test_box_weights_without_background():
    t = _feat()
    sp_T = t.abs().mean(1).softmax(-1)
    boxes = [torch.cat([SMALL, LARGE]), LARGE]
    w_fg, w_bg = KeyFeatureLoss.box_weights(sp_T, boxes, SHAPE)
    fg_only, none = KeyFeatureLoss.box_weights(sp_T, boxes, SHAPE,
                                               background=False)
    assert none is None
    torch.testing.assert_close(fg_only, w_fg, rtol=0, atol=0)


def test_no_target_and_zero_weights_give_a_connected_zero():
    """No box, no background term, no attention term: a zero that keeps
    the student's graph (every level, every parameter still reached)."""
    s = _t(REF_S, True)
    loss = KeyFeatureLoss(beta_bg=0., gamma_at=0., normalize=True)(
        s, _t(REF_T), [torch.zeros(0, 4, dtype=torch.float64)] * 2,
        REF_SHAPE)
    assert loss.item() == 0. and loss.requires_grad
    loss.backward()
    assert s.grad is not None and (s.grad == 0).all()


# ------------------------------------------------------------- relation=True
def _relation_by_cell(s, t, boxes, temp=0.5, normalize=True):
    """:math:`L_{fg}` of ``relation=True`` cell by cell: each covered cell's
    cosines to every cell of its frame, from the loops of the definition."""
    def cos_row(f, p):
        v = f[:, p]
        return torch.stack([
            torch.dot(v, f[:, q]) / (v.norm() * f[:, q].norm())
            for q in range(f.shape[1])])

    def standardised(f):  # (C, HW): zero mean, unit (unbiased) std per row
        return (f - f.mean(1, keepdim=True)) / (f.std(1, keepdim=True) + 1e-6)

    n, _, h, w = t.shape
    num = den = 0.
    for i in range(n):
        att = t[i].abs().mean(0).flatten() / temp
        att = h * w * torch.softmax(att, 0)
        weight = torch.zeros(h * w)
        for box in boxes[i]:
            mask = _cells(box[None], hw=h).flatten().float()
            weight += mask * att / (mask * att).sum()
        fs, ft = s[i].flatten(1), t[i].flatten(1)
        if normalize:
            fs, ft = standardised(fs), standardised(ft)
        for p in range(h * w):
            if weight[p] > 0:
                err = (cos_row(fs, p) - cos_row(ft, p)).pow(2).mean()
                num = num + weight[p] * err
                den = den + weight[p]
    return num / den


@pytest.mark.parametrize('normalize', [False, True])
def test_relation_matches_its_definition_cell_by_cell(normalize):
    # 8 x 8 maps of a 64 x 64 input; boxes on cell edges
    boxes = [torch.tensor([[0., 0., 16., 24.], [32., 8., 64., 56.]]),
             torch.tensor([[8., 8., 16., 16.]])]
    s, t = _feat(1, c=4, hw=8), _feat(2, c=6, hw=8)  # channels differ
    got = KeyFeatureLoss(relation=True, beta_bg=0., gamma_at=0.,
                         normalize=normalize)(s, t, boxes, (64, 64))
    want = _relation_by_cell(s, t, boxes, normalize=normalize)
    assert got.item() == pytest.approx(want.item(), rel=1e-4)
    assert got.item() > 0.05


def test_relation_needs_no_connector_and_ignores_width():
    """A student map that is the teacher's with every channel twice has the
    teacher's relations: zero loss, with or without standardising; a
    different map has a loss, whose gradient reaches the student only."""
    boxes = [torch.cat([SMALL, LARGE]), torch.zeros(0, 4)]
    t = _feat(c=8).requires_grad_(True)
    wide = torch.cat([t.detach(), t.detach()], 1)
    for normalize in (False, True):
        loss_fn = KeyFeatureLoss(relation=True, beta_bg=0., gamma_at=0.,
                                 normalize=normalize)
        assert loss_fn(wide, t, boxes, SHAPE).item() == pytest.approx(
            0., abs=1e-6)
    s = _feat(1, c=4).requires_grad_(True)
    loss = loss_fn([s, s], [t, t], boxes, SHAPE)
    loss.backward()
    assert loss.item() > 0.05
    assert t.grad is None and s.grad.abs().sum() > 0
    # no box at all: a zero with a gradient path
    none = loss_fn(s, t, [torch.zeros(0, 4)] * 2, SHAPE)
    assert none.item() == 0. and none.requires_grad


def test_relation_errors_name_the_argument():
    with pytest.raises(ValueError, match=r'^KeyFeatureLoss: relation=True '
                       r'compares foreground cells only; set beta_bg=0 '):
        KeyFeatureLoss(relation=True)
    loss_fn = KeyFeatureLoss(relation=True, beta_bg=0., gamma_at=0.)
    with pytest.raises(ValueError, match=r'differ in frames or H, W'):
        loss_fn(_feat(hw=8), _feat(hw=16), [SMALL, SMALL], SHAPE)


def test_box_weights_match_the_explicit_masks():
    """The batched (rows x columns) box weights equal the sums over the
    explicit (K, H, W) masks, with overlapping, tiny and out-of-map boxes
    and a frame without targets."""
    from mmtrack_kd.models.losses._utils import box_cell_masks
    g = torch.Generator().manual_seed(3)
    sp_T = torch.rand(3, 12, 20, generator=g, dtype=torch.float64) + 0.1
    xy = torch.rand(9, 2, generator=g) * torch.tensor([160., 96.])
    wh = torch.rand(9, 2, generator=g) * 60
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[0] = torch.tensor([10., 10., 11., 11.])  # covers no cell centre
    boxes[1] = torch.tensor([-40., -40., 400., 400.])  # the whole map
    shape = (96, 160)  # stride 8
    gt = [boxes[:5], torch.zeros(0, 4), boxes[5:]]
    w_fg, w_bg = KeyFeatureLoss.box_weights(sp_T, gt, shape)
    want_fg = torch.zeros_like(sp_T)
    covered = torch.zeros_like(sp_T)
    for n, b in enumerate(gt):
        for m in box_cell_masks(b, (12, 20), shape).to(sp_T):
            att = m * sp_T[n]
            want_fg[n] += att / att.sum()
            covered[n] += m
    torch.testing.assert_close(w_fg, want_fg, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w_bg, sp_T.masked_fill(covered > 0, 0.))
    assert w_fg[0].sum().item() == pytest.approx(5.)
    assert w_fg[1].abs().sum().item() == 0


@pytest.mark.parametrize('kwargs', [
    dict(normalize=True, beta_bg=0., gamma_at=0.),  # the shipped design
    dict(normalize=True),
    dict(normalize=True, alpha_fg=0.7, beta_bg=1.3, gamma_at=0.5,
         temperature=0.2, loss_weight=2.5),
    dict(normalize=True, alpha_fg=0., beta_bg=0.5, gamma_at=0.),
])
def test_standardised_levels_match_autograd_of_the_definition(kwargs):
    # forward() sends normalize=True through StandardisedWeightedError (one
    # written-out backward for every level); _single_level is the same
    # loss under autograd, level by level
    loss = KeyFeatureLoss(**kwargs)
    g = torch.Generator().manual_seed(3)
    t = [torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64),
         torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64)]
    s = [(x + torch.randn(x.shape, generator=g, dtype=torch.float64)
          ).requires_grad_(True) for x in t]
    with torch.no_grad():
        s[0][1, 2] = 0.7  # a flat channel: centred map 0, std 0
    targets = loss.box_targets(_ref_boxes(), 'cpu')
    want = sum(loss._single_level(a, b, _ref_boxes(), REF_SHAPE, targets)
               for a, b in zip(s, t)) * loss.loss_weight / 2
    want_grads = torch.autograd.grad(want, s)
    got = loss(s, t, _ref_boxes(), REF_SHAPE)
    got_grads = torch.autograd.grad(got, s)
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert got_grads[0].abs().sum() > 0 and got_grads[1].abs().sum() > 0


def test_standardised_weighted_error_gradcheck_and_no_target_level():
    from mmtrack_kd.models.losses.key_feature_loss import (
        STD_EPS,
        StandardisedWeightedError,
        _standardize,
    )
    g = torch.Generator().manual_seed(4)
    ys = [torch.randn(2, 3, 3, 4, generator=g, dtype=torch.float64,
                      requires_grad=True),
          torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64,
                      requires_grad=True)]
    targets = [(_standardize(torch.randn(y.shape, generator=g,
                                         dtype=torch.float64),
                             sign=-1.).flatten(2),
                torch.rand(2, 3, generator=g, dtype=torch.float64),
                torch.rand(2, y[0, 0].numel(), generator=g,
                           dtype=torch.float64)) for y in ys]
    assert torch.autograd.gradcheck(
        lambda *maps: StandardisedWeightedError.apply(targets, STD_EPS,
                                                      *maps), ys)
    # a batch without boxes: a zero in the student's graph
    loss = KeyFeatureLoss(normalize=True, beta_bg=0., gamma_at=0.)
    s = [torch.randn(2, 3, 4, 4, requires_grad=True)]
    out = loss(s, [torch.randn(2, 3, 4, 4)], [torch.zeros(0, 4)] * 2,
               REF_SHAPE)
    out.backward()
    assert out.item() == 0 and s[0].grad is not None
