import math
import re

import numpy as np
import pytest
import torch

from mmtrack_kd.models.losses import IDResponseConsistencyLoss

SHAPE = (64, 96)  # batch input (H, W); ID map at stride 8 -> 8 x 12


def _boxes():
    return [
        torch.tensor([[4., 4., 20., 40.], [40., 8., 60., 56.],
                      [70., 20., 90., 60.]]),
        torch.tensor([[10., 10., 30., 50.], [50., 5., 80., 60.]]),
    ]


def _maps(d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, d, 8, 12, generator=g)


def test_zero_when_equal_and_grad_to_student_only():
    loss_fn = IDResponseConsistencyLoss()
    t = _maps().requires_grad_(True)
    s = t.detach().clone().requires_grad_(True)
    loss = loss_fn(s, t, _boxes(), SHAPE)
    assert loss.item() == pytest.approx(0., abs=1e-6)
    s2 = _maps(seed=1).requires_grad_(True)
    loss2 = loss_fn(s2, t, _boxes(), SHAPE)
    assert loss2.item() > 1e-3
    loss2.backward()
    assert t.grad is None
    assert s2.grad is not None and s2.grad.abs().sum() > 0


def test_invariant_to_width_and_rotation():
    """A 32-d student that is an orthogonal map of the 16-d teacher copies it
    exactly; a rotated student space changes nothing."""
    loss_fn = IDResponseConsistencyLoss()
    t = _maps(16)
    q, _ = torch.linalg.qr(torch.randn(32, 16, generator=torch.Generator(
    ).manual_seed(3)))  # (32, 16) with orthonormal columns
    s = torch.einsum('ed,ndhw->nehw', q, t)
    assert loss_fn(s, t, _boxes(), SHAPE).item() == pytest.approx(
        0., abs=1e-5)
    other = _maps(32, seed=5)
    rot, _ = torch.linalg.qr(torch.randn(32, 32))
    other_rot = torch.einsum('ed,ndhw->nehw', rot, other)
    base = loss_fn(other, t, _boxes(), SHAPE)
    assert loss_fn(other_rot, t, _boxes(), SHAPE).item() == pytest.approx(
        base.item(), rel=1e-4)


def test_grows_when_environment_response_changes():
    """Perturbing the student's background (not the targets) raises the
    environment term; a larger change raises it more."""
    loss_fn = IDResponseConsistencyLoss(lambda_sim=0.)
    t = _maps()
    boxes = _boxes()
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(9))
    # keep target cells untouched
    keep = torch.zeros(2, 1, 8, 12)
    for i, b in enumerate(boxes):
        cx = ((b[:, 0] + b[:, 2]) / 2 / 8).long()
        cy = ((b[:, 1] + b[:, 3]) / 2 / 8).long()
        keep[i, 0, cy, cx] = 1
    losses = [
        loss_fn(t + a * noise * (1 - keep), t, boxes, SHAPE).item()
        for a in (0., 0.3, 1.0)
    ]
    assert losses[0] == pytest.approx(0., abs=1e-6)
    assert 0 < losses[1] < losses[2]


def test_similarity_term_sees_target_relations():
    """Two targets made identical in the student but not in the teacher are
    penalised by the Sim term."""
    loss_fn = IDResponseConsistencyLoss(tau=0.1, lambda_sim=1.0)
    t = _maps()
    boxes = [torch.tensor([[4., 4., 20., 40.], [40., 8., 60., 56.]])] * 2
    s = t.clone()
    # cells (2, 1) and (4, 6): copy the first target's embedding on the 2nd
    s[:, :, 4, 6] = s[:, :, 2, 1]
    no_sim = IDResponseConsistencyLoss(lambda_sim=0.)(s, t, boxes, SHAPE)
    assert loss_fn(s, t, boxes, SHAPE).item() > no_sim.item() + 1e-3


def test_finite_without_gt_and_with_one_target():
    loss_fn = IDResponseConsistencyLoss(loss_weight=2.)
    s = _maps(8).requires_grad_(True)
    t = _maps(16, seed=2)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    loss = loss_fn(s, t, empty, SHAPE)
    assert torch.isfinite(loss) and loss.item() == 0
    loss.backward()  # still connected to the student
    assert s.grad is not None
    one = [torch.tensor([[30., 20., 50., 60.]]), torch.zeros(0, 4)]
    s.grad = None
    loss = loss_fn(s, t, one, SHAPE)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert torch.isfinite(s.grad).all()


