"""mmtrack_kd.benchmark.thresholds: the detection and tracker thresholds of
every model are picked on val from the grid of presets.yaml, then the other
splits are scored with them."""
import math

import pytest

from mmtrack_kd.benchmark import configs, records
from mmtrack_kd.benchmark import thresholds as thr
from mmtrack_kd.benchmark.plan import load_benchmark_data
from mmtrack_kd.benchmark.report import markdown, threshold_lines
from mmtrack_kd.benchmark.runner import Benchmark
from mmtrack_kd.utils.tools import load_run_config, parse_cfg_options


def test_grid_of_the_data_file():
    spec = thr.grid_spec(load_benchmark_data())
    cands = thr.candidates(spec)
    # 0.4 to 0.7 in steps of 0.025 (13 candidates)
    values = [round(0.4 + 0.025 * i, 3) for i in range(13)]
    assert list(cands) == [f'score_thr={v:g}' for v in values]
    assert list(cands)[:2] == ['score_thr=0.4', 'score_thr=0.425']
    assert [c['model.test_cfg.score_thr'] for c in cands.values()] == \
        pytest.approx(values)
    # the tracker's thresholds follow the detection threshold
    for c in cands.values():
        assert len(set(c.values())) == 1
        assert set(c) == {'model.test_cfg.score_thr',
                          'model.tracker.obj_score_thr',
                          'model.tracker.init_track_thr'}
    presets = load_benchmark_data()['presets']
    assert presets['full']['tune_thresholds'] is True
    assert presets['micro']['tune_thresholds'] is False


def test_candidates_are_the_product_of_the_entries():
    spec = dict(grid=dict(
        det=dict(keys=['a', 'b'], values=[0.3, 0.5]),
        match=dict(keys=['c'], values=[0.1, 0.2, 0.4])))
    cands = thr.candidates(spec)
    assert len(cands) == 6
    assert cands['det=0.3,match=0.1'] == dict(a=0.3, b=0.3, c=0.1)
    assert list(cands)[-1] == 'det=0.5,match=0.4'
    assert cands['det=0.5,match=0.4'] == dict(a=0.5, b=0.5, c=0.4)
    assert thr.cfg_option_args(cands['det=0.3,match=0.2']) == [
        '--cfg-options', 'a=0.3', 'b=0.3', 'c=0.2']
    assert thr.cfg_option_args(None) == []
    with pytest.raises(KeyError, match='thresholds.grid.det needs'):
        thr.grid_spec(dict(thresholds=dict(
            metric='IDF1', tie_break='MOTA', grid=dict(det=dict(keys=[])))))


def test_choose_best_metric_then_tie_break_then_order():
    res = {'x': dict(IDF1=50.0, MOTA=10.0), 'y': dict(IDF1=52.0, MOTA=1.0),
           'z': dict(IDF1=52.0, MOTA=3.0), 'w': dict(IDF1=52.0, MOTA=3.0),
           'n': dict(IDF1=math.nan, MOTA=99.0), 'f': None}
    assert thr.choose(res, 'IDF1', 'MOTA') == 'z'
    with pytest.raises(RuntimeError, match='no candidate'):
        thr.choose({'f': None}, 'IDF1', 'MOTA')


def test_options_reach_the_generated_config(tmp_path, tiny_synthmot):
    bench = Benchmark(str(tmp_path), 'micro', 1, [], data=tiny_synthmot)
    cand = thr.candidates(thr.grid_spec(load_benchmark_data()))[
        'score_thr=0.6']
    options = parse_cfg_options(thr.cfg_option_args(cand)[1:])
    cfg = load_run_config(configs.model_cfg(bench, 'student', 0),
                          cfg_options=options)
    assert cfg.model.test_cfg.score_thr == 0.6
    assert cfg.model.tracker.obj_score_thr == 0.6
    assert cfg.model.tracker.init_track_thr == 0.6
    assert cfg.model.test_cfg.max_per_img == 10  # the rest stays


def fake_evaluate(calls):
    """val IDF1 peaks at score_thr 0.4; test would prefer 0.3 (it must not
    be read for the choice)."""
    def evaluate(method, seed, cfg, ckpt, split, options=None, tag=''):
        calls.append((split, dict(options or {}), tag))
        t = (options or {}).get('model.test_cfg.score_thr', 0.5)
        if split == 'val':
            return dict(IDF1=60 - 100 * abs(t - 0.4), MOTA=40.0, HOTA=1.0)
        return dict(IDF1=60 - 100 * abs(t - 0.3), MOTA=40.0, HOTA=1.0)
    return evaluate


def fake_sweep(calls, evaluate):
    """:meth:`Benchmark.evaluate_sweep` as ``evaluate`` per candidate
    (recorded as one call, ``('sweep', labels)``)."""
    def evaluate_sweep(method, seed, cfg, ckpt, split, cands):
        calls.append(('sweep', list(cands)))
        return {label: evaluate(method, seed, cfg, ckpt, split, c,
                                tag=f'.t{i}')
                for i, (label, c) in enumerate(cands.items())}
    return evaluate_sweep


