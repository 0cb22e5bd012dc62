"""tools/benchmark: the KD benchmark (plan, micro run, resume), fps.py and
kd_step_overhead.py on tiny models."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))

import kd_benchmark  # noqa: E402


def run_tool(args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f'{" ".join(args)} failed:\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-3000:]}')
    return proc.stdout


def test_dry_run_lists_every_method_and_seed(tmp_path):
    out = run_tool(['tools/benchmark/kd_benchmark.py', '--preset', 'full',
                    '--seeds', '2', '--out', str(tmp_path / 'b'),
                    '--data', str(tmp_path / 'nodata'), '--dry-run'])
    for method in kd_benchmark.METHODS:
        for seed in (0, 1):
            # the teacher is trained once and serves every seed
            expected = method != 'teacher' or seed == 0
            found = re.search(rf'^\s+{method}\s+seed {seed}\b', out, re.M)
            assert bool(found) == expected, (method, seed, out)
    n = (len(kd_benchmark.METHODS) - 1) * 2 + 1
    assert f'+ the teacher = {n} trainings' in out
    minutes = float(re.search(r'estimated time left: ([\d.]+) min',
                              out).group(1))
    assert minutes > 0
    # nothing was trained or generated
    assert not (tmp_path / 'b' / 'records').exists()
    assert not (tmp_path / 'nodata').exists()


def test_unknown_method_is_rejected(tmp_path):
    proc = subprocess.run([
        sys.executable, 'tools/benchmark/kd_benchmark.py', '--out',
        str(tmp_path), '--methods', 'nope', '--dry-run'
    ], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert '--methods' in proc.stderr and 'nope' in proc.stderr


def test_every_fragment_builds_into_a_valid_kd_config(tmp_path):
    """Each method's distill_cfgs load from its fragment files, MGD/FGD get
    the teacher's neck channels, and the generated config parses."""
    from mmengine.config import Config
    bench = kd_benchmark.Benchmark(str(tmp_path), 'quick', 1,
                                   list(kd_benchmark.METHODS),
                                   data=str(tmp_path / 'd'))
    teacher_ch = bench.preset['teacher']['neck']['out_channels']
    for method, (kind, frags, _) in kd_benchmark.METHODS.items():
        if kind != 'kd':
            continue
        cfgs = bench.distill_cfgs(method)
        assert len(cfgs) == len(frags)
        for c in cfgs:
            assert set(c) <= {'student_recorders', 'teacher_recorders',
                              'connectors', 'distill_losses',
                              'loss_forward_mappings'}
            for loss in c['distill_losses'].values():
                if 'channels' in loss:
                    assert loss['channels'] == [teacher_ch] * 3
    path = bench.kd_cfg('ours_no_feat', 0, '/t.py', '/t.pth')
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'MOTDistiller'
    assert cfg.model.teacher_ckpt == '/t.pth'
    assert cfg.randomness.seed == 0
    losses = [t for c in cfg.model.distill_cfgs
              for t in (v['type'] for v in c['distill_losses'].values())]
    assert losses == ['IDResponseConsistencyLoss', 'PredictionDifferenceLoss']
    assert cfg.model.student.backbone.widen_factor == \
        bench.preset['student']['backbone']['widen_factor']