def test_list_of_levels_is_averaged_and_bad_input_named():
    loss_fn = IDResponseConsistencyLoss()
    s, t = _maps(seed=1), _maps()
    single = loss_fn(s, t, _boxes(), SHAPE)
    both = loss_fn([s, t], [t, t], _boxes(), SHAPE)
    assert both.item() == pytest.approx(single.item() / 2, rel=1e-5)
    with pytest.raises(ValueError, match='IDResponseConsistencyLoss'):
        loss_fn([s], [t, t], _boxes(), SHAPE)
    with pytest.raises(ValueError, match='tau'):
        IDResponseConsistencyLoss(tau=0)


# ---------------------------------------------------------------------------
# Reference values computed by hand (numpy, float64, independent of the
# package): every term and weight of the loss is pinned, so a changed formula
# fails here.
# ---------------------------------------------------------------------------
REF_SHAPE = (16, 24)  # input (H, W); a 2 x 3 map -> stride 8 in x and y


def _np_unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _np_responses(emb, cells, tau):
    """emb (D, H, W); cells: flat (row * W + col) index of each target.
    Returns R (K, HW) with the own cell at 0, and Sim (K, K)."""
    d = emb.shape[0]
    flat = _np_unit(emb.reshape(d, -1).T)  # (HW, D)
    e = flat[cells]
    logits = e @ flat.T / tau
    r = np.zeros_like(logits)
    for i, own in enumerate(cells):
        others = [p for p in range(flat.shape[0]) if p != own]
        z = np.exp(logits[i, others] - logits[i, others].max())
        r[i, others] = z / z.sum()
    return r, e @ e.T


def _np_kl(p, q):
    """KL(p || q) of rows, 0 log 0 = 0."""
    m = p > 0
    return float((p[m] * np.log(p[m] / q[m])).sum())


def _np_id_loss(s, t, cells, tau, lam, weight=1.0):
    """Formula of the docstring: tau^2 * mean over targets of KL(R_T || R_S)
    plus lambda * mean over ordered pairs i != j of (Sim_T - Sim_S)^2."""
    kl, sq, n_targets, n_pairs = 0., 0., 0, 0
    for s_map, t_map, c in zip(s, t, cells):
        if not c:
            continue
        r_s, sim_s = _np_responses(s_map, c, tau)
        r_t, sim_t = _np_responses(t_map, c, tau)
        kl += _np_kl(r_t, r_s)
        n_targets += len(c)
        k = len(c)
        off = ~np.eye(k, dtype=bool)
        sq += ((sim_t - sim_s)[off]**2).sum()
        n_pairs += k * (k - 1)
    return weight * (tau**2 * kl / max(n_targets, 1) +
                     lam * sq / max(n_pairs, 1))


# Frame 0: targets at cells (0, 0) and (1, 2); frame 1: one target at (0, 1).
REF_BOXES = [
    torch.tensor([[1., 2., 7., 6.], [17., 9., 23., 15.]], dtype=torch.float64),
    torch.tensor([[9., 1., 15., 7.]], dtype=torch.float64),
]
REF_CELLS = [[0, 5], [1]]
# Teacher: D = 2, vectors of very different lengths (L2 normalisation
# matters); student: D = 3 (a different width, no connector).
REF_T = np.array([
    [[[3., 1., -2.], [0.5, 2., 1.]], [[1., 2., 1.], [-1., 0.5, 4.]]],
    [[[1., -1., 2.], [2., 0.5, -3.]], [[2., 3., 1.], [1., -2., 0.5]]],
])
REF_S = np.array([
    [[[1., 2., -1.], [0.5, 1., 2.]], [[2., 0.5, 1.], [1., -1., 3.]],
     [[0., 1., 2.], [1., 0., -1.]]],
    [[[2., 1., 1.], [-1., 0.5, 2.]], [[1., 2., -1.], [0.5, 1., 1.]],
     [[1., 0., 1.], [2., -1., 0.5]]],
])


def _ref_inputs():
    return (torch.tensor(REF_S).requires_grad_(True),
            torch.tensor(REF_T), [b.clone() for b in REF_BOXES])


