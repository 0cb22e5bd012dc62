"""Pool the seeds of several benchmark runs and compare methods over all
of them (paired over seeds, Holm over the comparisons of a split).

A study that adds seeds in a new run folder (``kd_benchmark.py
--first-seed``) has its seeds in two ``results.json`` files; this script
joins them. A (method, seed) found in two files must have the same
metrics, else it stops and names both files. The teachers of the files
are listed with their test and val IDF1: students of different files may
have distilled from different teacher trainings, which the output says.

``--rename FILE:OLD=NEW`` reads method OLD of one file as NEW, so that
two variants run under the same method name in different folders (e.g.
``ours`` with two designs of a loss) can be compared.

Example:
    python tools/benchmark/pool_results.py \\
        docs/results/kd_len_e8_obj3.json outputs/e8_rep/results.json \\
        --pairs ours:student ours:only_resp only_resp:student \\
        --out docs/results/kd_len_e8_pooled.json
"""
import argparse
import datetime
import json
import math
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from mmtrack_kd.benchmark.records import json_dump
from mmtrack_kd.benchmark.stats import (
    aggregate,
    paired_comparisons,
    seed_values,
)

METRICS = ('IDF1', 'MOTA', 'HOTA', 'MT%')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='pool the seeds of benchmark results.json files')
    parser.add_argument('results', nargs='+', help='results.json files')
    parser.add_argument('--pairs', nargs='+', required=True,
                        metavar='A:B', help='comparisons A - B')
    parser.add_argument('--metrics', nargs='+', default=list(METRICS))
    parser.add_argument('--splits', nargs='+', default=['test'],
                        choices=['val', 'test'])
    parser.add_argument('--rename', nargs='+', default=[],
                        metavar='FILE:OLD=NEW',
                        help='read method OLD of results file FILE (as '
                        'given above) as NEW')
    parser.add_argument('--out', default=None,
                        help='write the pooled comparisons as JSON')
    return parser.parse_args(argv)


def _same(a: dict, b: dict) -> bool:
    for split in set(a) | set(b):
        ma, mb = a.get(split, {}), b.get(split, {})
        for key in set(ma) & set(mb):
            x, y = ma[key], mb[key]
            if isinstance(x, float) and isinstance(y, float) and (
                    math.isnan(x) and math.isnan(y)):
                continue
            if x != y:
                return False
    return True


def parse_renames(items: Sequence[str],
                  paths: Sequence[str]) -> Dict[tuple, str]:
    """``['a.json:ours=ours_bb']`` -> ``{('a.json', 'ours'): 'ours_bb'}``.

    Raises:
        ValueError: not FILE:OLD=NEW, or FILE not one of ``paths``.
    """
    out = {}
    for item in items:
        path, sep, rest = item.rpartition(':')
        old, eq, new = rest.partition('=')
        if not (sep and path and eq and old and new):
            raise ValueError(f'--rename: expected FILE:OLD=NEW, got '
                             f'{item!r}')
        if path not in paths:
            raise ValueError(f'--rename: {path} is not one of the results '
                             f'files {list(paths)}')
        out[(path, old)] = new
    return out