def test_micro_run_writes_results_and_skips_finished(tmp_path):
    out = tmp_path / 'bench'
    args = ['tools/benchmark/kd_benchmark.py', '--preset', 'micro',
            '--seeds', '1', '--out', str(out), '--methods', 'only_feat']
    log = run_tool(args)
    assert 'run only_feat__seed0' in log
    results = json.loads((out / 'results.json').read_text())
    assert set(results['methods']) == {'teacher', 'student', 'only_feat'}
    for name, m in results['methods'].items():
        rec = m['seeds']['0']
        test = rec['metrics']['test']
        for key in ('MOTA', 'IDF1', 'HOTA', 'MT%', 'ML%', 'IDs'):
            assert key in test, (name, key)
        assert rec['train_time_s'] > 0 and rec['params'] > 0
    # the KD student is evaluated as a plain student: same parameter count
    assert results['methods']['only_feat']['seeds']['0']['params'] == \
        results['methods']['student']['seeds']['0']['params']
    assert results['methods']['teacher']['seeds']['0']['params'] > \
        results['methods']['student']['seeds']['0']['params']
    md = (out / 'results.md').read_text()
    assert '| only_feat |' in md and 'gap recovered' in md
    for png in ('metric_bars.png', 'loss_curves.png', 'acc_vs_fps.png'):
        assert (out / png).stat().st_size > 1000, png
    rec = json.loads((out / 'records' / 'student__seed0.json').read_text())
    assert rec['loss_curve'] and all(len(p) == 2 for p in rec['loss_curve'])

    # a second invocation trains nothing
    before = sorted(os.listdir(out / 'logs'))
    log = run_tool(args)
    for name in ('teacher', 'student', 'only_feat'):
        assert f'skip {name}__seed0 (recorded)' in log
    assert 'run ' not in log
    assert sorted(os.listdir(out / 'logs')) == before

    # the KD step-overhead tool on the generated KD config and teacher
    log = run_tool(['tools/benchmark/kd_step_overhead.py',
                    str(out / 'configs' / 'only_feat__seed0.py'),
                    '--iters', '1'])
    ms = dict(re.findall(r'^\s*(student|kd|teacher): ([\d.]+) ms', log,
                         re.M))
    assert set(ms) == {'student', 'kd', 'teacher'}
    ratio = float(re.search(r'ratio kd / student: ([\d.]+)', log).group(1))
    assert ratio == pytest.approx(float(ms['kd']) / float(ms['student']),
                                  rel=0.05)


@pytest.mark.parametrize('resume', [False, True])
def test_half_finished_training_restarts_or_resumes(tmp_path, monkeypatch,
                                                    resume):
    bench = kd_benchmark.Benchmark(str(tmp_path), 'micro', 1, [],
                                   data=str(tmp_path / 'd'), resume=resume)
    work = tmp_path / 'work' / 'student__seed0'
    work.mkdir(parents=True)
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    (work / 'epoch_1.pth').write_text('half')
    calls = []
    monkeypatch.setattr(kd_benchmark, '_run',
                        lambda cmd, log, threads: calls.append(cmd) or
                        (1.0, 1.0))
    bench._train('student', 0, 'cfg.py')
    assert ('--resume' in calls[0]) == resume
    # restarting wipes the half-finished work dir; resuming keeps it
    assert (work / 'epoch_1.pth').exists() == resume


def test_fps_tool_prints_fps_and_ratio(tmp_path):
    from mmengine.config import Config
    bench = kd_benchmark.Benchmark(str(tmp_path), 'micro', 1, [],
                                   data=str(tmp_path / 'd'))
    student = bench.model_cfg('student', 0)
    teacher = bench.model_cfg('teacher', 0)
    assert Config.fromfile(student).model.neck.out_channels == 16
    out = run_tool(['tools/benchmark/fps.py', student, 'none',
                    '--input-size', '128', '96', '--frames', '8',
                    '--warmup', '2', '--compare', teacher, 'none'])
    assert 'torch threads: 1' in out
    fps = re.findall(r'FPS ([\d.]+) \(model ([\d.]+) ms \+ tracker '
                     r'([\d.]+) ms', out)
    assert len(fps) == 2
    for value, model_ms, tracker_ms in fps:
        assert float(value) > 0 and float(model_ms) > 0
        # FPS is the inverse of the per-frame total
        total = float(model_ms) + float(tracker_ms)
        assert float(value) == pytest.approx(1e3 / total, rel=0.02)
    ratio = float(re.search(r'ratio FPS \S+ / \S+: ([\d.]+)', out).group(1))
    assert ratio == pytest.approx(float(fps[0][0]) / float(fps[1][0]),
                                  rel=0.01)


