"""The reports of the KD benchmark: ``results.json`` (built from the
records), ``results.md`` (tables per split, the paired comparisons and the
targets of ``presets.yaml``)."""
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Tuple

from .plan import (
    FRAGMENTS,
    METHODS,
    METRIC_KEYS,
    SPLITS,
    BenchmarkPlan,
    load_benchmark_data,
)
from .records import json_dump
from .stats import aggregate, gap_recovered, paired_comparisons


def comparison_pairs(results: dict) -> List[Tuple[str, str]]:
    """The comparison family of ``presets.yaml``: every KD method in
    ``results`` against the ``reference`` (the student without KD), then
    ``ours`` against each baseline of the targets."""
    spec = load_benchmark_data()['comparisons']
    ref = spec['reference']
    methods = results['methods']
    pairs = [(m, ref) for m, r in methods.items()
             if r['kind'] == 'kd' and ref in methods]
    if 'ours' in methods:
        pairs += [('ours', b) for b in
                  load_benchmark_data()['targets']['baselines']
                  if b in methods]
    return pairs


def build_results(plan: BenchmarkPlan,
                  records: Dict[str, Dict[str, dict]],
                  stale: Optional[List[dict]] = None) -> dict:
    """results.json of the plan from its records
    (:func:`mmtrack_kd.benchmark.records.collect_records`).

    Args:
        plan (BenchmarkPlan): the run folder.
        records (dict): ``{method: {str(seed): record}}``.
        stale (list[dict], optional): the records kept with
            ``--allow-stale`` (``record``, ``reasons``), listed in
            ``stale``.
    """
    prints = {r.get('data_fingerprint') for recs in records.values()
              for r in recs.values()}
    if len(prints) > 1:
        print(f'WARNING: the records were made on {len(prints)} '
              f'different versions of {plan.data}; they are not '
              'comparable (see data_fingerprint in records/)', flush=True)
    preset = plan.preset
    results = dict(
        family=plan.family.name,
        preset=plan.preset_name,
        data=plan.data,
        # every seed of the run (a method of --seeds-of may have more)
        seeds=sorted({s for m, s in plan.runs() if m != 'teacher'}),
        seeds_of=dict(plan.seed_counts),
        sizes=dict(teacher=preset['teacher'],
                   student=preset['student'],
                   epochs=preset['epochs'],
                   teacher_epochs=preset['teacher_epochs'],
                   batch_size=preset['batch_size'],
                   teacher_batch_size=plan.batch_size('teacher'),
                   img_scale=preset['img_scale']),
        torch_threads=plan.threads,
        jobs=plan.jobs,
        loss_scale=plan.loss_scale,
        loss_options=plan.loss_options,
        grad_ratio=plan.grad_ratio,
        kd_decay=plan.kd_decay,
        balance_interval=plan.balance_interval,
        project=plan.project,
        ema=plan.ema,
        splits=plan.splits,
        data_fingerprints=sorted(p or '' for p in prints),
        tune_thresholds=plan.tune_thresholds,
        stale=[dict(record=x['record'], method=x.get('method'),
                    seed=x.get('seed'), reasons=list(x['reasons']))
               for x in stale or []],
        methods={})
    for method in plan.methods:
        per_seed = {}
        for seed, rec in records.get(method, {}).items():
            per_seed[seed] = dict(
                metrics=rec['metrics'],
                train_time_s=rec['train_time_s'],
                train_cpu_s=rec.get('train_cpu_s'),
                params=rec['params'],
                checkpoint=rec['checkpoint'],
                thresholds=rec.get('thresholds'),
                config_hash=rec.get('config_hash'),
                code_version=(rec.get('code_version') or {}).get('hash'),
                data_fingerprint=rec.get('data_fingerprint'))
        results['methods'][method] = dict(
            kind=METHODS[method][0],
            description=plan.description(method),
            fragments=[FRAGMENTS[k][0] for k in plan.fragments(method)],
            seeds=per_seed,
            summary={split: aggregate(per_seed, split)
                     for split in SPLITS})
    results['comparisons'] = paired_comparisons(
        results, comparison_pairs(results),
        load_benchmark_data()['comparisons']['metrics'], SPLITS)
    return results


def fmt_stat(stat: Optional[dict], digits: int = 3) -> str:
    """``mean ± std`` (``mean`` for one seed, ``n/a`` for none)."""
    if not stat or stat['n'] == 0:
        return 'n/a'
    if stat['n'] == 1:
        return f'{stat["mean"]:.{digits}f}'
    return f'{stat["mean"]:.{digits}f} ± {stat["std"]:.{digits}f}'


def _paired(results: dict, a: str, b: str, metric: str,
            split: str) -> Optional[dict]:
    """The paired comparison ``a - b`` of ``metric`` over the seeds both
    have: the entry of ``results['comparisons']`` when there is one (with
    its Holm p), else computed here; None when a model is missing."""
    for c in results.get('comparisons', []):
        if (c['a'], c['b'], c['metric'], c['split']) == (a, b, metric,
                                                          split):
            return c
    if a not in results['methods'] or b not in results['methods']:
        return None
    out = paired_comparisons(results, [(a, b)], [metric], [split])
    return out[0] if out and out[0]['n'] else None


