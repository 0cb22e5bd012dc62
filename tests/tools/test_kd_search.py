"""tools/benchmark/kd_search.py: the val-split loss-weight search picks
the best factor of each loss, then the best combination, from val only."""
import json
import math
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
import kd_benchmark as kb  # noqa: E402
import kd_search  # noqa: E402

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
            keys = kb.METHODS[method][1]
            goal = 0.3 if method == 'ours' else 1.0
            miss = sum(abs(math.log(bench.scale_of(method, k) /
                                    (TARGET[k] * goal))) for k in keys)
            rec = dict(metrics=dict(
                val=dict(IDF1=50.0 - miss, MOTA=40.0, HOTA=45.0),
                test=dict(IDF1=50.0 + miss, MOTA=40.0, HOTA=45.0)))
        kb._json_dump(rec, bench.record_path(method, seed))
    return []


def test_search_picks_best_val_factors(tmp_path, monkeypatch):
    reuse = tmp_path / 'bench'
    ref = kb.Benchmark(str(reuse), 'micro', 1, [])
    for method in ('teacher', 'student'):
        kb._json_dump(dict(metrics=dict(test=dict(IDF1=1.0)),
                           data_fingerprint='x'),
                      ref.record_path(method, 0))
    monkeypatch.setattr(kb, 'execute', fake_execute)
    monkeypatch.setattr(kb.Benchmark, '_check_teacher_from', lambda self:
                        None)
    monkeypatch.setattr(kb.Benchmark, 'summarize', lambda self: {})
    search = kd_search.Search(str(reuse), str(tmp_path / 's'), 'micro', 1,
                              scales=kd_search.parse_scales(
                                  ['id=1,3', 'feat=0.3,1', 'resp=0.3,1,3']),
                              combine=[1.0, 0.3],
                              jobs=2)
    result = search.run()
    assert {k: result['chosen'][k] for k in TARGET} == TARGET
    for key, value in TARGET.items():
        assert result['chosen'][f'ours.{key}'] == pytest.approx(0.3 * value)
    assert result['student']['IDF1'] == 40.0
    md = (tmp_path / 's' / 'search.md').read_text()
    assert '--loss-scale id=3 feat=0.3 resp=1 ours.id=0.9' in md
    saved = json.loads((tmp_path / 's' / 'search.json').read_text())
    assert saved['loss_scale_args'] == result['loss_scale_args']
    # the chosen arguments are accepted by the benchmark
    kb.Benchmark(str(tmp_path / 'full'), 'micro', 1, ['ours'],
                 loss_scale=kb.parse_loss_scale(
                     result['loss_scale_args'].split()))


def test_search_needs_a_trained_teacher(tmp_path):
    with pytest.raises(ValueError, match='no trained teacher'):
        kd_search.Search(str(tmp_path), str(tmp_path / 's'), 'micro', 1,
                         kd_search.parse_scales(['1']), [1.0], 1)


def test_parse_scales():
    assert kd_search.parse_scales(['0.3', '1']) == dict(
        id=[0.3, 1.0], feat=[0.3, 1.0], resp=[0.3, 1.0])
    assert kd_search.parse_scales(['id=1,3']) == dict(
        id=[1.0, 3.0], feat=[1.0], resp=[1.0])
    for bad in (['fgd=1'], ['id=x'], ['1', 'id=2']):
        with pytest.raises(ValueError, match='--scales'):
            kd_search.parse_scales(bad)
