"""The gradient balance of distillation against the task
(``MOTDistiller(loss_balance=...)``, ``GradientBalancer``) and the clip
monitor hook."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from test_kd_equivalence import build_tiny_distiller, tiny_batch

from mmtrack_kd.engine import GradClipMonitorHook
from mmtrack_kd.models.distill.balance import GradientBalancer, summed
from mmtrack_kd.models.distill.errors import DistillConfigError

KD_NAMES = ('kd_id', 'kd_feat', 'kd_resp')


def _neck_norm(loss, model):
    params = [p for p in model.student.get_submodule('neck').parameters()]
    grads = torch.autograd.grad(loss, params, retain_graph=True,
                                allow_unused=True)
    return float(torch.cat([g.flatten() for g in grads
                            if g is not None]).norm())


def _with_balance(repo_root, tmp_path, **balance):
    return build_tiny_distiller(repo_root, str(tmp_path),
                                loss_balance=balance)


def _losses_and_task(model):
    """The losses of one step of ``model`` on the tiny batch (seed 3), and
    the task's sum."""
    torch.manual_seed(3)
    inputs, samples = tiny_batch()
    losses = model.loss(inputs, samples)
    return losses, summed({k: v for k, v in losses.items()
                           if 'loss' in k and '_kd_' not in k})


def test_scaled_losses_have_the_set_gradient_ratios(repo_root, tmp_path):
    ratios = dict(kd_id=0.5, kd_feat=2.0, kd_resp=8.0)
    model = _with_balance(repo_root, tmp_path, ratios=ratios, interval=5,
                          momentum=0.5)
    losses, task = _losses_and_task(model)
    t = _neck_norm(task, model)
    assert losses['gnorm_task'] == pytest.approx(t, rel=1e-4)
    for name, ratio in ratios.items():
        got = _neck_norm(losses[f'loss_{name}'], model)
        # what the step gets from the loss: ratio x the task's, measured
        # independently of the balancer
        assert got == pytest.approx(ratio * t, rel=1e-3), name
        assert losses[f'gnorm_{name}'] == pytest.approx(got, rel=1e-3)
        assert f'kd_scale_{name}' in losses
    # not summed into the total (no 'loss' in the logged names)
    assert not any('loss' in k for k in losses
                   if k.startswith(('gnorm_', 'kd_scale_')))


def _norm_on(loss, model, path):
    params = list(model.student.get_submodule(path).parameters())
    grads = torch.autograd.grad(loss, params, retain_graph=True,
                                allow_unused=True)
    return float(torch.cat([g.flatten() for g in grads
                            if g is not None]).norm())


def test_a_loss_measured_on_its_own_layers(repo_root, tmp_path):
    # kd_feat weighed against the task on the backbone, the others on the
    # neck: each ratio holds on the layers it is measured on
    ratios = dict(kd_id=0.5, kd_feat=2.0, kd_resp=8.0)
    model = _with_balance(repo_root, tmp_path, ratios=ratios, interval=5,
                          loss_shared=dict(kd_feat='backbone'))
    losses, task = _losses_and_task(model)
    on = dict(neck=_norm_on(task, model, 'neck'),
              backbone=_norm_on(task, model, 'backbone'))
    assert on['neck'] != pytest.approx(on['backbone'], rel=1e-2)
    assert losses['gnorm_task'] == pytest.approx(on['neck'], rel=1e-4)
    assert losses['gnorm_task_kd_feat'] == pytest.approx(on['backbone'],
                                                         rel=1e-4)
    for name, ratio in ratios.items():
        path = 'backbone' if name == 'kd_feat' else 'neck'
        got = _norm_on(losses[f'loss_{name}'], model, path)
        assert got == pytest.approx(ratio * on[path], rel=1e-3), name
    assert 'loss_shared' in repr(model.loss_balance)
    # checked at build, naming the key
    with pytest.raises(DistillConfigError,
                       match='loss_balance.loss_shared.kd_feat'):
        _with_balance(repo_root, tmp_path,
                      loss_shared=dict(kd_feat=['no_such_module']))


def test_scales_kept_between_measurements_and_smoothed(repo_root,
                                                         tmp_path):
    model = _with_balance(repo_root, tmp_path, ratios=dict(kd_resp=1.0),
                          interval=3, momentum=0.5)
    inputs, samples = tiny_batch()
    first = model.loss(inputs, samples)
    s0 = model.loss_balance.scales.clone()
    # kd_id and kd_feat are not in ratios: measured, never scaled
    assert s0[0] == 1 and s0[1] == 1 and s0[2] != 1
    for _ in range(2):  # not measured: nothing logged, scales kept
        out = model.loss(inputs, samples)
        assert 'gnorm_task' not in out
        assert torch.equal(model.loss_balance.scales, s0)
        # the same batch and weights: the kept scales give the same losses
        for name in KD_NAMES:
            assert float(out[f'loss_{name}']) == pytest.approx(
                float(first[f'loss_{name}']), rel=1e-6), name
    assert 'gnorm_task' in first
    # the 4th is measured; with momentum 0.5 the new scale is the
    # geometric mean of the old one and the target (same batch, same
    # weights: the target equals the old scale)
    model.loss(inputs, samples)
    assert int(model.loss_balance.step) == 4
    assert float(model.loss_balance.scales[2]) == pytest.approx(
        float(s0[2]), rel=1e-4)


