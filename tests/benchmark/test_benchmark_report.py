"""mmtrack_kd.benchmark.report: results.json from records, results.md,
the targets of presets.yaml and the paired-comparisons table."""
import json

from mmtrack_kd.benchmark import report
from mmtrack_kd.benchmark.plan import BenchmarkPlan, load_benchmark_data


def method(kind, **values):
    """A results.json method entry from per-seed values of each metric
    (seeds 0, 1, 2, ...): ``seeds`` and the ``summary`` means."""
    n = len(next(iter(values.values())))
    seeds = {str(i): dict(metrics=dict(test={k: v[i] for k, v in
                                             values.items()}))
             for i in range(n)}
    summary = {k: dict(mean=sum(v) / n, std=0., n=n)
               for k, v in values.items()}
    return dict(kind=kind, seeds=seeds, summary=dict(test=summary))


def test_targets_need_the_floor_and_a_paired_interval_above_0():
    results = dict(methods=dict(
        teacher=method('teacher', IDF1=[60.] * 3, HOTA=[50.] * 3),
        student=method('student', IDF1=[50., 52., 48.],
                       MOTA=[40., 42., 38.], HOTA=[40., 40., 40.],
                       **{'MT%': [20., 20., 20.]}),
        # IDF1 +6 +-0.5 on every seed: floor and interval met
        ours=method('kd', IDF1=[56., 58.5, 53.5], MOTA=[41., 43., 39.],
                    HOTA=[41., 39., 43.],
                    # +10 on average but one seed -8: interval below 0
                    **{'MT%': [39., 29., 12.]}),
        fitnets=method('kd', IDF1=[55.5, 58., 53.]),
        only_id=method('kd', IDF1=[50.5, 52.6, 48.4], HOTA=[40.] * 3),
        only_feat=method('kd', IDF1=[49., 51., 47.])))
    rows = {r['target'].split(' >')[0]: r
            for r in report.check_targets(results)}
    assert rows['ours - student IDF1']['met'] is True
    assert rows['ours - student IDF1']['target'] == \
        'ours - student IDF1 >= +3.9 and 95 % CI above 0'
    assert rows['ours - student IDF1']['value'].startswith('+6.00 [')
    assert rows['ours - student MOTA']['met'] is False  # +1 < 2.5
    assert rows['ours - student MT%']['met'] is False  # interval
    assert rows['ours - student HOTA']['met'] is False  # mean 1, CI < 0
    assert rows['IDF1 gap recovered']['met'] is True  # 60 %
    assert rows['IDF1 gap recovered']['target'] == \
        'IDF1 gap recovered >= 60 %'
    assert rows['ours - fitnets IDF1']['met'] is False  # +0.5
    assert rows['ours - fgd IDF1']['met'] is None  # not run
    assert rows['only_id - student IDF1']['met'] is True
    assert rows['only_feat - student IDF1']['met'] is False
    assert rows['only_resp - student IDF1']['met'] is None
    parts = {r['target']: r['met'] for r in report.check_targets(results)
             if r['target'].startswith('ours >= ')}
    assert parts['ours >= only_id in mean IDF1'] is True
    assert parts['ours >= only_id in mean HOTA'] is True
    assert parts['ours >= only_resp in mean IDF1'] is None
    md = '\n'.join(report.target_lines(results))
    assert '## Targets (test split, means over seeds)' in md
    assert '**no**' in md
    met = sum(r['met'] is True for r in report.check_targets(results))
    assert f'{met} of {len(report.check_targets(results))} met' in md


def test_a_recorded_comparison_is_used_as_it_is():
    results = dict(methods=dict(
        student=method('student', IDF1=[50., 51.]),
        ours=method('kd', IDF1=[55., 57.])),
        comparisons=[dict(a='ours', b='student', metric='IDF1',
                          split='test', n=2, mean_diff=5.5, ci95_low=-1.0,
                          ci95_high=12.0, p=0.1, p_holm=0.2)])
    row = report.check_targets(results)[0]
    assert row['value'].startswith('+5.50 [-1.00, +12.00]')
    assert row['met'] is False


def test_targets_follow_the_data_file(monkeypatch):
    data = load_benchmark_data()
    data['targets']['gains'] = {'IDF1': 10.0}
    data['targets']['baselines'] = ['fgd']
    data['targets']['parts'] = []
    monkeypatch.setattr(report, 'load_benchmark_data', lambda: data)
    results = dict(methods=dict(
        student=method('student', IDF1=[50., 51.]),
        ours=method('kd', IDF1=[56., 57.])))
    rows = report.check_targets(results)
    assert rows[0]['target'].startswith('ours - student IDF1 >= +10.0')
    assert rows[0]['met'] is False
    # 1 gain, the gap, 1 baseline, 3 single losses
    assert len(rows) == 6


