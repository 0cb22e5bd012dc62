"""mmtrack_kd.benchmark.provenance and the stale-record refusal: data
fingerprints over meta, annotations and images; config hashes; code
versions; records of other code, config or data refused unless
--allow-stale, and noted in results.md when allowed."""
import json
import os
import subprocess
import sys
import threading

import pytest

from mmtrack_kd.benchmark import provenance, records, runner
from mmtrack_kd.benchmark.report import markdown
from mmtrack_kd.benchmark.runner import Benchmark


def make_data(root, knobs='{"num_frames": 6}'):
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    for split in ('train', 'val', 'test'):
        (root / 'annotations' / f'{split}_cocoformat.json').write_text(
            json.dumps(dict(images=[split] * 4)))
        img = root / split / 'seq0' / 'img1'
        img.mkdir(parents=True, exist_ok=True)
        (img / '000001.jpg').write_bytes(b'\xff\xd8' + split.encode())
    (root / 'meta.json').write_text(
        f'{{"name": "SynthMOT", "version": 1, "knobs": {knobs}}}')
    return str(root)


def test_data_fingerprint_covers_generator_knobs_and_images(tmp_path):
    data = tmp_path / 'd'
    first = provenance.data_fingerprint(make_data(data))
    assert provenance.data_fingerprint(str(data)) == first
    # an image changes, the annotations do not
    img = data / 'val' / 'seq0' / 'img1' / '000001.jpg'
    img.write_bytes(b'\xff\xd8other')
    second = provenance.data_fingerprint(str(data))
    assert second != first
    # a renamed image
    img.rename(img.with_name('000002.jpg'))
    assert provenance.data_fingerprint(str(data)) not in (first, second)
    # the generator's knobs (meta.json), same images and annotations
    other = tmp_path / 'e'
    make_data(other, knobs='{"num_frames": 7}')
    make_data(data)
    (data / 'val' / 'seq0' / 'img1' / '000002.jpg').unlink()
    assert provenance.data_fingerprint(str(data)) == first
    assert provenance.data_fingerprint(str(other)) != first
    # records re-export it
    assert records.data_fingerprint(str(data)) == first


def test_config_hash_ignores_folders_and_sees_settings(tmp_path):
    data = make_data(tmp_path / 'd')
    a = Benchmark(str(tmp_path / 'a'), 'micro', 1, [], data=data)
    b = Benchmark(str(tmp_path / 'b'), 'micro', 1, [], data=data)
    ha = a.config_hash(a.configs_of('student', 0)[0])
    # the same settings in another run folder (absolute paths differ)
    assert b.config_hash(b.configs_of('student', 0)[0]) == ha
    # another seed, and another loss weight, are other configs
    assert a.config_hash(a.configs_of('student', 1)[0]) != ha
    records.json_dump(dict(config='/t.py', checkpoint='/t.pth'),
                      a.record_path('teacher', 0))
    c = Benchmark(str(tmp_path / 'a'), 'micro', 1, ['ours'], data=data,
                  loss_scale=dict(feat=2.0))
    hk = a.config_hash(a.configs_of('only_feat', 0)[0])
    assert c.config_hash(c.configs_of('only_feat', 0)[0]) != hk


def test_code_version_hashes_the_package_without_git(tmp_path):
    root = tmp_path / 'repo'
    for rel in ('mmtrack_kd/models/a.py', 'mmtrack_kd/benchmark/report.py',
                'mmtrack_kd/benchmark/configs.py', 'tools/train.py'):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text('x = 1\n')
    first = provenance.code_version(str(root))
    assert 'git_commit' not in first and len(first['hash']) == 40
    # reporting code does not change what is trained
    (root / 'mmtrack_kd/benchmark/report.py').write_text('x = 2\n')
    assert provenance.code_version(str(root))['hash'] == first['hash']
    for rel in ('mmtrack_kd/models/a.py', 'mmtrack_kd/benchmark/configs.py',
                'tools/train.py'):
        (root / rel).write_text('x = 3\n')
        now = provenance.code_version(str(root))['hash']
        assert now != first['hash'], rel
        first['hash'] = now
    # the repository itself: git commit and dirty flag for information
    code = provenance.code_version()
    if 'git_commit' in code:
        assert len(code['git_commit']) == 40
        assert code['git_dirty'] in (True, False, None)


def current_record(bench, method, seed, **over):
    """A record as run_one writes it for the current code and data."""
    rec = dict(method=method, seed=seed, kind=method,
               config=bench.configs_of(method, seed)[0],
               eval_config='e.py', checkpoint=str(bench.out) + '/m.pth',
               config_hash=bench.config_hash(
                   bench.configs_of(method, seed)[0]),
               code_version=bench.code(),
               data_fingerprint=bench.fingerprint(),
               train_time_s=1.0, train_cpu_s=1.0, params=10,
               thresholds=None, metrics=dict(test=dict(IDF1=50.0)))
    rec.update(over)
    records.json_dump(rec, bench.record_path(method, seed))
    return rec