def _ci(c: dict) -> str:
    if math.isnan(c['ci95_low']):
        return f'{c["mean_diff"]:+.2f} (n = {c["n"]}, no interval)'
    return (f'{c["mean_diff"]:+.2f} [{c["ci95_low"]:+.2f}, '
            f'{c["ci95_high"]:+.2f}] (n = {c["n"]})')


def check_targets(results: dict,
                  split: Optional[str] = None) -> List[dict]:
    """Each target of ``presets.yaml`` as ``dict(target, value, met)``;
    ``met`` is None when a model it needs is missing.

    A lead of one model over another (ours over the student, over each
    baseline, each of our losses over the student) counts as met only when
    the mean paired difference over seeds reaches its floor and the lower
    end of its 95 % t interval is above 0. ``ours`` must also be at least
    as good in mean IDF1 and HOTA as each part of it (each loss alone,
    each leave-one-out ablation) that was run.

    Args:
        results (dict): results.json (``methods``, ``comparisons``).
        split (str, optional): default the targets' ``split``.
    """
    spec = load_benchmark_data()['targets']
    split = split or spec['split']

    def lead(a, b, metric, floor, strict=False):
        sign = '>' if strict else '>='
        target = (f'{a} - {b} {metric} {sign} {floor:+.1f} and 95 % CI '
                  'above 0')
        c = _paired(results, a, b, metric, split)
        if c is None:
            return dict(target=target, value='n/a', met=None)
        reach = c['mean_diff'] > floor if strict else \
            c['mean_diff'] >= floor
        return dict(target=target, value=_ci(c),
                    met=bool(reach and c['ci95_low'] > 0))

    out = [lead('ours', 'student', key, floor)
           for key, floor in spec['gains'].items()]
    gap = gap_recovered(results, 'ours', split)
    pct = spec['gap_recovered_pct']
    out.append(dict(target=f'IDF1 gap recovered >= {pct:g} %',
                    value='n/a (teacher not ahead)' if gap is None else
                    f'{gap:.0f} %',
                    met=None if gap is None else gap >= pct))
    out += [lead('ours', b, 'IDF1', spec['baseline_lead'])
            for b in spec['baselines']]
    out += [lead(m, 'student', 'IDF1', spec['single_loss_lead'],
                 strict=True) for m in spec['single_losses']]
    for part in spec.get('parts', []):
        for metric in ('IDF1', 'HOTA'):
            target = f'ours >= {part} in mean {metric}'
            c = _paired(results, 'ours', part, metric, split)
            out.append(dict(target=target,
                            value='n/a' if c is None else _ci(c),
                            met=None if c is None else
                            c['mean_diff'] >= 0))
    return out


def target_lines(results: dict) -> List[str]:
    """The Targets section of results.md."""
    split = load_benchmark_data()['targets']['split']
    rows = check_targets(results, split)
    met = sum(r['met'] is True for r in rows)
    lines = [f'## Targets ({split} split, means over seeds): {met} of '
             f'{len(rows)} met', '', '| target | value | met |',
             '|---|---|---|']
    for r in rows:
        flag = {True: 'yes', False: '**no**', None: 'n/a'}[r['met']]
        lines.append(f'| {r["target"]} | {r["value"]} | {flag} |')
    return lines + ['']


def _num(x: float, spec: str) -> str:
    return 'n/a' if x is None or math.isnan(x) else format(x, spec)


def comparison_lines(results: dict) -> List[str]:
    """The paired-comparisons section of results.md (empty without
    comparisons)."""
    rows = results.get('comparisons') or []
    if not rows:
        return []
    lines = ['## Paired comparisons over seeds', '',
             'Differences a - b of the same seeds: mean, 95 % t interval, '
             'paired t-test p and Holm-corrected p (family: the '
             'comparisons of one split).', '',
             '| split | a | b | metric | n | mean diff | 95 % CI | p | '
             'p (Holm) |', '|' + '---|' * 9]
    for r in rows:
        ci = ('n/a' if math.isnan(r['ci95_low']) else
              f'[{r["ci95_low"]:+.2f}, {r["ci95_high"]:+.2f}]')
        lines.append(
            f'| {r["split"]} | {r["a"]} | {r["b"]} | {r["metric"]} | '
            f'{r["n"]} | {_num(r["mean_diff"], "+.2f")} | {ci} | '
            f'{_num(r["p"], ".3g")} | {_num(r["p_holm"], ".3g")} |')
    return lines + ['']