def test_measure_only_leaves_the_losses_unchanged(repo_root, tmp_path):
    inputs, samples = tiny_batch()
    plain = build_tiny_distiller(repo_root, str(tmp_path))
    want = {k: float(v) for k, v in plain.loss(inputs, samples).items()}
    model = _with_balance(repo_root, tmp_path, ratios=None)
    got = model.loss(inputs, samples)
    for k, v in want.items():
        assert float(got[k]) == pytest.approx(v, rel=1e-6), k
    assert got['gnorm_task'] > 0 and got['gnorm_kd_feat'] > 0
    assert torch.equal(model.loss_balance.scales, torch.ones(3))


def test_skip_counts_only_an_unmeasured_iteration():
    bal = GradientBalancer(['kd_a'], ratios=dict(kd_a=1.0), interval=3)
    with pytest.raises(RuntimeError, match='measured'):
        bal.skip()  # iteration 0 is measured
    bal.step.fill_(1)
    assert bal.skip() == {} and int(bal.step) == 2
    assert bal.skip() == {} and int(bal.step) == 3
    with pytest.raises(RuntimeError, match='measured'):
        bal.skip()
    assert torch.equal(bal.scales, torch.ones(1))


def test_not_applied_in_eval_mode_or_after_the_stop(repo_root, tmp_path):
    model = _with_balance(repo_root, tmp_path, ratios=dict(kd_resp=4.0))
    inputs, samples = tiny_batch()
    model.eval()
    out = model.loss(inputs, samples)
    assert 'gnorm_task' not in out and int(model.loss_balance.step) == 0
    model.train()
    model.distill_stopped = True
    out = model.loss(inputs, samples)
    assert 'gnorm_task' not in out and float(out['loss_kd_resp']) == 0


def test_scales_travel_with_the_state_dict(repo_root, tmp_path):
    model = _with_balance(repo_root, tmp_path, ratios=dict(kd_feat=3.0))
    inputs, samples = tiny_batch()
    model.loss(inputs, samples)
    state = model.state_dict()
    assert 'loss_balance.scales' in state and 'loss_balance.step' in state
    other = _with_balance(repo_root, tmp_path, ratios=dict(kd_feat=3.0))
    other.load_state_dict(state)
    assert torch.equal(other.loss_balance.scales, model.loss_balance.scales)
    assert int(other.loss_balance.step) == 1


@pytest.mark.parametrize('cfg, key', [
    (dict(ratios=dict(kd_nope=1.0)), 'ratios'),
    (dict(ratios=dict(kd_id=-1.0)), 'ratios'),
    (dict(interval=0), 'interval'),
    (dict(momentum=1.0), 'momentum'),
    (dict(shared=[]), 'shared'),
    (dict(loss_shared=dict(kd_nope='neck')), 'loss_shared'),
    (dict(loss_shared=dict(kd_id=[])), 'loss_shared.kd_id'),
    (dict(decay=dict(kd_nope=0.0)), 'decay'),
    (dict(decay=dict(kd_id=-0.5)), 'decay'),
    (dict(decay=dict(kd_id=0.0), decay_iters=0), 'decay_iters'),
    (dict(max_scale=1.0), 'max_scale'),
    (dict(min_scale=0.0), 'min_scale'),
    (dict(min_scale=1.0), 'min_scale'),
])
def test_bad_settings_name_the_key(cfg, key):
    with pytest.raises(DistillConfigError, match=f'loss_balance.{key}'):
        GradientBalancer(KD_NAMES, **cfg)


def test_unknown_keys_are_named():
    from mmtrack_kd.models.distill.balance import build_balancer
    with pytest.raises(DistillConfigError, match="unknown key.*'ratio'"):
        build_balancer(dict(ratio=dict(kd_id=1.0)), KD_NAMES)


