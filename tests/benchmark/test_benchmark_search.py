"""mmtrack_kd.benchmark.search: the val-split loss-weight search picks the
best factor of each loss, then the best combination, from val only."""
import glob
import json
import math
import os.path as osp
import re

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


# ----------------------------------------------------- gradient-ratio search
# the ratio each fragment does best with, in the fake trainings below
RATIO_TARGET = dict(id=2.0, feat=5.0, resp=20.0, fitnets=1.0, pkd=3.0)
# each baseline's grid: as many candidates as ours is tuned on, 3 + 3 + 2
# of its losses alone and 2 of --combine (1 and 0.5)
RATIOS = ['resp=10,20,40', 'feat=1,2,5', 'id=2,4',
          '0.3,0.5,1,2,3,5,10,20,30,40']
GRID = [0.3, 0.5, 1., 2., 3., 5., 10., 20., 30., 40.]


def make_reuse(tmp_path, family=None, seeds=2):
    """A run folder with a (fake) trained teacher and plain students."""
    reuse = tmp_path / 'bench'
    ref = Benchmark(str(reuse), 'micro', 1, [])
    for method, seed in [('teacher', 0)] + [('student', s)
                                            for s in range(seeds)]:
        records.json_dump(dict(metrics=dict(test=dict(IDF1=1.0)),
                               data_fingerprint='x'),
                          ref.record_path(method, seed))
    if family is not None:
        records.json_dump(dict(family=family), str(reuse / 'family.json'))
    return str(reuse)


def fake_ratio_execute(tasks, jobs):
    """Records whose val IDF1 peaks at RATIO_TARGET (ours: at
    RATIO_TARGET x 0.5) and whose test metrics would pick otherwise."""
    for bench, method, seed, eval_only in tasks:
        if eval_only:
            rec = bench.load_record(method, seed)
            rec['metrics']['val'] = dict(IDF1=40.0, MOTA=30.0, HOTA=35.0)
        else:
            goal = 0.5 if method.startswith('ours') else 1.0
            miss = sum(abs(math.log(bench.ratio_of(method, k) /
                                    (RATIO_TARGET[k] * goal)))
                       for k in bench.fragments(method))
            rec = dict(metrics=dict(
                val=dict(IDF1=50.0 - miss, MOTA=40.0, HOTA=45.0),
                test=dict(IDF1=50.0 + miss, MOTA=40.0, HOTA=45.0)))
        records.json_dump(rec, bench.record_path(method, seed))
    return []


def ratio_search(tmp_path, ratios=RATIOS, **kwargs):
    kwargs.setdefault('baselines', ['fitnets', 'pkd'])
    return search.RatioSearch(
        kwargs.pop('reuse', None) or make_reuse(tmp_path),
        str(tmp_path / 's'), 'micro', kwargs.pop('seeds', 2),
        search.parse_ratios(ratios), kwargs.pop('combine', [1.0, 0.5]),
        jobs=2, **kwargs)


def test_parse_ratios():
    assert search.parse_ratios(['resp=10,20', '1,2', '5']) == {
        'resp': [10.0, 20.0], '*': [1.0, 2.0, 5.0]}
    # a baseline's method name stands for its fragment
    assert search.parse_ratios(['liang_agkd=1,2']) == {'agkd': [1.0, 2.0]}
    for bad, match in ((['nope=1'], 'unknown loss'), (['id=x'], 'expected'),
                       (['id=1', 'id=2'], 'given twice'),
                       (['id='], 'no ratio')):
        with pytest.raises(ValueError, match=match):
            search.parse_ratios(bad)