def stale_lines(results: dict) -> List[str]:
    """The note on the records kept with ``--allow-stale`` (empty without
    any)."""
    stale = results.get('stale') or []
    if not stale:
        return []
    lines = [f'**{len(stale)} stale record(s)** (kept with '
             '`--allow-stale`: made with other code, config or data than '
             'this run; their numbers are not comparable):', '']
    lines += [f'- `{s["record"]}`: {"; ".join(s["reasons"])}'
              for s in stale]
    return lines + ['']


def threshold_lines(results: dict) -> List[str]:
    """The thresholds picked on val, per method and seed, with the val
    metric of every candidate (empty when none were picked)."""
    rows = [(name, seed, r['thresholds'])
            for name, m in results['methods'].items()
            for seed, r in sorted(m['seeds'].items(),
                                  key=lambda x: int(x[0]))
            if r.get('thresholds')]
    if not rows:
        return []
    metric = rows[0][2]['metric']
    # every candidate any model was scored with, in first-seen order (a
    # record kept with --allow-stale may come from another grid)
    grid = list(dict.fromkeys(g for _, _, t in rows for g in t['grid']))
    lines = ['## Thresholds picked on val', '',
             f'Per model, the candidate of the highest val {metric} '
             f'({rows[0][2]["tie_break"]} breaks ties), the same grid for '
             'every method; the other splits are scored with it. Val '
             f'{metric} of each candidate:', '',
             '| method | seed | chosen | ' + ' | '.join(
                 f'`{g}`' for g in grid) + ' |',
             '|' + '---|' * (3 + len(grid))]
    for name, seed, t in rows:
        vals = [t['val'].get(g, {}).get(metric) for g in grid]
        cells = ['n/a' if v is None else _num(v, '.2f') for v in vals]
        lines.append(f'| {name} | {seed} | `{t["chosen"]}` | '
                     + ' | '.join(cells) + ' |')
    return lines + ['']


def markdown(results: dict) -> str:
    """results.md: per split (test first) mean ± std over seeds, Δ against
    the student, gap recovered, train time and params; then the paired
    comparisons and the targets."""
    lines = [f'# KD benchmark ({results.get("family", "cstrack")} family, '
             f'{results["preset"]} preset)', '',
             f'Data: `{results["data"]}`; seeds {results["seeds"]}'
             + (f' (per method where it differs: {results["seeds_of"]})'
                if results.get('seeds_of') else '') + '; sizes '
             f'{json.dumps(results["sizes"])}; torch threads '
             f'{results["torch_threads"]}.', '',
             'Mean ± std over seeds. Δ = difference of means against the '
             'student without KD; gap recovered = 100 (IDF1_KD - '
             'IDF1_student) / (IDF1_teacher - IDF1_student).'
             + (' Detection and tracker thresholds picked on val per '
                'model (see below).' if results.get('tune_thresholds')
                else ''), '']
    lines += stale_lines(results)
    for split in ('test', 'val'):
        if not any(m['summary'].get(split, {}).get('IDF1')
                   for m in results['methods'].values()):
            continue
        lines += [f'## {split} split', '',
                  '| method | MOTA | IDF1 | HOTA | MT% | ML% | IDs | FPS | '
                  'ΔMOTA | ΔIDF1 | gap recovered % | train s | train CPU s | '
                  'params |',
                  '|' + '---|' * 14]
        base = results['methods'].get('student', {}).get('summary', {}).get(
            split, {})
        stale = {x.get('method') for x in results.get('stale') or []}
        for name, m in results['methods'].items():
            s = m['summary'].get(split, {})
            if not s.get('IDF1'):
                lines.append(f'| {name} | (not run) |' + ' |' * 13)
                continue
            row = [name + (' (stale)' if name in stale else '')]
            row += [fmt_stat(s.get(k)) for k in METRIC_KEYS[:5]]
            row += [fmt_stat(s.get('IDs'), 1), fmt_stat(s.get('FPS'), 1)]
            for key in ('MOTA', 'IDF1'):
                if m['kind'] in ('kd', ) and base.get(key, {}).get('n'):
                    row.append(f'{s[key]["mean"] - base[key]["mean"]:+.3f}')
                else:
                    row.append('')
            gap = gap_recovered(results, name, split) \
                if m['kind'] == 'kd' else None
            row.append('' if gap is None else f'{gap:.0f}')
            row.append(fmt_stat(s.get('train_time_s'), 0))
            row.append(fmt_stat(s.get('train_cpu_s'), 0))
            row.append(f'{s["params"]["mean"] / 1e6:.3f}M'
                       if s.get('params') else '')
            lines.append('| ' + ' | '.join(row) + ' |')
        lines.append('')
    lines += threshold_lines(results)
    lines += comparison_lines(results)
    lines += target_lines(results)
    return '\n'.join(lines)


def write_reports(out: str, results: dict) -> None:
    """Write ``OUT/results.json`` and ``OUT/results.md`` atomically."""
    from mmtrack_kd.utils.io import atomic_write
    json_dump(results, osp.join(out, 'results.json'))
    with atomic_write(osp.join(out, 'results.md')) as f:
        f.write(markdown(results))
