"""The in-step timers of tools/benchmark/kd_step_overhead.py: every part of
a real KD step is timed, the balancer's measurement is timed on the
iterations it measures, and the model is left as it was."""
import pytest
from test_kd_equivalence import build_tiny_distiller, tiny_batch

from mmtrack_kd.models.distill import distiller, families, mappings


def test_time_in_step_times_every_part_and_restores_the_model(
        repo_root, tmp_path, overhead_tool):
    tool = overhead_tool
    model = build_tiny_distiller(
        repo_root, str(tmp_path),
        loss_balance=dict(ratios=dict(kd_feat=1.0), interval=5))
    model.loss_balance.step.fill_(3)
    inputs, samples = tiny_batch()
    times = tool.time_in_step(model, inputs, samples, iters=2)
    expected = {'teacher_forward', 'batch_data', 'student_loss',
                'connectors', 'balance', 'forward', 'backward', 'other',
                'student.forward', 'student.backward', 'balancer.measure'}
    expected |= {f'loss.{name}' for name in model.distill_losses}
    assert set(times) == expected
    assert all(len(v) == 2 for v in times.values())
    assert min(times['balancer.measure']) > 0
    # the parts are inside the forward: what is left of it is >= 0
    assert min(times['other']) >= 0
    # the wrappers are gone, the counter is back, no gradient is left
    assert distiller.tensor_forward is families.tensor_forward
    assert distiller.collect_batch_data is mappings.collect_batch_data
    assert 'loss' not in vars(model.student) and \
        '_balanced' not in vars(model)
    for loss in [*model.distill_losses.values(), model.loss_balance]:
        assert 'forward' not in vars(loss)
    assert int(model.loss_balance.step) == 3
    assert all(p.grad is None for p in model.parameters())

    doc = tool.in_step_report(times, 0.1, 0.2, model.loss_balance)
    measure = sorted(times['balancer.measure'])
    bal = doc['balancer']
    assert bal['interval'] == 5
    assert bal['measure_ms'] == pytest.approx(1e3 * sum(measure) / 2)
    assert bal['amortised_ms'] == pytest.approx(bal['measure_ms'] / 5)
    assert doc['overhead_beyond_teacher_amortised'] == pytest.approx(
        0.2 + bal['amortised_ms'] / 1e3 / 0.1)
    extra = doc['in_step']['backward_extra']['median_ms']
    assert extra == pytest.approx(
        doc['in_step']['backward']['median_ms'] -
        doc['in_step']['student.backward']['median_ms'])
    assert 'balancer.measure' not in doc['in_step']
    assert 'gradient balancer' in tool.format_in_step(doc)


def test_time_in_step_without_balancer(repo_root, tmp_path, overhead_tool):
    tool = overhead_tool
    model = build_tiny_distiller(repo_root, str(tmp_path))
    inputs, samples = tiny_batch()
    times = tool.time_in_step(model, inputs, samples, iters=1)
    assert 'balancer.measure' not in times and 'forward' in times
    doc = tool.in_step_report(times, 0.1, 0.2, None)
    assert 'balancer' not in doc
    assert 'overhead_beyond_teacher_amortised' not in doc


def test_profile_writes_a_table(repo_root, tmp_path, overhead_tool):
    tool = overhead_tool
    model = build_tiny_distiller(repo_root, str(tmp_path))
    inputs, samples = tiny_batch()
    out = tmp_path / 'prof.txt'
    tool.profile_kd_steps(model, inputs, samples, str(out), steps=1)
    text = out.read_text()
    assert text.startswith('1 KD steps') and 'Self CPU' in text
    assert all(p.grad is None for p in model.parameters())


def test_one_process_argv_drops_the_run_wide_options(overhead_tool):
    mod = overhead_tool
    argv = ['cfg.py', '--processes', '3', '--iters', '5', '--out=x.json',
            '--profile', 'p.txt', '--clock', 'cpu', '--target', '0.1']
    assert mod._one_process_argv(argv, 'run0.json') == [
        'cfg.py', '--iters', '5', '--clock', 'cpu', '--processes', '1',
        '--out', 'run0.json']
    assert mod.main(['cfg.py', '--processes', '0']) == 2