def test_reference_cells_are_the_box_centres():
    for boxes, cells in zip(REF_BOXES, REF_CELLS):
        cx = ((boxes[:, 0] + boxes[:, 2]) / 2 / 8).floor().long()
        cy = ((boxes[:, 1] + boxes[:, 3]) / 2 / 8).floor().long()
        assert (cy * 3 + cx).tolist() == cells


@pytest.mark.parametrize('tau,lam,weight', [(0.5, 1.0, 1.0), (2.0, 0.3, 1.5),
                                            (0.1, 2.0, 0.7)])
def test_reference_value(tau, lam, weight):
    s, t, boxes = _ref_inputs()
    loss = IDResponseConsistencyLoss(tau=tau, lambda_sim=lam,
                                     loss_weight=weight)(s, t, boxes,
                                                         REF_SHAPE)
    want = _np_id_loss(REF_S, REF_T, REF_CELLS, tau, lam, weight)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(want, rel=1e-9, abs=1e-12)
    # the value is a genuine mix of both terms
    assert _np_id_loss(REF_S, REF_T, REF_CELLS, tau, 0.) > 1e-3
    assert _np_id_loss(REF_S, REF_T, REF_CELLS, tau, lam) - \
        _np_id_loss(REF_S, REF_T, REF_CELLS, tau, 0.) > 1e-3


def test_reference_kl_direction_own_cell_and_normalisers():
    """Each ingredient changes the value by far more than the tolerance, so
    the reference above pins it: KL(R_T || R_S) (not R_S || R_T), the own
    cell left out, the tau^2 factor, tau inside the softmax, the mean over
    targets (3) and over ordered pairs (2), the square of the Sim gap."""
    tau = 0.5
    s, t, boxes = _ref_inputs()
    got = IDResponseConsistencyLoss(tau=tau, lambda_sim=0.)(
        s, t, boxes, REF_SHAPE).item()
    kl_ts, kl_st, kl_own = 0., 0., 0.
    for s_map, t_map, c in zip(REF_S, REF_T, REF_CELLS):
        r_s, _ = _np_responses(s_map, c, tau)
        r_t, _ = _np_responses(t_map, c, tau)
        kl_ts += _np_kl(r_t, r_s)
        kl_st += _np_kl(r_s, r_t)
        # own cell kept: a plain softmax over all 6 positions
        fs = _np_unit(s_map.reshape(3, -1).T)
        ft = _np_unit(t_map.reshape(2, -1).T)
        ls, lt = fs[c] @ fs.T / tau, ft[c] @ ft.T / tau
        ps = np.exp(ls) / np.exp(ls).sum(1, keepdims=True)
        pt = np.exp(lt) / np.exp(lt).sum(1, keepdims=True)
        kl_own += _np_kl(pt, ps)
    assert got == pytest.approx(tau**2 * kl_ts / 3, rel=1e-9)
    for wrong in (tau**2 * kl_st / 3, tau**2 * kl_own / 3, kl_ts / 3,
                  tau**2 * kl_ts / 2):
        assert abs(got - wrong) > 1e-3 * got
    # Sim term alone: mean of squared gaps over the 2 ordered pairs
    only_sim = IDResponseConsistencyLoss(tau=tau, lambda_sim=1.)(
        s, t, boxes, REF_SHAPE).item() - got
    _, sim_s = _np_responses(REF_S[0], REF_CELLS[0], tau)
    _, sim_t = _np_responses(REF_T[0], REF_CELLS[0], tau)
    gap = sim_t[0, 1] - sim_s[0, 1]
    assert only_sim == pytest.approx(gap**2, rel=1e-9)
    assert abs(abs(gap) - gap**2) > 1e-2  # |gap| would differ


def test_reference_closed_form_on_one_row():
    """A 1 x 3 map, one target at the left cell. Teacher: the middle cell is
    the target's twin, the right one orthogonal; the student has it the
    other way round. R_T = (p, 1 - p), R_S = (1 - p, p) with p =
    sigmoid(1 / tau), so KL = (2p - 1) / tau and L = tau (2p - 1)."""
    shape = (8, 24)
    box = [torch.tensor([[0., 0., 8., 8.]])]
    t = torch.tensor([[[[1., 1., 0.]], [[0., 0., 1.]]]], dtype=torch.float64)
    s = torch.tensor([[[[1., 0., 1.]], [[0., 1., 0.]]]], dtype=torch.float64)
    for tau in (0.25, 1.0, 3.0):
        p = 1 / (1 + math.exp(-1 / tau))
        got = IDResponseConsistencyLoss(tau=tau)(s, t, box, shape).item()
        assert got == pytest.approx(tau * (2 * p - 1), rel=1e-9)