def test_ratio_search_budget_is_equal_and_checked(tmp_path):
    s = ratio_search(tmp_path)
    # our losses: 3, 3 and 2 ratios; each baseline the plain grid of 10
    assert s.grids == dict(resp=[10., 20., 40.], feat=[1., 2., 5.],
                           id=[2., 4.], fitnets=GRID, pkd=GRID)
    budget = s.budget()
    assert budget == dict(
        only_id=dict(candidates=2, trainings=4),
        only_feat=dict(candidates=3, trainings=6),
        only_resp=dict(candidates=3, trainings=6),
        fitnets=dict(candidates=10, trainings=20),
        pkd=dict(candidates=10, trainings=20),
        ours=dict(candidates=2, trainings=4, builds_on=16))
    # the equal budget: a baseline's val trainings are all of ours's
    assert budget['pkd']['trainings'] == \
        budget['ours']['trainings'] + budget['ours']['builds_on']
    singles = s.singles()
    assert len(singles) == 2 + 3 + 3 + 10 + 10
    names = sorted(osp.basename(b.out) for b in singles.values())
    assert 'fitnets_r10' in names and 'only_id_r4' in names
    # a baseline with fewer (or more) candidates than ours is tuned on;
    # the largest grid of our losses alone (the old rule) is not enough
    with pytest.raises(ValueError, match=r'equal budget.*\(10: .*'
                       r'--combine 2\).*fitnets'):
        ratio_search(tmp_path, RATIOS + ['fitnets=1,3,10'])
    with pytest.raises(ValueError, match='equal budget.*pkd'):
        ratio_search(tmp_path, RATIOS + ['pkd=' + ','.join(
            map(str, range(1, 12)))])
    # fewer --combine factors: a budget of 9
    ratio_search(tmp_path, RATIOS[:3] + ['1,2,3,4,5,6,7,8,9'], combine=[1])
    # a searched fragment without a grid; a grid of nothing searched
    with pytest.raises(ValueError, match='no grid for fitnets'):
        ratio_search(tmp_path, ['resp=1', 'feat=1', 'id=1'])
    with pytest.raises(ValueError, match=r"\['cwd'\] not searched"):
        ratio_search(tmp_path, RATIOS + ['cwd=1,2,3'])
    with pytest.raises(ValueError, match='must be > 0'):
        ratio_search(tmp_path, ['resp=0,1', 'feat=1', 'id=1', '1,2'])
    with pytest.raises(ValueError, match='--baselines: unknown'):
        ratio_search(tmp_path, baselines=['only_resp'])
    with pytest.raises(ValueError, match='--kd-decay: unknown'):
        ratio_search(tmp_path, kd_decay={'nope': 0.0})
    # every seed's plain student is reused, not trained per candidate
    with pytest.raises(ValueError, match=r'no plain student of seed\(s\) '
                       r'\[2\]'):
        ratio_search(tmp_path, seeds=3)


def test_ratio_search_follows_the_family(tmp_path):
    # bytetrack's ours has no ID loss: no only_id, and no id grid
    s = ratio_search(tmp_path, ['resp=10,20', 'feat=1,2', '1,2,3,5,10,20'],
                     reuse=make_reuse(tmp_path, 'bytetrack'),
                     family='bytetrack', baselines=['fitnets'])
    assert s.ours == ('feat', 'resp')
    assert set(s.budget()) == {'only_feat', 'only_resp', 'fitnets', 'ours'}
    with pytest.raises(ValueError, match=r"\['id'\] not searched"):
        ratio_search(tmp_path, RATIOS,
                     reuse=make_reuse(tmp_path, 'bytetrack'),
                     family='bytetrack')
    with pytest.raises(ValueError, match='objectness does not apply'):
        ratio_search(tmp_path, reuse=make_reuse(tmp_path, 'fairmot'),
                     family='fairmot', baselines=['objectness'])
    # the reused folder must be of the family searched
    with pytest.raises(ValueError, match='family bytetrack, not --family '
                       'cstrack'):
        ratio_search(tmp_path, reuse=make_reuse(tmp_path, 'bytetrack'))