@pytest.mark.parametrize('splits', [['test'], ['val', 'test']])
@pytest.mark.parametrize('sweep', [True, False])
def test_score_picks_on_val_and_scores_test_with_it(tmp_path, monkeypatch,
                                                    splits, sweep):
    bench = Benchmark(str(tmp_path), 'micro', 1, [], splits=splits)
    bench.tune_thresholds = True
    calls = []
    monkeypatch.setattr(bench, 'evaluate', fake_evaluate(calls))
    monkeypatch.setattr(bench, 'evaluate_sweep',
                        fake_sweep(calls, bench.evaluate))
    if not sweep:  # a grid key the network reads: one run per candidate
        grid = bench.threshold_candidates()
        for c in grid.values():
            c['model.neck.out_channels'] = 16
        monkeypatch.setattr(bench, 'threshold_candidates', lambda: grid)
    tuned, metrics = bench.score('student', 0, 'c.py', 'm.pth', splits)
    assert tuned['chosen'] == 'score_thr=0.4'
    assert tuned['options']['model.tracker.init_track_thr'] == 0.4
    assert tuned['grid'] == list(bench.threshold_candidates())
    assert tuned['val'][tuned['chosen']]['IDF1'] == pytest.approx(60.0)
    # the default grid: one sweep run of the four candidates
    assert (calls[0] == ('sweep', tuned['grid'])) == sweep
    runs = [c for c in calls if c[0] != 'sweep']
    # every val candidate, then each other split once, with the choice
    n = len(tuned['grid'])
    assert [c[0] for c in runs] == ['val'] * n + ['test']
    assert runs[-1][1] == tuned['options']
    assert len({c[2] for c in runs[:n]}) == n  # one metrics file each
    assert metrics['test']['IDF1'] == pytest.approx(50.0)
    if 'val' in splits:
        assert metrics['val']['IDF1'] == pytest.approx(60.0)
    # untuned presets evaluate with the configs' thresholds
    plain = Benchmark(str(tmp_path), 'micro', 1, [], splits=splits)
    calls.clear()
    monkeypatch.setattr(plain, 'evaluate', fake_evaluate(calls))
    tuned, metrics = plain.score('student', 0, 'c.py', 'm.pth', splits)
    assert tuned is None and [c[1] for c in calls] == [{}] * len(splits)


@pytest.mark.parametrize('family', ['cstrack', 'fairmot', 'bytetrack'])
def test_evaluate_sweep_runs_test_py_once(tmp_path, monkeypatch, family):
    """One tools/test.py --sweep run writes candidate i's metrics where its
    own run would (``METRICS/NAME.val.t{i}.json``); the tool's file naming
    is that of the evaluation package."""
    from mmtrack_kd.benchmark import runner
    from mmtrack_kd.evaluation import load_sweep, sweep_out_paths
    bench = Benchmark(str(tmp_path / 'b{x}'), 'full', 1, [], family=family)
    cands = bench.threshold_candidates()
    # 0.4 up to 0.7 (0.85 for ByteTrack) in steps of 0.025
    assert len(cands) == (19 if family == 'bytetrack' else 13)
    assert bench.sweepable(cands)
    cmds = []

    def run_cmd(cmd, log, threads):
        cmds.append(cmd)
        out = cmd[cmd.index('--out') + 1]
        sweep = load_sweep(cmd[cmd.index('--sweep') + 1])
        assert sweep == cands
        for i, path in enumerate(sweep_out_paths(out, list(sweep)).values()):
            records.json_dump({'mot/IDF1': float(i), 'FPS': 9.0}, path)
        return 1.0, 1.0

    monkeypatch.setattr(runner, 'run_cmd', run_cmd)
    val = bench.evaluate_sweep('student', 0, 'c.py', 'm.pth', 'val', cands)
    assert len(cmds) == 1 and cmds[0][:5] == [
        'tools/test.py', 'c.py', 'm.pth', '--split', 'val']
    assert list(val) == list(cands)
    for i, label in enumerate(cands):
        assert val[label] == {'IDF1': float(i), 'FPS': 9.0}
        assert bench.read_metrics(bench.metrics_path(
            'student', 0, 'val', f'.t{i}')) == val[label]
    # a key of another family's post-processing is not swept
    other = {'x': {'model.detector.test_cfg.score_thr': 0.3}}
    assert bench.sweepable(other) == (family == 'bytetrack')


