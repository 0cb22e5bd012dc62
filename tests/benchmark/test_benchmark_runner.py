"""mmtrack_kd.benchmark.runner: subprocesses, restart or resume, parallel
jobs waiting for the teacher, evaluation of missing splits."""
import json
import threading
import time

import pytest

from mmtrack_kd.benchmark import runner
from mmtrack_kd.benchmark.runner import Benchmark


@pytest.mark.parametrize('resume', [False, True])
def test_half_finished_training_restarts_or_resumes(tmp_path, monkeypatch,
                                                    resume):
    bench = Benchmark(str(tmp_path), 'micro', 1, [],
                      data=str(tmp_path / 'd'), resume=resume)
    work = tmp_path / 'work' / 'student__seed0'
    work.mkdir(parents=True)
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    (work / 'epoch_1.pth').write_text('half')
    calls = []
    monkeypatch.setattr(runner, 'run_cmd',
                        lambda cmd, log, threads: calls.append(cmd) or
                        (1.0, 1.0))
    bench.train('student', 0, 'cfg.py')
    assert ('--resume' in calls[0]) == resume
    # restarting wipes the half-finished work dir; resuming keeps it
    assert (work / 'epoch_1.pth').exists() == resume


def test_jobs_wait_for_the_teacher_and_collect_failures(tmp_path,
                                                        monkeypatch):
    bench = Benchmark(str(tmp_path), 'micro', 2, ['only_feat', 'ours'],
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
    monkeypatch.setattr(bench, 'prepare', lambda tasks: None)
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


def test_kd_runs_fail_when_the_teacher_fails(tmp_path, monkeypatch):
    bench = Benchmark(str(tmp_path), 'micro', 1, ['ours'],
                      data=str(tmp_path / 'd'), jobs=1)

    def fake_run_one(method, seed):
        if method == 'teacher':
            raise RuntimeError('no teacher')
        return dict(metrics={})

    monkeypatch.setattr(bench, 'run_one', fake_run_one)
    failures = runner.execute(bench.tasks(), 1)
    assert [name for name, _ in failures] == ['teacher__seed0',
                                              'ours__seed0']
    assert failures[1][1] == 'the teacher failed'


def test_missing_splits_are_evaluated_without_retraining(tmp_path,
                                                         monkeypatch):
    src = tmp_path / 'src' / 'records'
    src.mkdir(parents=True)
    for name in ('teacher__seed0', 'student__seed0'):
        (src / f'{name}.json').write_text(json.dumps(dict(
            eval_config='c.py', checkpoint='m.pth',
            metrics=dict(test=dict(IDF1=1.0)))))
    bench = Benchmark(str(tmp_path / 'b'), 'micro', 1, [],
                      data=str(tmp_path / 'd'), splits=['val'],
                      teacher_from=str(tmp_path / 'src'))
    tested = []
    monkeypatch.setattr(bench, 'evaluate',
                        lambda m, s, cfg, ckpt, split, options=None:
                        tested.append((m, split)) or dict(IDF1=2.0))
    monkeypatch.setattr(bench, 'run_one', lambda m, s: pytest.fail(
        f'{m} retrained'))
    monkeypatch.setattr(bench, 'usable_eval_config',
                        lambda m, s, rec: rec['eval_config'])
    monkeypatch.setattr(bench, 'prepare', lambda tasks: None)
    monkeypatch.setattr(bench, 'summarize', lambda: {})
    bench.run()
    assert sorted(tested) == [('student', 'val'), ('teacher', 'val')]
    rec = json.loads((tmp_path / 'b' / 'records' /
                      'student__seed0.json').read_text())
    assert rec['metrics'] == dict(test=dict(IDF1=1.0), val=dict(IDF1=2.0))
    # the source folder is left as it was
    assert 'val' not in json.loads(
        (src / 'student__seed0.json').read_text())['metrics']


def test_subprocesses_get_the_thread_count(tmp_path):
    """Each training/test subprocess must see OMP_NUM_THREADS (two jobs of
    two OpenMP threads each on two cores thrash)."""
    log = tmp_path / 'env.log'
    wall, cpu = runner.run_cmd(
        ['-c', 'import os; print("OMP=" + os.environ["OMP_NUM_THREADS"], '
         '"MKL=" + os.environ["MKL_NUM_THREADS"])'], str(log), 3)
    assert 'OMP=3 MKL=3' in log.read_text()
    assert wall > 0 and cpu >= 0
    with pytest.raises(RuntimeError, match='see .*env.log'):
        runner.run_cmd(['-c', 'raise SystemExit(3)'], str(log), 1)


def test_run_benchmark_dry_run_trains_nothing(tmp_path, capsys):
    bench = Benchmark(str(tmp_path / 'b'), 'full', 2, ['ours'],
                      data=str(tmp_path / 'nodata'))
    assert runner.run_benchmark(bench, dry_run=True) is None
    out = capsys.readouterr().out
    assert 'estimated time left' in out and 'ours' in out
    assert not (tmp_path / 'b').exists()
    assert not (tmp_path / 'nodata').exists()


def test_a_run_folder_holds_one_family(tmp_path):
    """Records or a folder of another family are refused, --allow-stale or
    not; a folder of records without a family is CSTrack's (made before
    families); the folder is marked with its family."""
    from mmtrack_kd.benchmark.provenance import StaleRecordsError
    out = tmp_path / 'b'
    (out / 'records').mkdir(parents=True)
    (out / 'records' / 'student__seed0.json').write_text(
        json.dumps(dict(method='student', seed=0, metrics={})))
    assert runner.folder_family(str(out)) == 'cstrack'
    assert runner.folder_family(str(tmp_path / 'new')) is None
    fair = Benchmark(str(out), 'micro', 1, [], data=str(tmp_path / 'd'),
                     family='fairmot', allow_stale=True)
    with pytest.raises(StaleRecordsError) as err:
        fair.check_family()
    msg = str(err.value)
    assert '--family fairmot' in msg and 'family cstrack' in msg
    assert str(out / 'records' / 'student__seed0.json') in msg
    assert not (out / runner.FAMILY_FILE).exists()
    # the cstrack plan takes the folder and marks it
    Benchmark(str(out), 'micro', 1, [], data=str(tmp_path / 'd'),
              ).check_family()
    assert runner.folder_family(str(out)) == 'cstrack'
    # a new folder reusing a cstrack teacher (--teacher-from) is refused
    byte = Benchmark(str(tmp_path / 'c'), 'micro', 1, [],
                     data=str(tmp_path / 'd'), family='bytetrack',
                     teacher_from=str(out))
    with pytest.raises(StaleRecordsError, match='a run folder of family '
                       'cstrack'):
        byte.check_family()
    # a marked bytetrack folder refuses the cstrack plan (no records yet)
    new = Benchmark(str(tmp_path / 'n'), 'micro', 1, [],
                    data=str(tmp_path / 'd'), family='bytetrack')
    new.check_family()
    with pytest.raises(StaleRecordsError, match='family bytetrack'):
        Benchmark(str(tmp_path / 'n'), 'micro', 1, [],
                  data=str(tmp_path / 'd')).check_family()


def test_a_record_whose_eval_config_no_longer_loads(tmp_path, capsys):
    """A reused record written from a removed worktree: its config inherits
    a file that is gone; it is scored with this run's config of the same
    (method, seed), and the record says so."""
    from mmengine.config import Config
    gone = tmp_path / 'gone_worktree' / 'configs' / 'student.py'
    old = tmp_path / 'old_student__seed0.py'
    old.write_text(f"_base_ = ['{gone}']\n")
    rec = dict(eval_config=str(old))
    # not without --allow-stale: another config is a stale score
    strict = Benchmark(str(tmp_path / 'run'), 'micro', 1, [])
    with pytest.raises(RuntimeError, match='--allow-stale'):
        strict.usable_eval_config('student', 0, rec)
    assert 'eval_config_replaced' not in rec
    bench = Benchmark(str(tmp_path / 'run'), 'micro', 1, [],
                      allow_stale=True)
    cfg = bench.usable_eval_config('student', 0, rec)
    assert cfg != str(old) and Config.fromfile(cfg).model is not None
    assert rec['eval_config_replaced']['was'] == str(old)
    assert 'gone_worktree' in rec['eval_config_replaced']['reason']
    assert 'does not load' in capsys.readouterr().out
    # a config that loads is kept as it is
    rec = dict(eval_config=cfg)
    assert bench.usable_eval_config('student', 0, rec) == cfg
    assert 'eval_config_replaced' not in rec


def test_neither_eval_config_loads(tmp_path, monkeypatch):
    bench = Benchmark(str(tmp_path / 'run'), 'micro', 1, [],
                      allow_stale=True)
    old = tmp_path / 'old.py'
    old.write_text("_base_ = ['/nonexistent/base.py']\n")

    def configs_of(method, seed):
        raise RuntimeError('the teacher is not trained')

    monkeypatch.setattr(bench, 'configs_of', configs_of)
    with pytest.raises(RuntimeError, match=r'old\.py does not load .*'
                       'nor does this run'):
        bench.usable_eval_config('ours', 0, dict(eval_config=str(old)))