def fake_record(method, seed, idf1):
    return dict(method=method, seed=seed, metrics=dict(test=dict(
        IDF1=idf1, MOTA=idf1 - 10, HOTA=idf1 - 5, FPS=30.0)),
        train_time_s=10.0, train_cpu_s=9.0, params=1000,
        checkpoint='/c.pth', data_fingerprint='x')


def test_build_results_and_markdown(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'micro', 3, ['ours', 'fgd'])
    idf1 = dict(student=(50, 51, 49), ours=(52, 55, 50), fgd=(51, 52, 49))
    records = {m: {str(s): fake_record(m, s, v[s]) for s in range(3)}
               for m, v in idf1.items()}
    records['teacher'] = {'0': fake_record('teacher', 0, 60)}
    results = report.build_results(plan, records)
    assert list(results['methods']) == ['teacher', 'student', 'ours', 'fgd']
    ours = results['methods']['ours']
    assert ours['kind'] == 'kd' and ours['summary']['test']['IDF1'][
        'n'] == 3
    assert ours['fragments'] == ['id_response.py', 'key_feature.py',
                                 'prediction_difference.py']
    pairs = [(c['a'], c['b'], c['metric']) for c in results['comparisons']]
    assert pairs == [('ours', 'student', 'IDF1'), ('ours', 'student', 'MOTA'),
                     ('ours', 'student', 'HOTA'), ('fgd', 'student', 'IDF1'),
                     ('fgd', 'student', 'MOTA'), ('fgd', 'student', 'HOTA'),
                     ('ours', 'fgd', 'IDF1'), ('ours', 'fgd', 'MOTA'),
                     ('ours', 'fgd', 'HOTA')]
    first = results['comparisons'][0]
    assert first['split'] == 'test' and first['n'] == 3
    assert abs(first['mean_diff'] - 7 / 3) < 1e-9

    report.write_reports(str(tmp_path), results)
    saved = json.loads((tmp_path / 'results.json').read_text())
    assert saved['comparisons'][0]['p_holm'] >= saved['comparisons'][0]['p']
    md = (tmp_path / 'results.md').read_text()
    assert '## test split' in md and '## val split' not in md
    assert '| ours | 42.333 ± 2.517 | 52.333 ± 2.517 |' in md
    assert '## Paired comparisons over seeds' in md
    assert '| test | ours | student | IDF1 | 3 | +2.33 | [-1.46, +6.13] |' \
        in md
    assert md.index('## Paired comparisons') < md.index('## Targets')


def test_comparisons_table_is_left_out_without_comparisons():
    assert report.comparison_lines(dict(comparisons=[])) == []


def test_fmt_stat():
    assert report.fmt_stat(None) == 'n/a'
    assert report.fmt_stat(dict(mean=1.0, std=0.0, n=1)) == '1.000'
    assert report.fmt_stat(dict(mean=1.0, std=0.5, n=2), 1) == '1.0 ± 0.5'


def test_results_name_the_family_and_its_fragments(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'micro', 1, ['ours'],
                         family='bytetrack')
    records = {m: {'0': fake_record(m, 0, v)} for m, v in
               dict(teacher=60, student=50, ours=52).items()}
    results = report.build_results(plan, records)
    assert results['family'] == 'bytetrack'
    ours = results['methods']['ours']
    assert ours['fragments'] == ['key_feature.py',
                                 'prediction_difference.py']
    assert 'no ID head' in ours['description']
    assert report.markdown(results).startswith(
        '# KD benchmark (bytetrack family, micro preset)')


def test_results_keep_the_seeds_per_method(tmp_path):
    """With ``seeds_of`` the results list every seed of the run and the
    counts per method; ``fgd`` is compared with the student over the two
    seeds it has."""
    plan = BenchmarkPlan(str(tmp_path), 'micro', 2, ['ours', 'fgd'],
                         seeds_of=dict(student=3, ours=3))
    idf1 = dict(student=(50, 51, 49), ours=(52, 55, 50), fgd=(51, 52))
    records = {m: {str(s): fake_record(m, s, v[s]) for s in range(len(v))}
               for m, v in idf1.items()}
    records['teacher'] = {'0': fake_record('teacher', 0, 60)}
    results = report.build_results(plan, records)
    assert results['seeds'] == [0, 1, 2]
    assert results['seeds_of'] == dict(student=3, ours=3)
    n = {(c['a'], c['b']): c['n'] for c in results['comparisons']
         if c['split'] == 'test' and c['metric'] == 'IDF1'}
    assert n[('ours', 'student')] == 3 and n[('fgd', 'student')] == 2
    assert n[('ours', 'fgd')] == 2
    md = report.markdown(results)
    assert "seeds [0, 1, 2] (per method where it differs: {'student': 3, " \
        "'ours': 3})" in md
