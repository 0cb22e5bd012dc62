"""The gradient-alignment analysis (``mmtrack_kd.apis.grad_alignment``,
``tools/analysis/kd_grad_alignment.py``)."""
import math

import pytest
import torch
from test_kd_equivalence import build_tiny_distiller, tiny_batch

from mmtrack_kd.apis.grad_alignment import (
    alignment_of_run,
    gradient_alignment,
    summarise_runs,
    term_losses,
)


def test_cosines_norms_and_unique_shares_of_known_vectors():
    a = torch.tensor([1., 0., 0.])
    b = torch.tensor([1., 1., 0.])
    c = torch.tensor([0., 0., 2.])
    res = gradient_alignment({'a': a, 'b': b, 'c': c})
    assert res['norm'] == pytest.approx({'a': 1, 'b': math.sqrt(2), 'c': 2})
    assert res['cos']['a|b'] == pytest.approx(1 / math.sqrt(2))
    assert res['cos']['a|c'] == pytest.approx(0)
    # a lies in the span of b and c? no: span(b, c) = {(x, x, z)}; a's
    # residual is (1/2, -1/2, 0), of norm 1/sqrt(2)
    assert res['unique']['a'] == pytest.approx(1 / math.sqrt(2))
    assert res['unique']['c'] == pytest.approx(1)
    # shares of the step: G = (2, 1, 2), |G|^2 = 9
    assert res['step_share'] == pytest.approx({'a': 2 / 9, 'b': 3 / 9,
                                               'c': 4 / 9})
    # a term that is a multiple of another adds nothing of its own
    res = gradient_alignment({'a': a, 'b': b, 'twice_a': 2 * a})
    assert res['unique']['twice_a'] == pytest.approx(0, abs=1e-9)
    assert res['cos']['a|twice_a'] == pytest.approx(1)
    # a zero gradient: no direction
    res = gradient_alignment({'a': a, 'zero': torch.zeros(3)})
    assert math.isnan(res['cos']['a|zero'])
    assert math.isnan(res['unique']['zero'])
    assert res['unique']['a'] == pytest.approx(1)


def test_terms_of_dict_valued_losses_and_the_task():
    from types import SimpleNamespace
    model = SimpleNamespace(log_names={'a': 'loss_kd_a', 'b': 'loss_kd_b'},
                            _dict_keys={'b': ['x', 'y']})
    t = torch.tensor
    losses = {'loss_cls': t([1., 3.]), 'loss_bbox': t(4.),
              'loss_kd_a': t(5.), 'loss_kd_b_x': t(6.), 'loss_kd_b_y': t(7.),
              'gnorm_task': t(100.)}  # a log, not a loss
    terms = term_losses(model, losses)
    assert {k: float(v) for k, v in terms.items()} == {
        'task': 6., 'a': 5., 'b': 13.}


def test_summary_over_runs_has_a_t_interval():
    runs = [{'mean': {'norm': {'a': v}, 'cos': {}, 'unique': {},
                      'step_share': {}}}
            for v in (1., 2., 3.)]
    s = summarise_runs(runs)['norm']['a']
    assert s['mean'] == pytest.approx(2)
    assert s['std'] == pytest.approx(1)
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2)
    assert s['ci95_low'] == pytest.approx(2 - half, rel=1e-5)
    assert s['ci95_high'] == pytest.approx(2 + half, rel=1e-5)


def test_terms_and_gradients_of_a_distiller_match_autograd(repo_root,
                                                           tmp_path):
    model = build_tiny_distiller(repo_root, str(tmp_path))
    inputs, samples = tiny_batch()
    terms = term_losses(model, model.loss(inputs, samples))
    assert set(terms) == {'task', 'kd_id', 'kd_feat', 'kd_resp'}
    # the terms add up to what the optimizer sums
    torch.manual_seed(0)
    losses = model.loss(inputs, samples)
    total = sum(v.mean() for k, v in losses.items() if 'loss' in k)
    torch.manual_seed(0)
    terms = term_losses(model, model.loss(inputs, samples))
    assert float(sum(v.detach() for v in terms.values())) == \
        pytest.approx(float(total.detach()), rel=1e-5)
    params = [p for p in model.student.neck.parameters() if p.requires_grad]
    want = {}
    for name in ('task', 'kd_feat'):
        torch.manual_seed(0)
        term = term_losses(model, model.loss(inputs, samples))[name]
        grads = torch.autograd.grad(term, params, allow_unused=True)
        want[name] = torch.cat([
            (g if g is not None else torch.zeros_like(p)).flatten()
            for g, p in zip(grads, params)
        ])
    cos = float(want['task'] @ want['kd_feat'] /
                (want['task'].norm() * want['kd_feat'].norm()))
    torch.manual_seed(0)
    res = alignment_of_run(model, [(inputs, samples)], ['neck'])
    assert res['mean']['cos']['task|kd_feat'] == pytest.approx(cos,
                                                               abs=1e-4)
    assert res['mean']['norm']['kd_feat'] == pytest.approx(
        float(want['kd_feat'].norm()), rel=1e-4)
    # the teacher is not touched, and no gradient is left on the student
    assert all(p.grad is None for p in model.parameters())


def test_balancer_keeps_its_scales_and_step(repo_root, tmp_path):
    model = build_tiny_distiller(
        repo_root, str(tmp_path),
        loss_balance=dict(ratios=dict(kd_id=1., kd_feat=1., kd_resp=1.),
                          interval=1))
    inputs, samples = tiny_batch()
    bal = model.loss_balance
    before = bal.scales.clone(), bal.step
    alignment_of_run(model, [(inputs, samples)] * 2, ['neck'])
    assert torch.equal(bal.scales, before[0]) and bal.step == before[1]
    assert 'forward' not in vars(bal)


def test_unknown_shared_module_is_named(repo_root, tmp_path):
    model = build_tiny_distiller(repo_root, str(tmp_path))
    with pytest.raises(ValueError, match="no module 'nek'"):
        alignment_of_run(model, [tiny_batch()], ['nek'])