def test_fps_tool_rejects_bad_input_size():
    proc = subprocess.run([
        sys.executable, 'tools/benchmark/fps.py',
        'configs/cstrack/cstrack_yolov5n_synthmot.py', 'none',
        '--input-size', '100', '96'
    ], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and 'multiples of 32' in proc.stderr


def test_gap_recovered_and_stats():
    def summ(idf1s):
        return dict(summary=dict(test=dict(
            IDF1=kd_benchmark._stats(idf1s))))
    results = dict(methods=dict(teacher=summ([0.8, 0.6]),
                                student=summ([0.4, 0.4]),
                                ours=summ([0.5, 0.5]),
                                bad=summ([])))
    assert results['methods']['teacher']['summary']['test']['IDF1'][
        'std'] == pytest.approx(0.1414, abs=1e-3)
    assert kd_benchmark.gap_recovered(results, 'ours', 'test') == \
        pytest.approx(100 * 0.1 / 0.3)
    assert kd_benchmark.gap_recovered(results, 'bad', 'test') is None
    results['methods']['teacher'] = summ([0.3])  # no positive gap
    assert kd_benchmark.gap_recovered(results, 'ours', 'test') is None


def test_fps_tool_times_onnx_against_pytorch(tmp_path):
    pytest.importorskip('onnxruntime')
    bench = kd_benchmark.Benchmark(str(tmp_path), 'micro', 1, [],
                                   data=str(tmp_path / 'd'))
    student = bench.model_cfg('student', 0)
    name = osp.basename(student)
    out = run_tool(['tools/benchmark/fps.py', student, 'none',
                    '--input-size', '128', '96', '--frames', '6',
                    '--warmup', '2', '--onnx'])
    assert 'onnxruntime: exported to a temporary file' in out
    assert '1 intra-op threads' in out
    fps = {}
    for label, value, model_ms in re.findall(
            r'^(.+): FPS ([\d.]+) \(model ([\d.]+) ms', out, re.M):
        assert float(value) > 0 and float(model_ms) > 0, out
        fps[label] = float(value)
    assert set(fps) == {name, f'{name} (onnxruntime)'}, out
    ratio = float(re.search(r'ratio FPS ONNX / PyTorch \(\S+\): ([\d.]+)',
                            out).group(1))
    assert ratio == pytest.approx(fps[f'{name} (onnxruntime)'] / fps[name],
                                  rel=0.01)


def test_loss_scale_multiplies_only_the_named_losses(tmp_path):
    plain = kd_benchmark.Benchmark(str(tmp_path), 'quick', 1, ['ours'],
                                   data=str(tmp_path / 'd'))
    scaled = kd_benchmark.Benchmark(str(tmp_path), 'quick', 1, ['ours'],
                                    data=str(tmp_path / 'd'),
                                    loss_scale=dict(id=0.5, feat=3.0))

    def weights(bench):
        return [loss['loss_weight'] for c in bench.distill_cfgs('ours')
                for loss in c['distill_losses'].values()]

    (w_id, w_feat, w_resp), (s_id, s_feat, s_resp) = \
        weights(plain), weights(scaled)
    assert (s_id, s_feat, s_resp) == pytest.approx(
        (0.5 * w_id, 3.0 * w_feat, w_resp))
    # METHOD.LOSS wins over LOSS; ours.LOSS also sets the ablations
    bench = kd_benchmark.Benchmark(
        str(tmp_path), 'quick', 1, [], loss_scale={
            'id': 0.5, 'ours.id': 0.2, 'only_feat.feat': 4.0})
    assert bench.scale_of('only_id', 'id') == 0.5
    assert bench.scale_of('ours', 'id') == 0.2
    assert bench.scale_of('ours_no_feat', 'id') == 0.2
    assert bench.scale_of('only_feat', 'feat') == 4.0
    assert bench.scale_of('ours', 'feat') == 1.0
    with pytest.raises(ValueError, match='--loss-scale: unknown'):
        kd_benchmark.Benchmark(str(tmp_path), 'quick', 1, [],
                               loss_scale={'nope.id': 1.0})
    assert kd_benchmark.parse_loss_scale(['id=0.3', 'resp=2']) == dict(
        id=0.3, resp=2.0)
    for bad in (['id'], ['id=x']):
        with pytest.raises(ValueError, match='LOSS=FACTOR'):
            kd_benchmark.parse_loss_scale(bad)
    with pytest.raises(ValueError, match='--loss-scale: unknown'):
        kd_benchmark.Benchmark(str(tmp_path), 'quick', 1, [],
                               loss_scale=dict(nope=1.0))


def test_jobs_wait_for_the_teacher_and_collect_failures(tmp_path,
                                                        monkeypatch):
    import threading
    import time
    bench = kd_benchmark.Benchmark(str(tmp_path), 'micro', 2,
                                   ['only_feat', 'ours'],
                                   data=str(tmp_path / 'd'), jobs=2)
    events, lock = [], threading.Lock()

    def fake_run_one(method, seed):
        with lock:
            events.append(('start', method, seed))
        time.sleep(0.3 if method == 'teacher' else 0.01)
        with lock:
            events.append(('end', method, seed))
        if (method, seed) == ('ours', 1):
            raise RuntimeError('boom')
        return dict(metrics=dict(test=dict(IDF1=1.0)))

    monkeypatch.setattr(bench, 'run_one', fake_run_one)
    monkeypatch.setattr(bench, 'make_data', lambda: None)
    monkeypatch.setattr(bench, 'summarize', lambda: {})
    with pytest.raises(RuntimeError, match='1 run.*ours__seed1: boom'):
        bench.run()
    teacher_end = events.index(('end', 'teacher', 0))
    for i, (what, method, seed) in enumerate(events):
        if what == 'start' and method in ('only_feat', 'ours'):
            assert i > teacher_end, events
    # every run was tried although one failed; the students ran alongside
    assert sum(e[0] == 'start' for e in events) == 7
    assert events.index(('start', 'student', 0)) < teacher_end


def test_teacher_from_reuses_plain_models_only(tmp_path):
    src = tmp_path / 'src' / 'records'
    src.mkdir(parents=True)
    for name in ('teacher__seed0', 'student__seed0', 'ours__seed0'):
        (src / f'{name}.json').write_text(json.dumps(dict(name=name)))
    bench = kd_benchmark.Benchmark(str(tmp_path / 'b'), 'micro', 1, ['ours'],
                                   data=str(tmp_path / 'd'),
                                   teacher_from=str(tmp_path / 'src'))
    assert bench.load_record('teacher', 0) == dict(name='teacher__seed0')
    assert bench.load_record('student', 0) == dict(name='student__seed0')
    assert bench.load_record('ours', 0) is None


def test_missing_splits_are_evaluated_without_retraining(tmp_path,
                                                         monkeypatch):
    src = tmp_path / 'src' / 'records'
    src.mkdir(parents=True)
    for name in ('teacher__seed0', 'student__seed0'):
        (src / f'{name}.json').write_text(json.dumps(dict(
            eval_config='c.py', checkpoint='m.pth',
            metrics=dict(test=dict(IDF1=1.0)))))
    bench = kd_benchmark.Benchmark(str(tmp_path / 'b'), 'micro', 1, [],
                                   data=str(tmp_path / 'd'), splits=['val'],
                                   teacher_from=str(tmp_path / 'src'))
    tested = []
    monkeypatch.setattr(bench, '_test', lambda m, s, cfg, ckpt, split:
                        tested.append((m, split)) or dict(IDF1=2.0))
    monkeypatch.setattr(bench, 'run_one', lambda m, s: pytest.fail(
        f'{m} retrained'))
    monkeypatch.setattr(bench, 'make_data', lambda: None)
    monkeypatch.setattr(bench, '_check_teacher_from', lambda: None)
    monkeypatch.setattr(bench, 'summarize', lambda: {})
    bench.run()
    assert sorted(tested) == [('student', 'val'), ('teacher', 'val')]
    rec = json.loads((tmp_path / 'b' / 'records' /
                      'student__seed0.json').read_text())
    assert rec['metrics'] == dict(test=dict(IDF1=1.0), val=dict(IDF1=2.0))
    # the source folder is left as it was
    assert 'val' not in json.loads(
        (src / 'student__seed0.json').read_text())['metrics']


def test_targets_are_checked_against_floors_and_noise():
    def method(kind, **stats):
        return dict(kind=kind, summary=dict(test={
            k: dict(mean=m, std=sd, n=3) for k, (m, sd) in stats.items()}))

    results = dict(methods=dict(
        teacher=method('teacher', IDF1=(60., 0.), MOTA=(50., 0.)),
        student=method('student', IDF1=(50., 1.), MOTA=(40., 1.),
                       **{'MT%': (20., 1.)}),
        ours=method('kd', IDF1=(56., 1.), MOTA=(41., 0.2),
                    **{'MT%': (30., 6.)}),
        fitnets=method('kd', IDF1=(55.5, 1.)),
        only_id=method('kd', IDF1=(50.5, 1.)),
        only_feat=method('kd', IDF1=(49., 1.))))
    rows = {r['target'].split(' >=')[0].split(' >')[0]: r
            for r in kd_benchmark.check_targets(results)}
    assert rows['ours - student IDF1']['met'] is True  # +6 > 3.9 and > 2
    assert rows['ours - student MOTA']['met'] is False  # +1 < 2.5
    assert rows['ours - student MT%']['met'] is False  # +10 < 2 x 6
    assert rows['IDF1 gap recovered']['met'] is True  # 60 %
    assert rows['ours - fitnets IDF1']['met'] is False  # +0.5
    assert rows['ours - fgd IDF1']['met'] is None  # not run
    assert rows['only_id - student IDF1']['met'] is True
    assert rows['only_feat - student IDF1']['met'] is False
    assert rows['only_resp - student IDF1']['met'] is None
    md = '\n'.join(kd_benchmark.target_lines(results))
    assert '3 of 13 met' in md and '**no**' in md


def test_subprocesses_get_the_thread_count(tmp_path):
    """Each training/test subprocess must see OMP_NUM_THREADS (two jobs of
    two OpenMP threads each on two cores thrash)."""
    log = tmp_path / 'env.log'
    kd_benchmark._run(['-c', 'import os; print("OMP=" + os.environ['
                       '"OMP_NUM_THREADS"], "MKL=" + os.environ['
                       '"MKL_NUM_THREADS"])'], str(log), 3)
    assert 'OMP=3 MKL=3' in log.read_text()


def test_loss_options_set_arguments_of_one_fragment(tmp_path):
    opts = kd_benchmark.parse_loss_options(['feat.normalize=True',
                                            'feat.temperature=0.25'])
    assert opts == dict(feat=dict(normalize=True, temperature=0.25))
    bench = kd_benchmark.Benchmark(str(tmp_path), 'quick', 1, ['ours'],
                                   data=str(tmp_path / 'd'),
                                   loss_options=opts)
    losses = {loss['type']: loss for c in bench.distill_cfgs('ours')
              for loss in c['distill_losses'].values()}
    assert losses['KeyFeatureLoss']['normalize'] is True
    assert losses['KeyFeatureLoss']['temperature'] == 0.25
    assert 'normalize' not in losses['IDResponseConsistencyLoss']
    for bad in (['feat.normalize'], ['feat=1'], ['feat.x=not python']):
        with pytest.raises(ValueError, match='LOSS.ARG=VALUE'):
            kd_benchmark.parse_loss_options(bad)
    with pytest.raises(ValueError, match='--loss-option: unknown'):
        kd_benchmark.Benchmark(str(tmp_path), 'quick', 1, [],
                               loss_options=dict(nope=dict(a=1)))