def test_complete_uses_the_recorded_choice(tmp_path, monkeypatch):
    bench = Benchmark(str(tmp_path), 'micro', 1, [],
                      splits=['val', 'test'])
    bench.tune_thresholds = True
    options = {'model.test_cfg.score_thr': 0.3}
    cfg = tmp_path / 'c.py'
    cfg.write_text('x = 1\n')
    records.json_dump(dict(method='student', seed=0, eval_config=str(cfg),
                           checkpoint='m.pth', thresholds=dict(
                               chosen='x', options=options),
                           metrics=dict(val=dict(IDF1=1.0))),
                      bench.record_path('student', 0))
    calls = []
    monkeypatch.setattr(bench, 'evaluate', fake_evaluate(calls))
    rec = bench.complete('student', 0)
    assert calls == [('test', options, '')]
    assert set(rec['metrics']) == {'val', 'test'}


def _coarse_record(bench, method='student', seed=0):
    """A record whose thresholds were picked on another (coarser) grid."""
    records.json_dump(dict(
        method=method, seed=seed, kind='student', eval_config='c.py',
        checkpoint='m.pth', train_time_s=12.5,
        thresholds=dict(grid=['score_thr=0.5', 'score_thr=0.6'],
                        chosen='score_thr=0.5',
                        options={'model.test_cfg.score_thr': 0.5}),
        metrics=dict(val=dict(IDF1=1.0), test=dict(IDF1=2.0))),
        bench.record_path(method, seed))


@pytest.mark.parametrize('rescore', [False, True])
def test_rescore_picks_records_of_another_grid_again(tmp_path, monkeypatch,
                                                     rescore):
    bench = Benchmark(str(tmp_path), 'full', 1, ['student'],
                      splits=['val', 'test'], rescore=rescore)
    _coarse_record(bench)
    todo = [t[1:] for t in bench.tasks()]
    # without --rescore: complete (nothing missing: skipped) and stale
    assert (('student', 0, 'rescore') in todo) == rescore
    monkeypatch.setattr(bench, 'configs_of', lambda m, s: ('c.py', 'c.py'))
    monkeypatch.setattr(bench, 'config_hash', lambda cfg: 'h')
    monkeypatch.setattr(bench, 'fingerprint', lambda: 'f')
    reasons = bench.stale_reasons('student', 0,
                                  bench.load_record('student', 0))
    assert any(r.startswith('thresholds:') for r in reasons) != rescore
    if not rescore:
        return
    calls = []
    monkeypatch.setattr(bench, 'usable_eval_config',
                        lambda m, s, rec: rec['eval_config'])
    monkeypatch.setattr(bench, 'evaluate', fake_evaluate(calls))
    monkeypatch.setattr(bench, 'evaluate_sweep',
                        fake_sweep(calls, bench.evaluate))
    rec = bench.rescore_one('student', 0)
    assert rec['thresholds']['grid'] == list(bench.threshold_candidates())
    assert rec['thresholds']['chosen'] == 'score_thr=0.4'
    assert rec['metrics']['test']['IDF1'] == pytest.approx(50.0)
    assert rec['train_time_s'] == 12.5  # the training is kept
    prev = rec['rescored']['previous']
    assert prev['chosen'] == 'score_thr=0.5'
    assert prev['metrics']['test']['IDF1'] == 2.0
    assert bench.load_record('student', 0)['thresholds'] == rec['thresholds']
    # now on the grid: nothing left to do for it
    assert [t for t in bench.tasks() if t[1] == 'student'] == []


def test_results_md_shows_the_chosen_thresholds():
    grid = ['t=0.3', 't=0.4']
    t = dict(metric='IDF1', tie_break='MOTA', grid=grid, chosen='t=0.4',
             options=dict(t=0.4), val={'t=0.3': dict(IDF1=50.0),
                                       't=0.4': dict(IDF1=55.5)})
    results = dict(preset='full', data='/d', seeds=[0], sizes={},
                   torch_threads=1, tune_thresholds=True,
                   methods=dict(student=dict(
                       kind='student', summary={},
                       seeds={'0': dict(thresholds=t)})))
    lines = threshold_lines(results)
    assert '## Thresholds picked on val' in lines
    assert '| student | 0 | `t=0.4` | 50.00 | 55.50 |' in lines
    assert 'picked on val per model' in markdown(results)
    # a record of another grid (kept with --allow-stale): the columns are
    # every candidate, each model's own ones filled
    other = dict(t, grid=['t=0.4', 't=0.5'], chosen='t=0.5',
                 val={'t=0.4': dict(IDF1=40.0), 't=0.5': dict(IDF1=41.0)})
    results['methods']['ours'] = dict(kind='kd', summary={},
                                      seeds={'0': dict(thresholds=other)})
    lines = threshold_lines(results)
    assert any('`t=0.3` | `t=0.4` | `t=0.5` |' in ln for ln in lines)
    assert '| student | 0 | `t=0.4` | 50.00 | 55.50 | n/a |' in lines
    assert '| ours | 0 | `t=0.5` | n/a | 40.00 | 41.00 |' in lines
    del results['methods']['ours']
    results['methods']['student']['seeds']['0']['thresholds'] = None
    assert threshold_lines(results) == []