def test_invariant_to_scaling_the_teacher_map():
    """Only cosines enter: scaling the teacher map, globally or by any
    positive factor per position, changes nothing."""
    s, t, boxes = _ref_inputs()
    loss_fn = IDResponseConsistencyLoss(tau=0.5)
    base = loss_fn(s, t, boxes, REF_SHAPE).item()
    assert loss_fn(s, 7.5 * t, boxes, REF_SHAPE).item() == pytest.approx(
        base, rel=1e-9)
    per_pos = torch.tensor([[[[0.2, 5., 1.], [3., 0.7, 11.]]],
                            [[[9., 0.1, 2.], [0.5, 4., 1.3]]]],
                           dtype=torch.float64)
    assert loss_fn(s, t * per_pos, boxes, REF_SHAPE).item() == \
        pytest.approx(base, rel=1e-9)
    assert loss_fn(s * per_pos, t, boxes, REF_SHAPE).item() == \
        pytest.approx(base, rel=1e-9)


def test_zero_only_when_the_responses_agree():
    """Zero for a student equal to the teacher up to per-position scale;
    positive as soon as one cosine differs."""
    _, t, boxes = _ref_inputs()
    # a 2-d student inside a 3-d space: same cosines as the teacher
    s = torch.cat([t, torch.zeros_like(t[:, :1])], 1)
    loss_fn = IDResponseConsistencyLoss(tau=0.5)
    assert loss_fn(s, t, boxes, REF_SHAPE).item() == pytest.approx(
        0., abs=1e-12)
    s2 = s.clone()
    s2[1, 2, 1, 2] = 5.  # one background position turns away
    assert loss_fn(s2, t, boxes, REF_SHAPE).item() > 1e-4


def test_one_sgd_step_lowers_the_loss():
    s, t, boxes = _ref_inputs()
    loss_fn = IDResponseConsistencyLoss(tau=0.5)
    before = loss_fn(s, t, boxes, REF_SHAPE)
    before.backward()
    with torch.no_grad():
        s2 = s - 0.05 * s.grad
    after = loss_fn(s2, t, boxes, REF_SHAPE)
    assert after.item() < before.item()


