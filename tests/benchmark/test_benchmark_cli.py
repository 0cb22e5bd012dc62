"""The command lines over mmtrack_kd.benchmark, run as subprocesses:
tools/benchmark/kd_benchmark.py (dry run, errors, a micro run that is then
skipped), kd_search.py, and the speed tools on the benchmark's configs."""
import json
import os
import re
import subprocess
import sys

import pytest

from mmtrack_kd.benchmark import METHODS, Benchmark, provenance
from mmtrack_kd.benchmark.configs import model_cfg


def run_tool(root, args, timeout=900, rc=0):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + args, cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == rc, (
        f'{" ".join(args)} failed:\n{proc.stdout[-3000:]}\n'
        f'{proc.stderr[-3000:]}')
    return proc


def test_dry_run_lists_every_method_and_seed(tmp_path, repo_root):
    out = run_tool(repo_root, [
        'tools/benchmark/kd_benchmark.py', '--preset', 'full', '--seeds',
        '2', '--out', str(tmp_path / 'b'), '--data',
        str(tmp_path / 'nodata'), '--dry-run']).stdout
    for method in METHODS:
        for seed in (0, 1):
            # the teacher is trained once and serves every seed
            expected = method != 'teacher' or seed == 0
            found = re.search(rf'^\s+{method}\s+seed {seed}\b', out, re.M)
            assert bool(found) == expected, (method, seed, out)
    n = (len(METHODS) - 1) * 2 + 1
    assert f'+ the teacher = {n} trainings' in out
    minutes = float(re.search(r'estimated time left: ([\d.]+) min',
                              out).group(1))
    assert minutes > 0
    # nothing was trained or generated
    assert not (tmp_path / 'b' / 'records').exists()
    assert not (tmp_path / 'nodata').exists()


def test_bad_arguments_exit_2(tmp_path, repo_root):
    proc = run_tool(repo_root, [
        'tools/benchmark/kd_benchmark.py', '--out', str(tmp_path),
        '--methods', 'nope', '--dry-run'], timeout=120, rc=2)
    assert '--methods' in proc.stderr and 'nope' in proc.stderr
    proc = run_tool(repo_root, [
        'tools/benchmark/kd_search.py', '--reuse', str(tmp_path), '--out',
        str(tmp_path / 's'), '--preset', 'micro'], timeout=120, rc=2)
    assert 'no trained teacher' in proc.stderr