def test_ratio_search_picks_best_val_ratios(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, 'execute', fake_ratio_execute)
    monkeypatch.setattr(Benchmark, 'prepare', lambda self, tasks: None)
    monkeypatch.setattr(Benchmark, 'summarize', lambda self: {})
    s = ratio_search(tmp_path, kd_decay=dict(feat=0.0),
                     loss_options=dict(feat=dict(normalize=True)))
    result = s.run()
    chosen = result['chosen']
    assert chosen == {
        'only_id.id': 2.0, 'only_feat.feat': 5.0, 'only_resp.resp': 20.0,
        'fitnets.fitnets': 1.0, 'pkd.pkd': 3.0,
        'ours.id': 1.0, 'ours.feat': 2.5, 'ours.resp': 10.0}
    assert result['ours_factor'] == 0.5
    assert result['student']['IDF1'] == 40.0
    assert result['best']['pkd']['IDF1'] == 50.0
    assert result['budget']['fitnets']['trainings'] == 20
    assert result['budget']['only_resp']['trainings'] == 6
    # the candidates were balanced, decayed and optioned as asked
    cand = Benchmark(str(tmp_path / 's' / 'pkd_r3'), 'micro', 2, ['pkd'],
                     grad_ratio={'pkd.pkd': 3.0}, kd_decay=dict(feat=0.0),
                     loss_options=dict(feat=dict(normalize=True)))
    assert cand.load_record('pkd', 1)['metrics']['val']['IDF1'] == 50.0
    md = (tmp_path / 's' / 'search.md').read_text()
    assert '| pkd | ratio 3 | 50.00 | 40.00 | 45.00 | 20 |' in md
    assert 'Baselines only' not in md
    assert '| ours | x0.5 on the best ratios | 50.00 | 40.00 | 45.00 | ' \
        '4 (+16) |' in md
    assert '| fitnets ratio 10 |' in md
    saved = json.loads((tmp_path / 's' / 'search.json').read_text())
    assert saved['grad_ratio_args'] == result['grad_ratio_args']
    args = result['benchmark_args']
    assert args.startswith('--family cstrack --loss-option '
                           'feat.normalize=True --kd-decay feat=0 '
                           '--grad-ratio only_id.id=2 ')
    # the chosen arguments give kd_benchmark these ratios, method by method
    ratio = parse_loss_scale(result['grad_ratio_args'].split(),
                             '--grad-ratio')
    full = Benchmark(str(tmp_path / 'full'), 'micro', 1,
                     ['ours', 'ours_no_id', 'only_resp', 'fitnets', 'pkd'],
                     grad_ratio=ratio)
    assert full.ratio_of('only_resp', 'resp') == 20.0
    assert full.ratio_of('ours', 'resp') == 10.0
    assert full.ratio_of('ours_no_id', 'feat') == 2.5
    assert full.ratio_of('fitnets', 'fitnets') == 1.0
    assert full.ratio_of('pkd', 'pkd') == 3.0


def test_ratio_search_baselines_only(tmp_path, monkeypatch, capsys):
    """--baselines-only trains the baselines alone, on the budget that
    the grids of our losses and --combine give."""
    monkeypatch.setattr(runner, 'execute', fake_ratio_execute)
    monkeypatch.setattr(Benchmark, 'prepare', lambda self, tasks: None)
    monkeypatch.setattr(Benchmark, 'summarize', lambda self: {})
    with pytest.raises(ValueError, match='--baselines-only needs '
                       '--baselines'):
        ratio_search(tmp_path, baselines=[], baselines_only=True)
    with pytest.raises(ValueError, match='equal budget.*pkd'):
        ratio_search(tmp_path, RATIOS + ['pkd=1,3,10'], baselines_only=True)
    s = ratio_search(tmp_path, baselines_only=True)
    assert {m for m, _, _ in s.singles()} == {'fitnets', 'pkd'}
    assert 'stage 2' not in s.describe()
    assert 'its own search: not trained here' in s.describe()
    result = s.run()
    assert result['baselines_only'] is True
    assert result['chosen'] == {'fitnets.fitnets': 1.0, 'pkd.pkd': 3.0}
    assert set(result['best']) == {'fitnets', 'pkd'}
    assert 'ours_factor' not in result
    assert result['budget']['pkd']['trainings'] == 20
    assert result['budget']['ours']['searched_here'] is False
    assert result['grad_ratio_args'] == 'fitnets.fitnets=1 pkd.pkd=3'
    # nothing of ours was trained
    assert not glob.glob(str(tmp_path / 's' / 'only_*')) and \
        not glob.glob(str(tmp_path / 's' / 'ours_*'))
    md = (tmp_path / 's' / 'search.md').read_text()
    assert 'gives `ours` 20 val trainings (16 of the single losses + 4 ' \
        'of `ours`), as many as each baseline above' in md


