"""mmtrack_kd.benchmark.report: results.json from records, results.md,
the targets of presets.yaml and the paired-comparisons table."""
import json

from mmtrack_kd.benchmark import report
from mmtrack_kd.benchmark.plan import BenchmarkPlan, load_benchmark_data


def method(kind, **stats):
    return dict(kind=kind, summary=dict(test={
        k: dict(mean=m, std=sd, n=3) for k, (m, sd) in stats.items()}))


def test_targets_are_checked_against_floors_and_noise():
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
            for r in report.check_targets(results)}
    assert rows['ours - student IDF1']['met'] is True  # +6 > 3.9 and > 2
    assert rows['ours - student IDF1']['target'] == \
        'ours - student IDF1 >= +3.9 and > 2 std'
    assert rows['ours - student MOTA']['met'] is False  # +1 < 2.5
    assert rows['ours - student MT%']['met'] is False  # +10 < 2 x 6
    assert rows['IDF1 gap recovered']['met'] is True  # 60 %
    assert rows['IDF1 gap recovered']['target'] == \
        'IDF1 gap recovered >= 50 %'
    assert rows['ours - fitnets IDF1']['met'] is False  # +0.5
    assert rows['ours - fitnets IDF1']['target'] == \
        'ours - fitnets IDF1 >= +1.0'
    assert rows['ours - fgd IDF1']['met'] is None  # not run
    assert rows['only_id - student IDF1']['met'] is True
    assert rows['only_feat - student IDF1']['met'] is False
    assert rows['only_resp - student IDF1']['met'] is None
    md = '\n'.join(report.target_lines(results))
    assert '3 of 15 met' in md and '**no**' in md
    assert '## Targets (test split, means over seeds)' in md


def test_targets_follow_the_data_file(monkeypatch):
    data = load_benchmark_data()
    data['targets']['gains'] = {'IDF1': 10.0}
    data['targets']['baselines'] = ['fgd']
    monkeypatch.setattr(report, 'load_benchmark_data', lambda: data)
    results = dict(methods=dict(
        student=method('student', IDF1=(50., 1.)),
        ours=method('kd', IDF1=(56., 1.))))
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
