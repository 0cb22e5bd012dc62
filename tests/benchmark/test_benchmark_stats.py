"""mmtrack_kd.benchmark.stats against values computed by hand."""
import math

import pytest

from mmtrack_kd.benchmark import stats


def test_summary_stats_leaves_out_missing_values():
    s = stats.summary_stats([0.8, 0.6, None, float('nan')])
    assert s['n'] == 2 and s['mean'] == pytest.approx(0.7)
    assert s['std'] == pytest.approx(math.sqrt(0.02))  # sample std
    assert stats.summary_stats([3.0]) == dict(mean=3.0, std=0.0, n=1)
    empty = stats.summary_stats([])
    assert empty['n'] == 0 and math.isnan(empty['mean'])


def test_aggregate_over_seeds():
    per_seed = {
        '0': dict(metrics=dict(test=dict(IDF1=50.0, FPS=10.0)),
                  train_time_s=10.0, train_cpu_s=8.0, params=100),
        '1': dict(metrics=dict(test=dict(IDF1=54.0)), train_time_s=14.0,
                  params=100),
    }
    out = stats.aggregate(per_seed, 'test')
    assert out['IDF1'] == dict(mean=52.0, std=pytest.approx(math.sqrt(8)),
                               n=2)
    assert out['FPS']['n'] == 1
    assert out['train_cpu_s']['n'] == 1  # seed 1 has none
    assert out['params'] == dict(mean=100.0, std=0.0, n=2)
    assert 'IDF1' not in stats.aggregate(per_seed, 'val')


def test_gap_recovered():
    def summ(idf1s):
        return dict(summary=dict(test=dict(
            IDF1=stats.summary_stats(idf1s))))
    results = dict(methods=dict(teacher=summ([0.8, 0.6]),
                                student=summ([0.4, 0.4]),
                                ours=summ([0.5, 0.5]),
                                bad=summ([])))
    assert stats.gap_recovered(results, 'ours', 'test') == \
        pytest.approx(100 * 0.1 / 0.3)
    assert stats.gap_recovered(results, 'bad', 'test') is None
    results['methods']['teacher'] = summ([0.3])  # no positive gap
    assert stats.gap_recovered(results, 'ours', 'test') is None


def test_paired_test_three_seeds_by_hand():
    """a = (52, 55, 50), b = (50, 51, 49): d = (2, 4, 1), mean 7/3, sample
    variance 7/3, se = sqrt(7/9), t = sqrt(7) with 2 degrees of freedom.
    For 2 degrees of freedom the t CDF is 1/2 + t / (2 sqrt(2 + t^2)), so
    p = 1 - sqrt(7)/3 and the 97.5 % quantile solves
    t / sqrt(2 + t^2) = 0.95: t = sqrt(2 * 0.9025 / 0.0975)."""
    r = stats.paired_test([52 - 50, 55 - 51, 50 - 49])
    assert r['n'] == 3
    assert r['mean_diff'] == pytest.approx(7 / 3)
    assert r['p'] == pytest.approx(1 - math.sqrt(7) / 3, rel=1e-9)
    t_crit = math.sqrt(2 * 0.9025 / 0.0975)
    assert t_crit == pytest.approx(4.302653, abs=1e-6)
    se = math.sqrt(7 / 9)
    assert r['ci95_low'] == pytest.approx(7 / 3 - t_crit * se, rel=1e-9)
    assert r['ci95_high'] == pytest.approx(7 / 3 + t_crit * se, rel=1e-9)
    # the sign of the differences mirrors the interval, not p
    m = stats.paired_test([-2, -4, -1])
    assert m['p'] == pytest.approx(r['p'])
    assert m['ci95_low'] == pytest.approx(-r['ci95_high'])


def test_paired_test_agrees_with_scipy():
    scipy_stats = pytest.importorskip('scipy.stats')
    a, b = [61.0, 58.5, 60.2, 63.1], [57.0, 58.0, 55.9, 60.0]
    r = stats.paired_test([x - y for x, y in zip(a, b)])
    assert r['p'] == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)


def test_paired_test_degenerate_cases():
    none = stats.paired_test([None, float('nan')])
    assert none['n'] == 0 and math.isnan(none['mean_diff'])
    one = stats.paired_test([1.5])
    assert one['n'] == 1 and one['mean_diff'] == 1.5
    assert math.isnan(one['p']) and math.isnan(one['ci95_low'])
    same = stats.paired_test([0.0, 0.0, 0.0])
    assert same['p'] == 1.0 and same['ci95_low'] == same['ci95_high'] == 0
    shift = stats.paired_test([2.0, 2.0])
    assert shift['p'] == 0.0 and shift['ci95_low'] == 2.0


def test_holm_by_hand():
    # sorted: 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06
    out = stats.holm([0.01, 0.04, 0.03, float('nan')])
    assert out[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(out[3])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


def test_paired_comparisons_use_common_seeds_and_split_families():
    def method(**splits):
        seeds = {}
        for split, values in splits.items():
            for seed, v in values.items():
                seeds.setdefault(seed, dict(metrics={}))['metrics'][
                    split] = dict(IDF1=v)
        return dict(seeds=seeds)

    results = dict(methods=dict(
        student=method(test={'0': 50, '1': 51, '2': 49}, val={'0': 40}),
        ours=method(test={'0': 52, '1': 55, '2': 50}, val={'0': 41}),
        fgd=method(test={'0': 51, '1': 53, '5': 70})))
    rows = stats.paired_comparisons(
        results, [('ours', 'student'), ('fgd', 'student'), ('ours', 'fgd')],
        ['IDF1', 'MOTA'], ['test', 'val'])
    keys = [(r['split'], r['a'], r['b'], r['metric']) for r in rows]
    # MOTA is in no record; fgd has no val; seeds 5 has no partner
    assert keys == [('test', 'ours', 'student', 'IDF1'),
                    ('test', 'fgd', 'student', 'IDF1'),
                    ('test', 'ours', 'fgd', 'IDF1'),
                    ('val', 'ours', 'student', 'IDF1')]
    assert list(rows[0]) == ['a', 'b', 'metric', 'split', 'n', 'mean_diff',
                             'ci95_low', 'ci95_high', 'p', 'p_holm']
    assert rows[0]['n'] == 3 and rows[0]['mean_diff'] == pytest.approx(7 / 3)
    assert rows[1]['n'] == 2 and rows[1]['mean_diff'] == pytest.approx(1.5)
    # Holm within the test family of three
    ps = [r['p'] for r in rows[:3]]
    assert [r['p_holm'] for r in rows[:3]] == pytest.approx(
        stats.holm(ps))
    assert rows[3]['n'] == 1 and math.isnan(rows[3]['p_holm'])
