"""The val-split loss-weight search of the KD benchmark.

Reuses the teacher and the plain students of a benchmark run (``--reuse``,
the same preset and data) and trains, on ``--seeds`` seeds, evaluating on
the **val** split only:

1. each of our losses alone (``only_id``, ``only_feat``, ``only_resp``) with
   its ``loss_weight`` multiplied by every factor of its grid in
   ``--scales`` (``0.3 1`` for every loss, or ``id=1,3 feat=0.3,1 ...``);
   the best factor of each loss is the one of the highest val IDF1 (MOTA
   breaks ties);
2. ``ours`` (all three losses) with those factors times every factor of
   ``--combine`` (the three losses add up, so their sum may want less).

It prints, and writes to ``OUT/search.json`` and ``OUT/search.md``, the
val table and the ``--loss-scale`` arguments that give the full benchmark
the chosen weights. The test split is never read.

Example:
    python tools/benchmark/kd_search.py --reuse outputs/bench_full \
        --out outputs/kd_search --scales id=1,3,10 feat=0.1,0.3,1 \
        resp=0.1,0.3,1 --combine 1
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import kd_benchmark as kb  # noqa: E402

OURS = ('id', 'feat', 'resp')


def _val(bench: kb.Benchmark, method: str,
         seeds: Sequence[int]) -> Optional[Dict[str, float]]:
    """Mean val IDF1/MOTA/HOTA of ``method`` over ``seeds``, or None."""
    recs = [bench.load_record(method, s) for s in seeds]
    if any(r is None or 'val' not in r['metrics'] for r in recs):
        return None
    return {k: sum(r['metrics']['val'][k] for r in recs) / len(recs)
            for k in ('IDF1', 'MOTA', 'HOTA')}


def _best(cands: Dict[float, Optional[Dict[str, float]]]) -> float:
    ok = {x: v for x, v in cands.items() if v is not None}
    if not ok:
        raise RuntimeError('kd_search: no candidate finished')
    return max(ok, key=lambda x: (ok[x]['IDF1'], ok[x]['MOTA']))


def _fmt_scale(x: float) -> str:
    return f'{x:g}'


def parse_scales(items: Sequence[str]) -> Dict[str, List[float]]:
    """``['0.3', '1']`` -> the same grid for every loss of ours;
    ``['id=1,3', 'feat=0.3']`` -> per-loss grids (the rest: ``[1.0]``)."""
    grids: Dict[str, List[float]] = {}
    plain = []
    for item in items:
        key, sep, values = item.partition('=')
        try:
            if sep:
                if key not in OURS:
                    raise ValueError
                grids[key] = [float(v) for v in values.split(',')]
            else:
                plain.append(float(item))
        except ValueError:
            raise ValueError(f'--scales: expected factors or LOSS=F1,F2 with '
                             f'LOSS in {OURS}, got {item!r}') from None
    if plain and grids:
        raise ValueError('--scales: give plain factors or LOSS=... grids, '
                         'not both')
    return {k: plain or grids.get(k, [1.0]) for k in OURS}


class Search:

    def __init__(self, reuse: str, out: str, preset: str, seeds: int,
                 scales: Dict[str, List[float]], combine: Sequence[float],
                 jobs: int, threads: int = 1) -> None:
        factors = [x for grid in scales.values() for x in grid]
        if not all(scales.get(k) for k in OURS) or not combine:
            raise ValueError('--scales and --combine need a factor each')
        if any(not x > 0 for x in factors + list(combine)):
            raise ValueError('--scales/--combine: factors must be > 0')
        ref = kb.Benchmark(reuse, preset, seeds, [])
        if ref.load_record('teacher', kb.TEACHER_SEED) is None:
            raise ValueError(f'--reuse: {reuse} has no trained teacher '
                             '(run kd_benchmark.py with it first)')
        self.reuse, self.out, self.preset = reuse, osp.abspath(out), preset
        self.seeds, self.jobs, self.threads = seeds, jobs, threads
        self.scales = {k: list(scales[k]) for k in OURS}
        self.combine = list(combine)
        self.data = ref.data

    def _bench(self, name: str, methods: List[str],
               scale: Dict[str, float]) -> kb.Benchmark:
        return kb.Benchmark(osp.join(self.out, name), self.preset,
                            self.seeds, methods, data=self.data,
                            threads=self.threads, jobs=self.jobs,
                            loss_scale=scale, splits=['val'],
                            teacher_from=self.reuse)

    def _execute(self, benches: List[kb.Benchmark]) -> None:
        for bench in benches:
            bench._check_teacher_from()
        tasks = [t for b in benches for t in b.tasks()]
        failures = kb.execute(tasks, self.jobs)
        for bench in benches:
            bench.summarize()
        if failures:
            raise RuntimeError(f'{len(failures)} run(s) failed: ' +
                               '; '.join(f'{n}: {e}' for n, e in failures))

    def run(self) -> dict:
        seeds = list(range(self.seeds))
        alone = {(k, x): self._bench(f'only_{k}_x{_fmt_scale(x)}',
                                     [f'only_{k}'], {k: x})
                 for k in OURS for x in self.scales[k]}
        self._execute(list(alone.values()))
        first = next(iter(alone.values()))
        result = dict(preset=self.preset, reuse=self.reuse, seeds=seeds,
                      student=_val(first, 'student', seeds),
                      teacher=_val(first, 'teacher', [kb.TEACHER_SEED]),
                      alone={}, ours={})
        best = {}
        for key in OURS:
            cands = {x: _val(b, f'only_{key}', seeds)
                     for (k, x), b in alone.items() if k == key}
            result['alone'][key] = {_fmt_scale(x): v
                                    for x, v in cands.items()}
            best[key] = _best(cands)
        combined = {
            g: self._bench(f'ours_g{_fmt_scale(g)}', ['ours'],
                           {f'ours.{k}': best[k] * g for k in OURS})
            for g in self.combine
        }
        self._execute(list(combined.values()))
        cands = {g: _val(b, 'ours', seeds) for g, b in combined.items()}
        result['ours'] = {_fmt_scale(g): v for g, v in cands.items()}
        g = _best(cands)
        result['chosen'] = dict(
            {k: best[k] for k in OURS},
            **{f'ours.{k}': best[k] * g for k in OURS})
        result['loss_scale_args'] = ' '.join(
            f'{k}={_fmt_scale(v)}' for k, v in result['chosen'].items())
        kb._json_dump(result, osp.join(self.out, 'search.json'))
        from mmtrack_kd.utils.io import atomic_write
        with atomic_write(osp.join(self.out, 'search.md')) as f:
            f.write(markdown(result))
        return result


def markdown(result: dict) -> str:

    def row(name, v):
        if v is None:
            return f'| {name} | (failed) | | |'
        return (f'| {name} | {v["IDF1"]:.2f} | {v["MOTA"]:.2f} | '
                f'{v["HOTA"]:.2f} |')

    lines = [f'# Val-split loss-weight search ({result["preset"]} preset, '
             f'seeds {result["seeds"]})', '',
             '| run (loss-weight factor) | val IDF1 | val MOTA | val HOTA |',
             '|---|---|---|---|',
             row('student, no KD', result['student']),
             row('teacher', result['teacher'])]
    for key, cands in result['alone'].items():
        for x, v in cands.items():
            lines.append(row(f'only_{key} x{x}', v))
    for g, v in result['ours'].items():
        lines.append(row(f'ours (best factors) x{g}', v))
    lines += ['', f'Chosen: `--loss-scale {result["loss_scale_args"]}`', '']
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='val-split loss-weight search for kd_benchmark.py')
    parser.add_argument('--reuse', required=True,
                        help='benchmark run folder with the trained teacher '
                        'and students')
    parser.add_argument('--out', required=True, help='search folder')
    parser.add_argument('--preset', default='full',
                        choices=sorted(kb.PRESETS))
    parser.add_argument('--seeds', type=int, default=1)
    parser.add_argument('--scales', nargs='+', default=['0.3', '1', '3'],
                        help='loss-weight factors tried for each loss alone: '
                        'F1 F2 ... for all, or id=F1,F2 feat=... resp=...')
    parser.add_argument('--combine', type=float, nargs='+',
                        default=[1.0, 0.3],
                        help='factors on the best ones, tried for ours')
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        search = Search(args.reuse, args.out, args.preset, args.seeds,
                        parse_scales(args.scales), args.combine, args.jobs,
                        args.threads)
    except ValueError as err:
        print(f'kd_search: {err}', file=sys.stderr)
        return 2
    result = search.run()
    print(markdown(result))
    print(f'wrote {osp.join(search.out, "search.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