def _cell_boxes(cells, w=3):
    """A small box centred in each flat cell of a map of width ``w``."""
    return torch.tensor([[8. * (c % w) + 1, 8. * (c // w) + 1,
                          8. * (c % w) + 7, 8. * (c // w) + 7]
                         for c in cells], dtype=torch.float64).view(-1, 4)


@pytest.mark.parametrize('cells', [
    [[0, 4, 5], [1, 3]],  # 6 + 2 ordered pairs, 5 targets
    [[2, 3, 1], [0, 5, 4]],  # 6 + 6 ordered pairs
    [[], [1, 3]],  # an empty first frame
    [[0], [5]],  # no pair at all: no Sim term
])
def test_reference_value_crowded_and_empty_frames(cells):
    boxes = [_cell_boxes(c) for c in cells]
    loss = IDResponseConsistencyLoss(tau=0.7, lambda_sim=1.3)(
        torch.tensor(REF_S), torch.tensor(REF_T), boxes, REF_SHAPE)
    want = _np_id_loss(REF_S, REF_T, cells, 0.7, 1.3)
    assert want > 1e-3
    assert loss.item() == pytest.approx(want, rel=1e-9)


def test_defaults():
    loss_fn = IDResponseConsistencyLoss()
    assert (loss_fn.tau, loss_fn.lambda_sim, loss_fn.loss_weight) == \
        (0.1, 1.0, 1.0)
    s, t, boxes = _ref_inputs()
    assert loss_fn(s, t, boxes, REF_SHAPE).item() == pytest.approx(
        _np_id_loss(REF_S, REF_T, REF_CELLS, 0.1, 1.0), rel=1e-9)


def test_maps_with_one_and_two_cells():
    """A 1-cell map has no environment: the frame is skipped (no nan). On a
    2-cell map (2 x 1) each target's environment is the other cell (R = 1
    for both models, KL = 0) and the Sim term still counts."""
    t1 = torch.tensor(REF_T[:, :, :1, :1])
    s1 = torch.tensor(REF_S[:, :, :1, :1])
    boxes = [torch.tensor([[0., 0., 8., 8.]])] * 2
    loss = IDResponseConsistencyLoss()(s1, t1, boxes, (8, 8))
    assert torch.isfinite(loss) and loss.item() == 0
    t2 = torch.tensor(REF_T[:, :, :, 2:])  # (2, 2, 2, 1)
    s2 = torch.tensor(REF_S[:, :, :, 2:])
    boxes = [torch.tensor([[0., 0., 8., 8.], [0., 8., 8., 16.]])] * 2
    loss = IDResponseConsistencyLoss(tau=0.5)(s2, t2, boxes, (16, 8))
    want = _np_id_loss(REF_S[..., 2:], REF_T[..., 2:], [[0, 1]] * 2, 0.5, 1.)
    assert want > 1e-3
    assert loss.item() == pytest.approx(want, rel=1e-9)


def test_one_cell_map_is_skipped_whatever_the_targets_and_width():
    """The 1-cell skip depends on H * W only: with two targets per frame on
    the one cell and an all-zero student map, the Sim term would compare the
    teacher's cosine 1 with the student's 0 (a zero vector stays zero when
    normalised); the level still adds exactly 0, with a zero gradient."""
    t1 = torch.tensor(REF_T[:, :, :1, :1])  # (2, 2, 1, 1): D * H * W = 2
    s1 = torch.zeros(2, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    boxes = [torch.tensor([[0., 0., 8., 8.], [2., 2., 6., 6.]])] * 2
    loss = IDResponseConsistencyLoss()(s1, t1, boxes, (8, 8))
    assert loss.item() == 0
    loss.backward()
    assert s1.grad.abs().max().item() == 0


def _raises(msg):
    return pytest.raises(ValueError, match='^' + re.escape(msg) + '$')


def test_errors_name_the_loss_and_the_shapes():
    loss_fn = IDResponseConsistencyLoss()
    s, t = torch.zeros(2, 3, 2, 3), torch.zeros(3, 5, 2, 3)
    box = torch.tensor([[1., 1., 7., 7.]])
    bad_dim = ('IDResponseConsistencyLoss: preds_S and preds_T must be '
               '(N, D, H, W) embedding maps')
    with _raises(bad_dim):
        loss_fn(s[0], t[:2], [box] * 2, REF_SHAPE)
    with _raises(bad_dim):
        loss_fn(s, t[0], [box] * 2, REF_SHAPE)
    with _raises('IDResponseConsistencyLoss: batch sizes differ: preds_S 2, '
                 'preds_T 3, gt_bboxes 2'):
        loss_fn(s, t, [box] * 2, REF_SHAPE)
    with _raises('IDResponseConsistencyLoss: batch sizes differ: preds_S 2, '
                 'preds_T 2, gt_bboxes 1'):
        loss_fn(s, t[:2], [box], REF_SHAPE)
    with _raises('IDResponseConsistencyLoss: student and teacher ID maps '
                 'must have the same H, W: (2, 3) vs (2, 4)'):
        loss_fn(s, torch.zeros(2, 5, 2, 4), [box] * 2, REF_SHAPE)
    # the same number of cells in another layout is no match either
    with _raises('IDResponseConsistencyLoss: student and teacher ID maps '
                 'must have the same H, W: (2, 3) vs (3, 2)'):
        loss_fn(s, torch.zeros(2, 5, 3, 2), [box] * 2, REF_SHAPE)
    with pytest.raises(ValueError,
                       match='^IDResponseConsistencyLoss: preds_S has 1 '):
        loss_fn([s], [t, t], [box] * 2, REF_SHAPE)
    for tau in (0., -1.):
        with _raises(f'IDResponseConsistencyLoss: tau must be > 0, got '
                     f'{tau}'):
            IDResponseConsistencyLoss(tau=tau)


def _np_env_kl(s_map, t_map, cells, excluded, tau):
    """Sum over targets of KL(R_T || R_S), each response a softmax over the
    cells not in ``excluded[i]``."""
    def resp(emb):
        d = emb.shape[0]
        flat = _np_unit(emb.reshape(d, -1).T)
        out = []
        for own, excl in zip(cells, excluded):
            keep = [p for p in range(flat.shape[0]) if p not in excl]
            z = flat[keep] @ flat[own] / tau
            z = np.exp(z - z.max())
            r = np.zeros(flat.shape[0])
            r[keep] = z / z.sum()
            out.append(r)
        return np.array(out)
    return _np_kl(resp(t_map), resp(s_map))


@pytest.mark.parametrize('tau', [0.5, 2.0])
def test_reference_value_box_excluded_and_own_env_weight(tau):
    # one frame: a 2x2-cell box centred on cell 4 and a 1-cell box (cell 2)
    boxes = [torch.tensor([[0., 0., 16., 16.], [17., 1., 23., 7.]],
                          dtype=torch.float64)]
    s, t = REF_S[:1], REF_T[:1]
    loss = IDResponseConsistencyLoss(
        tau=tau, lambda_sim=0., lambda_env=1.5, exclude='box')(
            torch.tensor(s), torch.tensor(t), boxes, REF_SHAPE)
    want = 1.5 * _np_env_kl(s[0], t[0], [4, 2], [{0, 1, 3, 4}, {2}],
                            tau) / 2
    assert want > 1e-3
    assert loss.item() == pytest.approx(want, rel=1e-9)
    # 'cell' leaves only the centre cell out; lambda_env=None is tau^2
    cell = IDResponseConsistencyLoss(tau=tau, lambda_sim=0.)(
        torch.tensor(s), torch.tensor(t), boxes, REF_SHAPE)
    assert cell.item() == pytest.approx(
        tau**2 * _np_env_kl(s[0], t[0], [4, 2], [{4}, {2}], tau) / 2,
        rel=1e-9)


def test_box_exclusion_ignores_the_targets_own_body():
    """Changing the student inside a target's box, away from its centre
    cell, moves the 'cell' loss but not the 'box' one (one target)."""
    t = _maps()[:1]
    s = _maps(seed=1)[:1]
    boxes = [torch.tensor([[20., 8., 60., 56.]])]  # cells x 3-6, y 1-6
    s2 = s.clone()
    s2[0, :, 2, 3] = torch.randn(16)  # in the box, not its centre (4, 5)
    for exclude, moves in (('box', False), ('cell', True)):
        fn = IDResponseConsistencyLoss(lambda_sim=0., lambda_env=1.,
                                       exclude=exclude)
        a, b = fn(s, t, boxes, SHAPE).item(), fn(s2, t, boxes, SHAPE).item()
        assert (abs(a - b) > 1e-4) == moves, exclude


def test_box_covering_the_whole_map_keeps_its_environment():
    t, s = _maps()[:1], _maps(seed=1)[:1]
    boxes = [torch.tensor([[0., 0., 96., 64.]])]
    fn = IDResponseConsistencyLoss(lambda_sim=0., lambda_env=1.,
                                   exclude='box')
    loss = fn(s, t, boxes, SHAPE)
    assert torch.isfinite(loss) and loss.item() > 0
    assert loss.item() == pytest.approx(IDResponseConsistencyLoss(
        lambda_sim=0., lambda_env=1.)(s, t, boxes, SHAPE).item())


@pytest.mark.parametrize('kwargs, msg', [
    (dict(exclude='frame'), 'exclude'), (dict(lambda_env=-1.), 'lambda_env')])
def test_bad_env_options_are_named(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        IDResponseConsistencyLoss(**kwargs)


def test_cosines_from_raw_vectors_match_the_normalised_map():
    """The responses are computed as dot products of the raw vectors over
    their norms (no divide of the whole map): the same loss and gradient as
    on the map normalised first, and finite with all-zero embeddings."""
    from mmtrack_kd.models.losses._utils import unit_vectors
    torch.manual_seed(3)
    loss = IDResponseConsistencyLoss(tau=0.1, lambda_sim=1.0)
    t = torch.randn(2, 16, 12, 20)
    s = torch.randn(2, 16, 12, 20)
    s[0, :, 3:6, 4:9] = 0  # ReLU-off cells, some of them targets' centres
    boxes = [torch.tensor([[40., 30., 60., 60.], [100., 10., 140., 80.]]),
             torch.tensor([[8., 8., 40., 60.]])]
    raw = s.clone().requires_grad_(True)
    value = loss(raw, t, boxes, (96, 160))
    value.backward()
    normed = s.clone().requires_grad_(True)
    ref = loss(unit_vectors(normed, 1), unit_vectors(t, 1), boxes, (96, 160))
    ref.backward()
    assert torch.isfinite(raw.grad).all()
    torch.testing.assert_close(value, ref, rtol=1e-5, atol=1e-7)
    # on cells of nonzero norm; the normalised map's own chain rule adds
    # the projection, so compare where both are defined and nonzero
    torch.testing.assert_close(raw.grad[1], normed.grad[1], rtol=1e-4,
                               atol=1e-6)


def _autograd_cosine_responses(flat, cells, tau):
    """The lines CosineResponses replaces, under autograd."""
    from mmtrack_kd.models.losses._utils import NORM_EPS
    d = flat.shape[1]
    inv = flat.pow(2).sum(1).clamp_min(NORM_EPS * NORM_EPS).rsqrt()
    e_pad = flat.gather(2, cells[:, None].expand(-1, d, -1)).transpose(1, 2)
    inv_e = inv.gather(1, cells)
    dots = torch.bmm(e_pad, flat)
    return (dots * (inv[:, None, :] * (inv_e / tau)[:, :, None]),
            e_pad * inv_e[:, :, None])


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_cosine_responses_backward_is_autograds(dtype):
    """The written-out backward gives autograd's gradient of the same
    lines: with a cell twice in one frame, a padded slot reading cell 0, an
    all-zero vector (the clamped norm) among the cells, and gradients
    reaching both outputs; and passes gradcheck in float64."""
    from mmtrack_kd.models.losses.id_response_loss import CosineResponses
    g = torch.Generator().manual_seed(5)
    flat = torch.randn(2, 6, 15, generator=g, dtype=dtype)
    flat[1, :, 4] = 0  # a ReLU-off cell, read as a target's centre below
    cells = torch.tensor([[3, 3, 9], [4, 0, 0]])
    w_logits = torch.randn(2, 3, 15, generator=g, dtype=dtype)
    w_unit = torch.randn(2, 3, 6, generator=g, dtype=dtype)
    grads = []
    for fn in (CosineResponses.apply, _autograd_cosine_responses):
        x = flat.clone().requires_grad_(True)
        logits, unit = fn(x, cells, 0.2)
        ((logits * w_logits).sum() + (unit * w_unit).sum()).backward()
        grads.append((logits.detach(), unit.detach(), x.grad))
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref)
    # one output only: the other's gradient is None
    x = flat.clone().requires_grad_(True)
    CosineResponses.apply(x, cells, 0.2)[1].sum().backward()
    y = flat.clone().requires_grad_(True)
    _autograd_cosine_responses(y, cells, 0.2)[1].sum().backward()
    torch.testing.assert_close(x.grad, y.grad)
    if dtype == torch.float64:
        x = torch.randn(2, 5, 12, generator=g, dtype=dtype,
                        requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda f: CosineResponses.apply(f, cells, 0.3), (x, ))


def test_loss_gradient_unchanged_by_the_written_out_backward():
    """The whole loss's gradient with CosineResponses equals the one of
    the autograd lines, both exclusion modes, empty and crowded frames."""
    from mmtrack_kd.models.losses import id_response_loss as mod
    torch.manual_seed(2)
    t = torch.randn(3, 12, 10, 14, dtype=torch.float64)
    s = torch.randn(3, 8, 10, 14, dtype=torch.float64)
    boxes = [torch.tensor([[8., 8., 40., 60.], [60., 10., 100., 70.],
                           [61., 11., 99., 69.]], dtype=torch.float64),
             torch.zeros(0, 4, dtype=torch.float64),
             torch.tensor([[20., 5., 50., 75.]], dtype=torch.float64)]

    from types import SimpleNamespace
    plain = SimpleNamespace(apply=_autograd_cosine_responses)
    for exclude in ('cell', 'box'):
        loss = IDResponseConsistencyLoss(exclude=exclude, lambda_env=0.3)
        out = []
        for fn in (mod.CosineResponses, plain):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(mod, 'CosineResponses', fn)
                x = s.clone().requires_grad_(True)
                value = loss(x, t, boxes, (80, 112))
                value.backward()
            out.append((value.detach(), x.grad))
        torch.testing.assert_close(out[0][0], out[1][0])
        torch.testing.assert_close(out[0][1], out[1][1])