def test_micro_run_writes_results_and_skips_finished(tmp_path, repo_root):
    out = tmp_path / 'bench'
    args = ['tools/benchmark/kd_benchmark.py', '--preset', 'micro',
            '--seeds', '1', '--out', str(out), '--methods', 'only_feat']
    log = run_tool(repo_root, args).stdout
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
    # one seed: a comparison with n = 1 and no p-value
    comp = results['comparisons']
    assert [(c['a'], c['b'], c['n']) for c in comp][0] == (
        'only_feat', 'student', 1)
    md = (out / 'results.md').read_text()
    assert '| only_feat |' in md and 'gap recovered' in md
    assert '## Paired comparisons over seeds' in md
    for png in ('metric_bars.png', 'loss_curves.png', 'acc_vs_fps.png'):
        assert (out / png).stat().st_size > 1000, png
    rec = json.loads((out / 'records' / 'student__seed0.json').read_text())
    assert rec['loss_curve'] and all(len(p) == 2 for p in rec['loss_curve'])
    # provenance: config hash, code version, data taken before training,
    # the seed's initial weights shared by the plain and the KD student
    kd = json.loads((out / 'records' / 'only_feat__seed0.json').read_text())
    for r in (rec, kd):
        assert len(r['config_hash']) == 40
        assert len(r['code_version']['hash']) == 40
        assert len(r['data_fingerprint']) == 40
        assert r['train_cpu_s'] > 0 and r['thresholds'] is None
    assert rec['init_sha1'] == kd['init_sha1']
    assert len(kd['teacher_ckpt_sha1']) == 40
    assert (out / 'init' / 'student__seed0.pth').is_file()
    assert (out / 'init' / 'kd_student__seed0.pth').is_file()
    assert 'load_from' in (out / 'configs' /
                           'only_feat__seed0.py').read_text()

    # a second invocation trains nothing. Edits of the package by another
    # process meanwhile make every record stale by code (rightly): the
    # skipping is then checked with --allow-stale
    if provenance.code_version()['hash'] != rec['code_version']['hash']:
        args = args + ['--allow-stale']
    before = sorted(os.listdir(out / 'logs'))
    log = run_tool(repo_root, args).stdout
    for name in ('teacher', 'student', 'only_feat'):
        assert f'skip {name}__seed0 (recorded)' in log
    assert 'run ' not in log
    assert sorted(os.listdir(out / 'logs')) == before
    # --report-only rewrites the reports from the records
    (out / 'results.md').unlink()
    log = run_tool(repo_root, args + ['--report-only']).stdout
    assert 'wrote' in log and (out / 'results.md').is_file()
    # a record of another config is refused, or noted with --allow-stale
    path = out / 'records' / 'student__seed0.json'
    path.write_text(json.dumps(dict(rec, config_hash='0' * 40)))
    plain = [a for a in args if a != '--allow-stale']
    proc = run_tool(repo_root, plain, rc=2)
    assert f'{path}: config differs' in proc.stderr
    run_tool(repo_root, plain + ['--report-only', '--allow-stale'])
    assert 'student__seed0.json`: config differs' in (
        out / 'results.md').read_text()
    path.write_text(json.dumps(rec))

    # the KD step-overhead tool on the generated KD config and teacher
    log = run_tool(repo_root, [
        'tools/benchmark/kd_step_overhead.py',
        str(out / 'configs' / 'only_feat__seed0.py'), '--iters',
        '1']).stdout
    ms = dict(re.findall(r'^\s*(student|kd|teacher): ([\d.]+) ms', log,
                         re.M))
    assert set(ms) == {'student', 'kd', 'teacher'}
    ratio = float(re.search(r'ratio kd / student: ([\d.]+)', log).group(1))
    assert ratio == pytest.approx(float(ms['kd']) / float(ms['student']),
                                  rel=0.05)
    # in fresh processes: each one's overhead, the median and the range
    report = out / 'kd_step.json'
    log = run_tool(repo_root, [
        'tools/benchmark/kd_step_overhead.py',
        str(out / 'configs' / 'only_feat__seed0.py'), '--iters', '1',
        '--processes', '2', '--out', str(report), '--target',
        '50']).stdout
    assert 'process 2/2: overhead' in log and 'median over 2' in log
    assert 'below the target +50.000' in log
    doc = json.loads(report.read_text())
    ci = doc['overhead_ci95']['overhead_paired']
    assert ci['n'] == 2 and ci['low'] <= ci['mean'] <= ci['high']
    each = [p['overhead_beyond_teacher'] for p in doc['processes']]
    assert len(each) == 2 and doc['overhead_beyond_teacher'] == \
        pytest.approx(sum(each) / 2)
    assert doc['overhead_beyond_teacher_range'] == [min(each), max(each)]
    assert '--processes 2' in doc['command'] and 'in_step' in doc
    paired = [p['overhead_paired'] for p in doc['processes']]
    assert doc['overhead_paired_median'] == pytest.approx(sum(paired) / 2)

    # the per-loss timer, in a crowd, the tree in its own process twice
    report = out / 'loss_speed.json'
    cfg = str(out / 'configs' / 'only_feat__seed0.py')
    log = run_tool(repo_root, [
        'tools/benchmark/loss_speed.py', cfg, '--iters', '1', '--people',
        '7', '--trees', str(repo_root), '--rounds', '2', '--out',
        str(report)]).stdout
    assert '| loss.kd_feat.forward |' in log
    doc = json.loads(report.read_text())
    assert doc['people'] == 7 and list(doc['trees']) == [str(repo_root)]
    runs = doc['seconds'][str(repo_root)]
    assert len(runs) == 2
    assert runs[0]['losses'] == pytest.approx(
        sum(v for k, v in runs[0].items() if k.startswith('loss.')))
    # a folder without the package, or a tree twice, is refused by name
    for trees in ([str(tmp_path)], [str(repo_root), str(repo_root)]):
        err = run_tool(repo_root, ['tools/benchmark/loss_speed.py', cfg,
                                   '--trees'] + trees, timeout=120,
                       rc=2).stderr
        assert trees[0] in err and '--trees' in err


def test_fps_tool_on_the_benchmark_configs(tmp_path, repo_root):
    bench = Benchmark(str(tmp_path), 'micro', 1, [],
                      data=str(tmp_path / 'd'))
    student = model_cfg(bench, 'student', 0)
    teacher = model_cfg(bench, 'teacher', 0)
    out = run_tool(repo_root, [
        'tools/benchmark/fps.py', student, 'none', '--input-size', '128',
        '96', '--frames', '8', '--warmup', '2', '--compare', teacher,
        'none']).stdout
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


def test_fps_tool_rejects_bad_input_size(repo_root):
    proc = run_tool(repo_root, [
        'tools/benchmark/fps.py',
        'configs/cstrack/cstrack_yolov5n_synthmot.py', 'none',
        '--input-size', '100', '96'], timeout=120, rc=2)
    assert 'multiples of 32' in proc.stderr