def test_ratio_search_of_an_ablation_as_ours(tmp_path, monkeypatch):
    """--ours ours_no_id: the ID loss is neither searched alone nor in
    the combined stage; the budget and the chosen ours.LOSS ratios are
    those of the two other losses, and kd_benchmark gives them to
    ours_no_id."""
    monkeypatch.setattr(runner, 'execute', fake_ratio_execute)
    monkeypatch.setattr(Benchmark, 'prepare', lambda self, tasks: None)
    monkeypatch.setattr(Benchmark, 'summarize', lambda self: {})
    ratios = ['resp=10,20,40', 'feat=1,2,5', '1,2,3,5,10,20,30,40']
    with pytest.raises(ValueError, match=r"\['id'\] not searched"):
        ratio_search(tmp_path, RATIOS, ours_method='ours_no_id')
    for bad in ('pkd', 'only_resp', 'ours_no_nothing'):
        with pytest.raises(ValueError, match='--ours: expected ours or '
                           'one of its ablations'):
            ratio_search(tmp_path, ratios, ours_method=bad)
    s = ratio_search(tmp_path, ratios, ours_method='ours_no_id')
    assert s.ours == ('feat', 'resp')
    assert s.budget()['ours'] == dict(candidates=2, trainings=4,
                                      builds_on=12)
    assert 'only_id' not in s.budget()
    plan = s.describe()
    assert 'ours = ours_no_id' in plan
    assert 'ours_no_id_ratio_g0.5' in plan
    result = s.run()
    assert result['ours_method'] == 'ours_no_id'
    assert result['chosen'] == {
        'only_feat.feat': 5.0, 'only_resp.resp': 20.0,
        'fitnets.fitnets': 1.0, 'pkd.pkd': 3.0,
        'ours.feat': 2.5, 'ours.resp': 10.0}
    # the combined candidates trained ours_no_id, not ours
    cand = tmp_path / 's' / 'ours_no_id_ratio_g0.5'
    assert glob.glob(str(cand / 'records' / 'ours_no_id__seed*.json'))
    assert not glob.glob(str(cand / 'records' / 'ours__seed*.json'))
    md = (tmp_path / 's' / 'search.md').read_text()
    assert '| ours (ours_no_id) | x0.5 on the best ratios | 50.00 |' in md
    assert '| ours_no_id x0.5 | 50.00 |' in md
    ratio = parse_loss_scale(result['grad_ratio_args'].split(),
                             '--grad-ratio')
    full = Benchmark(str(tmp_path / 'full'), 'micro', 1, ['ours_no_id'],
                     grad_ratio=ratio)
    assert full.ratio_of('ours_no_id', 'feat') == 2.5
    assert full.ratio_of('ours_no_id', 'resp') == 10.0
    # where ours itself has no ID loss, ours_no_id is refused
    with pytest.raises(ValueError, match='ours_no_id does not apply'):
        ratio_search(tmp_path, ['resp=10', 'feat=1', '1,2,3'],
                     reuse=make_reuse(tmp_path, 'bytetrack'),
                     family='bytetrack', baselines=['fitnets'],
                     ours_method='ours_no_id')


def test_ratio_search_plans_configs_without_training(tmp_path):
    """The planned candidates write KD configs balanced at their ratio
    (what a training would start from); nothing is trained."""
    from mmtrack_kd.benchmark import configs
    from mmtrack_kd.utils.config import load_config
    s = ratio_search(tmp_path, kd_decay=dict(resp=0.5))
    for (method, key, r), bench in s.singles().items():
        cfg = load_config(configs.kd_cfg(bench, method, 0, 'teacher.py',
                                         'teacher.pth'))
        balance = cfg.model.loss_balance
        assert set(balance['ratios'].values()) == {r}, (method, balance)
        assert len(balance['ratios']) == len(cfg.model.distill_cfgs[0]
                                             ['distill_losses'])
        assert ('decay' in balance) == (key == 'resp'), (method, balance)
    ours = s.combined(dict(id=2.0, feat=5.0, resp=20.0))[0.5]
    cfg = load_config(configs.kd_cfg(ours, 'ours', 0, 'teacher.py',
                                     'teacher.pth'))
    assert sorted(cfg.model.loss_balance['ratios'].values()) == [
        1.0, 2.5, 10.0]
    assert not any(osp.isdir(osp.join(b.out, 'records'))
                   for b in s.singles().values())


