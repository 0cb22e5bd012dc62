"""mmtrack_kd.benchmark.search: the val-split loss-weight search picks the
best factor of each loss, then the best combination, from val only."""
import json
import math

import pytest

from mmtrack_kd.benchmark import records, runner, search
from mmtrack_kd.benchmark.plan import METHODS, parse_loss_scale
from mmtrack_kd.benchmark.runner import Benchmark

# the factor each loss does best with, in the fake trainings below
TARGET = dict(id=3.0, feat=0.3, resp=1.0)


def fake_execute(tasks, jobs):
    """Records whose val IDF1 peaks at TARGET (ours: at TARGET x 0.3) and
    whose test metrics would pick otherwise (the search must not read
    them)."""
    for bench, method, seed, eval_only in tasks:
        if eval_only:
            rec = bench.load_record(method, seed)
            rec['metrics']['val'] = dict(IDF1=40.0, MOTA=30.0, HOTA=35.0)
        else:
            keys = METHODS[method][1]
            goal = 0.3 if method == 'ours' else 1.0
            miss = sum(abs(math.log(bench.scale_of(method, k) /
                                    (TARGET[k] * goal))) for k in keys)
            rec = dict(metrics=dict(
                val=dict(IDF1=50.0 - miss, MOTA=40.0, HOTA=45.0),
                test=dict(IDF1=50.0 + miss, MOTA=40.0, HOTA=45.0)))
        records.json_dump(rec, bench.record_path(method, seed))
    return []


def test_search_picks_best_val_factors(tmp_path, monkeypatch):
    reuse = tmp_path / 'bench'
    ref = Benchmark(str(reuse), 'micro', 1, [])
    for method in ('teacher', 'student'):
        records.json_dump(dict(metrics=dict(test=dict(IDF1=1.0)),
                               data_fingerprint='x'),
                          ref.record_path(method, 0))
    monkeypatch.setattr(runner, 'execute', fake_execute)
    monkeypatch.setattr(Benchmark, 'prepare', lambda self, tasks: None)
    monkeypatch.setattr(Benchmark, 'summarize', lambda self: {})
    s = search.Search(str(reuse), str(tmp_path / 's'), 'micro', 1,
                      scales=search.parse_scales(
                          ['id=1,3', 'feat=0.3,1', 'resp=0.3,1,3']),
                      combine=[1.0, 0.3], jobs=2)
    result = s.run()
    assert {k: result['chosen'][k] for k in TARGET} == TARGET
    for key, value in TARGET.items():
        assert result['chosen'][f'ours.{key}'] == pytest.approx(0.3 * value)
    assert result['student']['IDF1'] == 40.0
    md = (tmp_path / 's' / 'search.md').read_text()
    assert '--loss-scale id=3 feat=0.3 resp=1 ours.id=0.9' in md
    assert '| only_feat x0.3 | 50.00 |' in md
    saved = json.loads((tmp_path / 's' / 'search.json').read_text())
    assert saved['loss_scale_args'] == result['loss_scale_args']
    # the chosen arguments are accepted by the benchmark
    Benchmark(str(tmp_path / 'full'), 'micro', 1, ['ours'],
              loss_scale=parse_loss_scale(result['loss_scale_args'].split()))


def test_search_needs_a_trained_teacher(tmp_path):
    with pytest.raises(ValueError, match='no trained teacher'):
        search.Search(str(tmp_path), str(tmp_path / 's'), 'micro', 1,
                      search.parse_scales(['1']), [1.0], 1)
    with pytest.raises(ValueError, match='factors must be > 0'):
        search.Search(str(tmp_path), str(tmp_path / 's'), 'micro', 1,
                      search.parse_scales(['0']), [1.0], 1)


def test_parse_scales():
    assert search.parse_scales(['0.3', '1']) == dict(
        id=[0.3, 1.0], feat=[0.3, 1.0], resp=[0.3, 1.0])
    assert search.parse_scales(['id=1,3']) == dict(
        id=[1.0, 3.0], feat=[1.0], resp=[1.0])
    for bad in (['fgd=1'], ['id=x'], ['1', 'id=2']):
        with pytest.raises(ValueError, match='--scales'):
            search.parse_scales(bad)


def test_best_factor_breaks_ties_with_mota():
    cands = {1.0: dict(IDF1=50., MOTA=30.), 3.0: dict(IDF1=50., MOTA=31.),
             0.3: None}
    assert search.best_factor(cands) == 3.0
    with pytest.raises(RuntimeError, match='no candidate finished'):
        search.best_factor({1.0: None})