def test_distiller_config_builds_the_balancer(repo_root, tmp_path):
    assert build_tiny_distiller(repo_root, str(tmp_path)).loss_balance \
        is None  # off by default
    model = build_tiny_distiller(
        repo_root, str(tmp_path),
        loss_balance=dict(ratios=dict(kd_resp=2.0), interval=7))
    assert isinstance(model.loss_balance, GradientBalancer)
    assert model.loss_balance.interval == 7
    # checked at build, naming the key
    with pytest.raises(DistillConfigError, match='loss_balance.shared'):
        build_tiny_distiller(repo_root, str(tmp_path),
                             loss_balance=dict(shared=['no_such_module']))
    with pytest.raises(DistillConfigError, match='loss_balance.ratios'):
        build_tiny_distiller(repo_root, str(tmp_path),
                             loss_balance=dict(ratios=dict(kd_nope=1.0)))


class _Wrapper:
    grad_name = 'grad_norm'
    clip_grad_kwargs = dict(max_norm=10.0)


def test_clip_monitor_reports_the_clipped_fraction():
    hub = MessageHub.get_instance('test_clip_monitor')
    runner = SimpleNamespace(message_hub=hub, optim_wrapper=_Wrapper())
    hook = GradClipMonitorHook(window=4)
    for norm in (5.0, 20.0, 30.0, 1.0, 11.0, 12.0):
        hub.update_scalar('train/grad_norm', norm)
        hook.after_train_iter(runner, 0)
    # the last 4: 30 (clipped), 1, 11 (clipped), 12 (clipped)
    assert hub.get_scalar('train/clipped_frac').current() == 0.75
    # no clipping configured: nothing written
    hub2 = MessageHub.get_instance('test_clip_monitor2')
    runner2 = SimpleNamespace(message_hub=hub2, optim_wrapper=SimpleNamespace(
        grad_name=None, clip_grad_kwargs={}))
    hub2.update_scalar('train/grad_norm', 50.0)
    GradClipMonitorHook().after_train_iter(runner2, 0)
    assert 'train/clipped_frac' not in hub2.log_scalars
    with pytest.raises(ValueError, match='window'):
        GradClipMonitorHook(window=0)


def test_decay_factor_is_linear_then_flat():
    bal = GradientBalancer(KD_NAMES, ratios=dict(kd_feat=2.0),
                           decay=dict(kd_feat=0.0, kd_id=0.5),
                           decay_iters=10)
    assert bal.factor('kd_resp', 7) == 1.0  # not decayed
    assert bal.factor('kd_feat', 0) == 1.0
    assert bal.factor('kd_feat', 5) == pytest.approx(0.5)
    assert bal.factor('kd_feat', 10) == 0.0
    assert bal.factor('kd_feat', 30) == 0.0
    assert bal.factor('kd_id', 5) == pytest.approx(0.75)
    unset = GradientBalancer(KD_NAMES, decay=dict(kd_id=0.0))
    with pytest.raises(DistillConfigError, match='decay_iters.*'
                       'DistillStopHook'):
        unset.factor('kd_id', 0)


def test_decayed_loss_is_scaled_by_its_factor(repo_root, tmp_path):
    inputs, samples = tiny_batch()
    ratios = dict(kd_id=1.0, kd_feat=2.0, kd_resp=4.0)
    ref = _with_balance(repo_root, tmp_path, ratios=ratios, interval=100)
    model = _with_balance(repo_root, tmp_path, ratios=ratios, interval=100,
                          decay=dict(kd_feat=0.0), decay_iters=4)
    model.load_state_dict(ref.state_dict())
    want, got = ref.loss(inputs, samples), model.loss(inputs, samples)
    # iteration 0: factor 1, the same losses; the factor is logged
    assert float(got['loss_kd_feat']) == pytest.approx(
        float(want['loss_kd_feat']), rel=1e-5)
    assert float(got['kd_factor_kd_feat']) == 1.0
    assert 'kd_factor_kd_resp' not in got
    for _ in range(2):  # iterations 1, 2: factor 1 - i / 4
        want, got = ref.loss(inputs, samples), model.loss(inputs, samples)
    assert float(got['loss_kd_feat']) == pytest.approx(
        0.5 * float(want['loss_kd_feat']), rel=1e-5)
    assert float(got['loss_kd_resp']) == pytest.approx(
        float(want['loss_kd_resp']), rel=1e-5)


def test_stop_hook_sets_the_decay_length(repo_root, tmp_path):
    from mmtrack_kd.engine.hooks import DistillStopHook
    model = _with_balance(repo_root, tmp_path, ratios=dict(kd_feat=1.0),
                          decay=dict(kd_feat=0.0))
    runner = SimpleNamespace(model=model, max_iters=480, iter=0, epoch=0)
    DistillStopHook().before_train(runner)
    assert model.loss_balance.decay_iters == 480
    given = _with_balance(repo_root, tmp_path, ratios=dict(kd_feat=1.0),
                          decay=dict(kd_feat=0.0), decay_iters=100)
    DistillStopHook().before_train(SimpleNamespace(
        model=given, max_iters=480, iter=0, epoch=0))
    assert given.loss_balance.decay_iters == 100


