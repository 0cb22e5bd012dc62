"""Statistics of the KD benchmark over seeds: mean/std summaries, the
teacher-student gap recovered, and paired comparisons of two methods
(paired t-test with a 95 % confidence interval, Holm's correction)."""
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .plan import METRIC_KEYS


def _finite(values: Iterable) -> List[float]:
    return [float(v) for v in values
            if v is not None and not (isinstance(v, float) and math.isnan(v))]


def summary_stats(values: Sequence) -> Dict[str, float]:
    """``dict(mean, std, n)`` of ``values``, None and nan left out; sample
    std (0 for one value; nan mean and std for none)."""
    vals = _finite(values)
    if not vals:
        return dict(mean=float('nan'), std=float('nan'), n=0)
    mean = sum(vals) / len(vals)
    var = (sum((v - mean)**2 for v in vals) / (len(vals) - 1)
           if len(vals) > 1 else 0.)
    return dict(mean=mean, std=math.sqrt(var), n=len(vals))


def aggregate(per_seed: dict, split: str) -> dict:
    """Mean/std/n over seeds of each metric (and FPS, train time, params).

    Args:
        per_seed (dict): ``{seed: dict(metrics={split: {...}},
            train_time_s, train_cpu_s, params)}``.
        split (str): ``val`` or ``test``.
    """
    keys = METRIC_KEYS + ('FPS', )
    out = {}
    for key in keys:
        vals = [r['metrics'][split].get(key) for r in per_seed.values()
                if split in r['metrics']]
        if vals:
            out[key] = summary_stats(vals)
    if per_seed:
        out['train_time_s'] = summary_stats(
            [r['train_time_s'] for r in per_seed.values()])
        out['train_cpu_s'] = summary_stats(
            [r.get('train_cpu_s') for r in per_seed.values()])
        out['params'] = summary_stats(
            [r['params'] for r in per_seed.values()])
    return out


def gap_recovered(results: dict, method: str, split: str,
                  key: str = 'IDF1') -> Optional[float]:
    """100 * (KD - student) / (teacher - student) of the seed means, or
    None when the gap is not positive or a model is missing."""
    def mean(m):
        s = results['methods'].get(m, {}).get('summary', {}).get(split, {})
        return s.get(key, {}).get('mean') if s.get(key, {}).get('n') else None
    t, s, k = mean('teacher'), mean('student'), mean(method)
    if None in (t, s, k) or not t > s:
        return None
    return 100. * (k - s) / (t - s)


def paired_test(diffs: Sequence[float],
                level: float = 0.95) -> Dict[str, float]:
    """Paired t statistics of the differences ``a - b`` over seeds.

    Args:
        diffs (Sequence[float]): one difference per seed (nan/None left
            out).
        level (float): confidence level of the interval.

    Returns:
        dict: ``n``, ``mean_diff``, ``ci95_low``, ``ci95_high`` (the t
        interval of the mean difference, ``n - 1`` degrees of freedom) and
        ``p`` (two-sided paired t-test of a zero mean). With fewer than 2
        differences the interval and ``p`` are nan; with differences that
        are all equal the interval is that value and ``p`` is 1 when it is
        0, else 0 (the limits of the t-test).
    """
    vals = _finite(diffs)
    n = len(vals)
    nan = float('nan')
    if n == 0:
        return dict(n=0, mean_diff=nan, ci95_low=nan, ci95_high=nan, p=nan)
    mean = sum(vals) / n
    if n < 2:
        return dict(n=n, mean_diff=mean, ci95_low=nan, ci95_high=nan, p=nan)
    sd = math.sqrt(sum((v - mean)**2 for v in vals) / (n - 1))
    if sd == 0:
        return dict(n=n, mean_diff=mean, ci95_low=mean, ci95_high=mean,
                    p=1.0 if mean == 0 else 0.0)
    from scipy import stats
    se = sd / math.sqrt(n)
    t_crit = float(stats.t.ppf(0.5 + level / 2, n - 1))
    t = mean / se
    p = float(2 * stats.t.sf(abs(t), n - 1))
    return dict(n=n, mean_diff=mean, ci95_low=mean - t_crit * se,
                ci95_high=mean + t_crit * se, p=p)


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values, in the input order; nan p-values
    stay nan and do not count in the family size."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    idx.sort(key=lambda i: pvalues[i])
    m = len(idx)
    out = [float('nan')] * len(pvalues)
    running = 0.
    for rank, i in enumerate(idx):
        running = max(running, min(1., (m - rank) * pvalues[i]))
        out[i] = running
    return out


def seed_values(results: dict, method: str, metric: str,
                split: str) -> Dict[str, float]:
    """``{seed: value}`` of ``metric`` on ``split`` in results.json."""
    seeds = results['methods'].get(method, {}).get('seeds', {})
    return {s: r['metrics'][split][metric] for s, r in seeds.items()
            if metric in r.get('metrics', {}).get(split, {})}


def paired_comparisons(results: dict, pairs: Sequence[Tuple[str, str]],
                       metrics: Sequence[str],
                       splits: Sequence[str]) -> List[dict]:
    """Paired comparisons of methods over the seeds both have.

    Args:
        results (dict): results.json (``methods.M.seeds.S.metrics``).
        pairs (Sequence[tuple]): ``(a, b)`` method pairs; the difference
            is ``a - b``.
        metrics (Sequence[str]): metric keys, e.g. ``IDF1``.
        splits (Sequence[str]): splits; Holm's correction runs over the
            comparisons of one split (the family).

    Returns:
        list[dict]: one dict per (split, pair, metric) with at least one
        common seed: ``a, b, metric, split, n, mean_diff, ci95_low,
        ci95_high, p, p_holm``.
    """
    out = []
    for split in splits:
        family = []
        for a, b in pairs:
            for metric in metrics:
                va = seed_values(results, a, metric, split)
                vb = seed_values(results, b, metric, split)
                common = sorted(set(va) & set(vb), key=int)
                if not common:
                    continue
                row = dict(a=a, b=b, metric=metric, split=split)
                row.update(paired_test([va[s] - vb[s] for s in common]))
                family.append(row)
        for row, p_holm in zip(family, holm([r['p'] for r in family])):
            row['p_holm'] = p_holm
        out += family
    return out