def test_stale_records_are_refused_unless_allowed(tmp_path, monkeypatch):
    data = make_data(tmp_path / 'd')
    bench = Benchmark(str(tmp_path / 'b'), 'micro', 2, [], data=data)
    current_record(bench, 'teacher', 0)
    current_record(bench, 'student', 0)
    current_record(bench, 'student', 1,
                   code_version=dict(hash='0' * 40),
                   data_fingerprint='old')
    monkeypatch.setattr(bench, 'make_init', lambda seed: 'x')
    with pytest.raises(provenance.StaleRecordsError) as err:
        bench.prepare(bench.tasks())
    msg = str(err.value)
    assert '1 record(s)' in msg and '--allow-stale' in msg
    assert bench.record_path('student', 1) + ': code differs' in msg
    assert 'data differs' in msg
    assert 'student__seed0.json' not in msg

    # a changed setting (another loss scale) makes the config stale
    c = Benchmark(str(tmp_path / 'b'), 'micro', 2, [], data=data,
                  allow_stale=True)
    over = dict(c.preset['student'], test_cfg=dict(max_per_img=3))
    monkeypatch.setitem(c.preset, 'student', over)
    stale = {s['record']: s['reasons'] for s in c.find_stale()}
    assert stale[c.record_path('student', 0)] == ['config differs']
    assert c.record_path('teacher', 0) not in stale

    # allowed: kept, warned about, noted in results.md
    allowed = Benchmark(str(tmp_path / 'b'), 'micro', 2, [], data=data,
                        allow_stale=True)
    monkeypatch.setattr(allowed, 'make_init', lambda seed: 'x')
    allowed.prepare(allowed.tasks())
    assert [s['seed'] for s in allowed.stale] == [1]
    results = allowed.summarize()
    assert results['stale'][0]['record'] == bench.record_path('student', 1)
    md = (tmp_path / 'b' / 'results.md').read_text()
    assert '1 stale record(s)' in md and 'student__seed1.json' in md
    assert '| student (stale) |' in md
    assert '1 stale record(s)' not in markdown(dict(results, stale=[]))


def test_old_records_without_hashes_are_stale(tmp_path):
    data = make_data(tmp_path / 'd')
    bench = Benchmark(str(tmp_path / 'b'), 'micro', 1, [], data=data)
    records.json_dump(dict(metrics={}, data_fingerprint='x'),
                      bench.record_path('student', 0))
    [stale] = bench.find_stale()
    assert stale['reasons'][:2] == [
        'no config hash (made before hashes were recorded)',
        'no code version (made before versions were recorded)']


def test_kd_records_are_stale_when_the_teacher_is_retrained(tmp_path):
    data = make_data(tmp_path / 'd')
    bench = Benchmark(str(tmp_path / 'b'), 'micro', 1, ['only_feat'],
                      data=data)
    ckpt = tmp_path / 'b' / 'm.pth'
    ckpt.parent.mkdir()
    ckpt.write_bytes(b'teacher 1')
    current_record(bench, 'teacher', 0)
    current_record(bench, 'student', 0)
    current_record(bench, 'only_feat', 0,
                   teacher_ckpt_sha1=runner.file_sha1(str(ckpt)))
    assert bench.find_stale() == []
    ckpt.write_bytes(b'teacher 2')
    [stale] = bench.find_stale()
    assert stale['method'] == 'only_feat'
    assert stale['reasons'] == ['trained with another teacher checkpoint']


def test_teacher_of_other_data_is_refused_before_kd_training(tmp_path):
    data = make_data(tmp_path / 'd')
    bench = Benchmark(str(tmp_path / 'b'), 'micro', 1, ['only_feat'],
                      data=data, allow_stale=True)
    current_record(bench, 'teacher', 0, data_fingerprint='other')
    with pytest.raises(RuntimeError, match='teacher was trained on other '
                       'data.*teacher__seed0.json'):
        bench.prepare(bench.tasks())


def test_cli_refuses_stale_records_with_exit_2(tmp_path, repo_root):
    data = make_data(tmp_path / 'd')
    bench = Benchmark(str(tmp_path / 'b'), 'micro', 1, [], data=data)
    records.json_dump(dict(metrics=dict(test=dict(IDF1=1.0)),
                           data_fingerprint='x'),
                      bench.record_path('teacher', 0))
    proc = subprocess.run(
        [sys.executable, 'tools/benchmark/kd_benchmark.py', '--preset',
         'micro', '--out', str(tmp_path / 'b'), '--data', data,
         '--report-only'], cwd=repo_root, capture_output=True, text=True,
        timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'teacher__seed0.json: no config hash' in proc.stderr
    assert not (tmp_path / 'b' / 'results.md').exists()


def test_cpu_seconds_are_those_of_one_child(tmp_path):
    """Two jobs at once: each training's CPU time is its own process's,
    not the other job's (``RUSAGE_CHILDREN`` deltas would mix them)."""
    busy = ['-c', 'import time\nt = time.process_time()\n'
            'while time.process_time() - t < 1.0: pass']
    idle = ['-c', 'import time; time.sleep(1.5)']
    out = {}

    def job(name, cmd):
        out[name] = runner.run_cmd(cmd, str(tmp_path / f'{name}.log'), 1)

    threads = [threading.Thread(target=job, args=('idle', idle)),
               threading.Thread(target=job, args=('busy', busy))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out['busy'][1] >= 0.9
    assert out['idle'][1] < 0.5, out
    assert out['idle'][0] >= 1.4


def test_data_of_other_knobs_is_reported(tmp_path, tiny_synthmot):
    bench = Benchmark(str(tmp_path), 'micro', 1, [], data=tiny_synthmot)
    found = bench.data_mismatch()
    # the fixture: seed 3, 10 frames, up to 4 people (micro: 0, 6, 3)
    assert 'seed 3 (the preset makes 0)' in found
    assert 'knob num_frames 10 (the preset makes 6)' in found
    assert 'knob max_people 4 (the preset makes 3)' in found
    assert not any('version' in x for x in found)
    assert Benchmark(str(tmp_path), 'micro', 1, [],
                     data=str(tmp_path)).data_mismatch() == []