def pool(paths: Sequence[str], methods: Sequence[str],
         renames: Optional[Dict[tuple, str]] = None) -> dict:
    """``{'methods': {m: {'seeds': {seed: record}}}, 'sources': ...,
    'teachers': [...]}`` from the results.json files in ``paths``; method
    OLD of file F is read as ``renames[(F, OLD)]`` where given (and not
    under its own name).

    Raises:
        ValueError: a file is not a results.json, or a (method, seed) has
            different metrics in two files (names both).
    """
    pooled: Dict[str, dict] = {m: dict(seeds={}) for m in methods}
    where: Dict[tuple, str] = {}
    teachers: List[dict] = []
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
            found = doc['methods']
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f'{path}: not a benchmark results.json '
                             f'({err!r})') from err
        for seed, rec in found.get('teacher', {}).get('seeds', {}).items():
            m = rec.get('metrics', {})
            teachers.append(dict(
                file=path, seed=seed,
                checkpoint=rec.get('checkpoint'),
                test_IDF1=m.get('test', {}).get('IDF1'),
                val_IDF1=m.get('val', {}).get('IDF1')))
        names = {}
        for m in found:
            new = (renames or {}).get((path, m), m)
            if new in names:
                raise ValueError(f'{path}: --rename gives two methods the '
                                 f'name {new!r} ({names[new]!r} and {m!r})')
            names[new] = m
        for method in methods:
            src = names.get(method)
            if src is None:
                continue
            for seed, rec in found[src].get('seeds', {}).items():
                key = (method, str(seed))
                if key in where:
                    old = pooled[method]['seeds'][str(seed)]
                    if not _same(old.get('metrics', {}),
                                 rec.get('metrics', {})):
                        raise ValueError(
                            f'{method} seed {seed} differs between '
                            f'{where[key]} and {path}')
                    continue
                where[key] = path
                pooled[method]['seeds'][str(seed)] = dict(
                    rec, source=path)
    return dict(methods=pooled, teachers=teachers,
                sources={f'{m}__seed{s}': p for (m, s), p in where.items()})


def main(argv=None) -> int:
    args = parse_args(argv)
    pairs = []
    for item in args.pairs:
        a, sep, b = item.partition(':')
        if not sep or not a or not b:
            print(f'pool_results: --pairs: expected A:B, got {item!r}',
                  file=sys.stderr)
            return 2
        pairs.append((a, b))
    methods = sorted({m for p in pairs for m in p})
    try:
        renames = parse_renames(args.rename, args.results)
        doc = pool(args.results, methods, renames)
    except ValueError as err:
        print(f'pool_results: {err}', file=sys.stderr)
        return 2
    missing = [m for m in methods if not doc['methods'][m]['seeds']]
    if missing:
        print(f'pool_results: no seeds of {missing} in the files',
              file=sys.stderr)
        return 2
    absent = [(metric, split) for metric in args.metrics
              for split in args.splits
              if not any(seed_values(doc, m, metric, split) for m in methods)]
    if absent:
        print(f'pool_results: --metrics/--splits: no seed has {absent}',
              file=sys.stderr)
        return 2
    comps = paired_comparisons(doc, pairs, args.metrics, args.splits)
    summary = {m: {split: aggregate(doc['methods'][m]['seeds'], split)
                   for split in args.splits} for m in methods}
    idf1 = {round(t['test_IDF1'], 6) for t in doc['teachers']
            if t['test_IDF1'] is not None}
    out = dict(
        command='python ' + ' '.join([osp.relpath(__file__)] +
                                     (argv or sys.argv[1:])),
        date=datetime.date.today().isoformat(),
        files=list(args.results), teachers=doc['teachers'],
        renamed={f'{f}:{old}': new for (f, old), new in renames.items()},
        same_teacher_scores=len(idf1) <= 1,
        seeds={m: sorted(doc['methods'][m]['seeds'], key=int)
               for m in methods},
        sources=doc['sources'], summary=summary, comparisons=comps)
    for t in doc['teachers']:
        print(f'teacher in {t["file"]}: test IDF1 {t["test_IDF1"]}, '
              f'val IDF1 {t["val_IDF1"]}')
    if len(idf1) > 1:
        print('note: the teachers of these files score differently; their '
              'students distilled from different teacher trainings')
    for m in methods:
        s = summary[m][args.splits[0]].get('IDF1', {})
        print(f'{m}: seeds {out["seeds"][m]}, {args.splits[0]} IDF1 '
              f'{s.get("mean", float("nan")):.2f} ± '
              f'{s.get("std", float("nan")):.2f}')
    for c in comps:
        print(f'{c["split"]} {c["a"]} - {c["b"]} {c["metric"]}: '
              f'{c["mean_diff"]:+.2f} [{c["ci95_low"]:+.2f}, '
              f'{c["ci95_high"]:+.2f}] n={c["n"]} p={c["p"]:.3g} '
              f'p_holm={c["p_holm"]:.3g}')
    if args.out:
        json_dump(out, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