class _Student(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.neck = torch.nn.Linear(3, 3)


def test_first_nonzero_measurement_sets_the_scale_directly():
    """A loss that does not reach the shared layers on the first measured
    iteration (a connector's warm-up) keeps scale 1 and is not smoothed
    in from it later: its first real measurement sets its scale."""
    student = _Student()
    bal = GradientBalancer(['kd_a', 'kd_b'], ratios=dict(kd_a=1.0, kd_b=1.0),
                           interval=1, momentum=0.9)
    x = torch.randn(4, 3)

    def step(b_reaches):
        y = student.neck(x)
        task = y.pow(2).sum()
        kd_a = 3 * y.sum()
        kd_b = 5 * (y if b_reaches else y.detach()).abs().sum()
        bal(student, task, dict(kd_a=kd_a, kd_b=kd_b))
        return task, kd_b

    step(False)
    assert bal.measured.tolist() == [True, False]
    assert float(bal.scales[1]) == 1.0
    task, kd_b = step(True)
    assert bool(bal.measured[1])
    params = list(student.neck.parameters())
    t = float(torch.cat([g.flatten() for g in torch.autograd.grad(
        task, params, retain_graph=True)]).norm())
    b = float(torch.cat([g.flatten() for g in torch.autograd.grad(
        kd_b, params)]).norm())
    # set to ratio x task / norm at once, not 10 % of the way from 1
    assert float(bal.scales[1]) == pytest.approx(t / b, rel=1e-4)


def test_a_large_raw_gradient_reaches_a_small_ratio():
    """A loss whose raw gradient is 1e4 times the task's (AttTrack's
    attention term at weight 1000) gets the scale its ratio needs, down
    to min_scale; a scale held at a bound is logged once, naming it."""
    import logging

    from mmengine.logging import MMLogger
    student = _Student()
    x = torch.randn(4, 3)

    def measure(bal):
        y = student.neck(x)
        task = y.pow(2).sum()
        kd = 1e5 * y.pow(2).sum()  # raw gradient 1e5 x the task's
        bal(student, task, dict(kd_a=kd))
        return float(bal.scales[0])

    for ratio in (0.05, 0.1):
        bal = GradientBalancer(['kd_a'], ratios=dict(kd_a=ratio))
        assert measure(bal) == pytest.approx(ratio * 1e-5, rel=1e-4)
    assert 'min_scale=1e-08, max_scale=10000.0' in repr(bal)
    records = []

    class Grab(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = MMLogger.get_current_instance()
    handler = Grab(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        bal = GradientBalancer(['kd_a'], ratios=dict(kd_a=0.05),
                               min_scale=1e-4, interval=1)
        assert measure(bal) == pytest.approx(1e-4)  # held at the bound
        measure(bal)
    finally:
        logger.removeHandler(handler)
    msgs = [r.getMessage() for r in records]
    assert len(msgs) == 1, msgs  # once per loss
    assert 'kd_a' in msgs[0] and 'min_scale=0.0001' in msgs[0]
    # wanted 0.05 / 1e5 = 5e-7; held 1e-4: 0.05 x 1e-4 / 5e-7 = 10
    assert 'is 10 times' in msgs[0]


def test_state_dict_without_measured_loads():
    """Checkpoints written before the ``measured`` buffer still load."""
    bal = GradientBalancer(['kd_a'], ratios=dict(kd_a=1.0))
    state = {'scales': torch.tensor([0.5]),
             'step': torch.tensor(7)}
    bal.load_state_dict(state)
    assert bal.measured.tolist() == [True]
    assert int(bal.step) == 7


def test_feature_loss_balanced_from_the_end_of_the_connector_warmup(
        repo_root, tmp_path):
    """The shipped fragment's warm-up (shortened to 2 calls): the feature
    loss does not reach the student's neck during it; on the first
    iteration after it, its scale is set to the ratio at once."""
    model = build_tiny_distiller(
        repo_root, str(tmp_path), warmup=True,
        loss_balance=dict(ratios=dict(kd_feat=2.0), interval=1,
                          momentum=0.9))
    conns = [c for c in model.connectors.values()
             if getattr(c, 'detach_iters', 0)]
    assert conns and all(c.detach_iters == 120 for c in conns)
    for c in conns:
        c.detach_iters = 2
    i = model.loss_balance.loss_names.index('kd_feat')
    inputs, samples = tiny_batch()
    for _ in range(2):
        out = model.loss(inputs, samples)
        assert out['gnorm_kd_feat'] == 0.0
        assert not bool(model.loss_balance.measured[i])
    out = model.loss(inputs, samples)
    assert bool(model.loss_balance.measured[i])
    assert float(out['gnorm_kd_feat']) == pytest.approx(
        2.0 * float(out['gnorm_task']), rel=1e-3)