def test_ratio_search_scores_the_moving_average_when_asked(
        tmp_path, monkeypatch):
    """--ema reaches every candidate (an EMAHook in its KD config), the
    search header and the kd_benchmark arguments it prints; a bad
    momentum is refused naming --ema."""
    from mmtrack_kd.benchmark import configs
    from mmtrack_kd.utils.config import load_config
    with pytest.raises(ValueError, match='--ema'):
        ratio_search(tmp_path, ema=1.5)
    s = ratio_search(tmp_path, ema=0.01)
    for (method, _, _), bench in s.singles().items():
        assert bench.ema == 0.01
        cfg = load_config(configs.kd_cfg(bench, method, 0, 'teacher.py',
                                         'teacher.pth'))
        ema = [h for h in cfg.custom_hooks if h['type'] == 'EMAHook']
        assert [h['momentum'] for h in ema] == [0.01], method
    monkeypatch.setattr(runner, 'execute', fake_ratio_execute)
    monkeypatch.setattr(Benchmark, 'prepare', lambda self, tasks: None)
    monkeypatch.setattr(Benchmark, 'summarize', lambda self: {})
    result = s.run()
    assert result['ema'] == 0.01
    assert ' --ema 0.01 ' in result['benchmark_args']
    # without it, nothing of the kind
    plain = ratio_search(tmp_path / 'plain')
    assert plain.ema is None
    assert plain.header()['ema'] is None


def test_kd_search_cli_dry_run_and_bad_arguments(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'kd_search', osp.join(osp.dirname(osp.dirname(osp.dirname(
            osp.abspath(__file__)))), 'tools', 'benchmark', 'kd_search.py'))
    kd_search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kd_search)
    reuse = make_reuse(tmp_path)
    base = ['--reuse', reuse, '--out', str(tmp_path / 's'), '--preset',
            'micro', '--seeds', '2']
    assert kd_search.main(base + ['--grad-ratios', '--ratios'] + RATIOS +
                          ['--baselines', 'fitnets', 'pkd',
                           '--dry-run']) == 0
    out = capsys.readouterr().out
    assert re.search(r'^\s+fitnets\s+20 \(10 candidate\(s\)\)$', out,
                     re.M), out
    assert re.search(r'^\s+only_id\s+4 \(2 candidate\(s\)\)$', out,
                     re.M), out
    assert re.search(r'^\s+ours\s+4 \(2 candidate\(s\)\) \+ the 16 ', out,
                     re.M), out
    minutes = float(re.search(r'estimated time: ([\d.]+) min',
                              out).group(1))
    assert minutes > 0
    # the reused plain models lack val: each of the 30 candidates
    # evaluates the teacher and the two students again
    assert '3 plain record(s) of' in out and '90 evaluations in all' in out
    for path in glob.glob(osp.join(reuse, 'records', '*.json')):
        rec = json.load(open(path))
        rec['metrics']['val'] = dict(IDF1=1.0)
        records.json_dump(rec, path)
    assert kd_search.main(base + ['--grad-ratios', '--ratios'] + RATIOS +
                          ['--baselines', 'fitnets', 'pkd',
                           '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'plain record(s)' not in out
    assert float(re.search(r'estimated time: ([\d.]+) min',
                           out).group(1)) < minutes
    assert not (tmp_path / 's').exists()
    for extra, match in (
            (['--kd-decay', 'feat=0'], '--kd-decay needs --grad-ratios'),
            (['--baselines', 'pkd'], '--baselines needs --grad-ratios'),
            (['--baselines-only'], '--baselines-only needs --grad-ratios'),
            (['--grad-ratios', '--ratios'] + RATIOS + ['--baselines-only'],
             '--baselines-only needs --baselines'),
            (['--grad-ratios'], '--grad-ratios needs --ratios'),
            (['--grad-ratios', '--ratios', '1', '--scales', '1'],
             '--scales is the loss-weight search'),
            (['--grad-ratios', '--ratios', '1', '--baselines', 'nope'],
             '--baselines: unknown'),
            (['--ours', 'ours_no_id'], '--ours needs --grad-ratios'),
            (['--grad-ratios', '--ratios', '1', '--ours', 'pkd'],
             '--ours: expected ours or one of its ablations')):
        assert kd_search.main(base + extra) == 2, extra
        assert match in capsys.readouterr().err, extra