def test_fps_tool_times_onnx_against_pytorch(tmp_path, repo_root):
    pytest.importorskip('onnxruntime')
    bench = Benchmark(str(tmp_path), 'micro', 1, [],
                      data=str(tmp_path / 'd'))
    student = model_cfg(bench, 'student', 0)
    name = os.path.basename(student)
    out = run_tool(repo_root, [
        'tools/benchmark/fps.py', student, 'none', '--input-size', '128',
        '96', '--frames', '6', '--warmup', '2', '--onnx']).stdout
    assert 'onnxruntime: exported to a temporary file' in out
    assert '1 intra-op threads (not spinning while idle)' in out
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


def test_family_dry_run_and_refused_method(tmp_path, repo_root):
    out = run_tool(repo_root, [
        'tools/benchmark/kd_benchmark.py', '--family', 'bytetrack',
        '--preset', 'full', '--seeds', '3', '--methods', 'ours', 'fitnets',
        '--out', str(tmp_path / 'b'), '--data', str(tmp_path / 'nodata'),
        '--dry-run'], timeout=300).stdout
    assert out.startswith('family bytetrack')
    assert '+ the teacher = 10 trainings' in out
    assert not (tmp_path / 'nodata').exists()
    proc = run_tool(repo_root, [
        'tools/benchmark/kd_benchmark.py', '--family', 'bytetrack',
        '--out', str(tmp_path / 'c'), '--methods', 'ours', 'only_id',
        '--dry-run'], timeout=300, rc=2)
    assert 'only_id does not apply to --family bytetrack' in proc.stderr


@pytest.mark.parametrize('family', ['fairmot', 'bytetrack'])
def test_micro_run_of_a_family(tmp_path, repo_root, family):
    """The teacher, the student and ours of a family end to end (about
    50 s on one core), recorded with their family; the folder then
    refuses the cstrack family."""
    out = tmp_path / family
    args = ['tools/benchmark/kd_benchmark.py', '--family', family,
            '--preset', 'micro', '--seeds', '1', '--methods', 'student',
            'ours', '--jobs', '1', '--out', str(out)]
    run_tool(repo_root, args, timeout=600)
    results = json.loads((out / 'results.json').read_text())
    assert results['family'] == family
    assert set(results['methods']) == {'teacher', 'student', 'ours'}
    rec = json.loads((out / 'records' / 'ours__seed0.json').read_text())
    assert rec['family'] == family
    assert 'IDF1' in rec['metrics']['test']
    assert len(rec['fragments']) == (3 if family == 'fairmot' else 2)
    cstrack = [a if a != family else 'cstrack' for a in args]
    proc = run_tool(repo_root, cstrack + ['--allow-stale'], timeout=300,
                    rc=2)
    assert f'a run folder of family {family}' in proc.stderr


def test_protocol_dry_run_and_overrides(tmp_path, repo_root):
    """``--protocol`` runs the preset's protocol; an option given on the
    command line replaces the protocol's entry."""
    base = ['tools/benchmark/kd_benchmark.py', '--preset', 'full',
            '--protocol', '--out', str(tmp_path / 'b'), '--data',
            str(tmp_path / 'nodata'), '--dry-run']
    out = run_tool(repo_root, base, timeout=120).stdout
    assert '8 epochs x' in out
    assert '3 seeds (5 for student, ours, only_resp)' in out
    assert re.search(r'^\s+ours\s+seed 4\b', out, re.M)
    assert not re.search(r'^\s+pkd\s+seed 3\b', out, re.M)
    assert re.search(r'^\s+pkd\s+seed 2\b', out, re.M)
    assert "'pkd.pkd': 7.0" in out
    minutes = float(re.search(r'estimated time left: ([\d.]+) min',
                              out).group(1))
    assert 0 < minutes <= 240
    out = run_tool(repo_root, base + [
        '--methods', 'ours', '--seeds-of', 'student=2', 'ours=2',
        '--epochs', '6'], timeout=120).stdout
    assert '6 epochs x' in out
    assert '2 student method(s) x 3 seeds (2 for student, ours) + the ' \
        'teacher = 5 trainings' in out
    # --seeds 0 is refused as without --protocol, not replaced
    proc = run_tool(repo_root, base + ['--seeds', '0'], timeout=120, rc=2)
    assert '--seeds must be >= 1' in proc.stderr
    proc = run_tool(repo_root, base + ['--seeds-of', 'ours=x'],
                    timeout=120, rc=2)
    assert "--seeds-of: expected METHOD=N with an integer N, got 'ours=x'" \
        in proc.stderr
    proc = run_tool(repo_root, ['tools/benchmark/kd_benchmark.py',
                                '--preset', 'quick', '--protocol', '--out',
                                str(tmp_path / 'q'), '--dry-run'],
                    timeout=120, rc=2)
    assert "--protocol: preset 'quick'" in proc.stderr
