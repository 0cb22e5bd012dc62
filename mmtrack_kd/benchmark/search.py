"""The val-split loss-weight search of the KD benchmark.

Reuses the teacher and the plain students of a benchmark run (the same
preset and data) and trains, evaluating on the **val** split only:

1. each of our losses alone (``only_id``, ``only_feat``, ``only_resp``) with
   its ``loss_weight`` multiplied by every factor of its grid; the best
   factor of each loss is the one of the highest val IDF1 (MOTA breaks
   ties);
2. ``ours`` (all three losses) with those factors times every ``combine``
   factor (the three losses add up, so their sum may want less).

The result holds the val table and the ``--loss-scale`` arguments that give
the benchmark the chosen weights. The test split is never read.
"""
import contextlib
import os.path as osp
from typing import Dict, List, Optional, Sequence

from . import records, runner
from .plan import TEACHER_SEED
from .runner import Benchmark

OURS = ('id', 'feat', 'resp')


def val_means(bench: Benchmark, method: str,
              seeds: Sequence[int]) -> Optional[Dict[str, float]]:
    """Mean val IDF1/MOTA/HOTA of ``method`` over ``seeds``, or None when a
    seed has no val metrics."""
    recs = [bench.load_record(method, s) for s in seeds]
    if any(r is None or 'val' not in r['metrics'] for r in recs):
        return None
    return {k: sum(r['metrics']['val'][k] for r in recs) / len(recs)
            for k in ('IDF1', 'MOTA', 'HOTA')}


def best_factor(cands: Dict[float, Optional[Dict[str, float]]]) -> float:
    """The factor of the highest val IDF1 (MOTA breaks ties) among the
    finished candidates.

    Raises:
        RuntimeError: no candidate finished.
    """
    ok = {x: v for x, v in cands.items() if v is not None}
    if not ok:
        raise RuntimeError('kd_search: no candidate finished')
    return max(ok, key=lambda x: (ok[x]['IDF1'], ok[x]['MOTA']))


def fmt_scale(x: float) -> str:
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
    """The search folder: one benchmark run folder per candidate.

    Args:
        reuse (str): benchmark run folder with the trained teacher and
            plain students.
        out (str): search folder.
        preset (str): the preset of ``reuse``.
        seeds (int): seeds 0..seeds-1 of every candidate.
        scales (dict): loss of :data:`OURS` -> factors tried alone.
        combine (Sequence[float]): factors on the best ones, tried for
            ``ours``.
        jobs (int): trainings at once.
        threads (int): torch threads of each subprocess.
        allow_stale (bool): keep records of other code, config or data
            (``--allow-stale``) instead of refusing them.

    Raises:
        ValueError: empty or non-positive factors, or ``reuse`` without a
            trained teacher.
    """

    def __init__(self, reuse: str, out: str, preset: str, seeds: int,
                 scales: Dict[str, List[float]], combine: Sequence[float],
                 jobs: int, threads: int = 1,
                 allow_stale: bool = False) -> None:
        factors = [x for grid in scales.values() for x in grid]
        if not all(scales.get(k) for k in OURS) or not combine:
            raise ValueError('--scales and --combine need a factor each')
        if any(not x > 0 for x in factors + list(combine)):
            raise ValueError('--scales/--combine: factors must be > 0')
        ref = Benchmark(reuse, preset, seeds, [])
        if ref.load_record('teacher', TEACHER_SEED) is None:
            raise ValueError(f'--reuse: {reuse} has no trained teacher '
                             '(run kd_benchmark.py with it first)')
        self.reuse, self.out, self.preset = reuse, osp.abspath(out), preset
        self.seeds, self.jobs, self.threads = seeds, jobs, threads
        self.allow_stale = allow_stale
        self.scales = {k: list(scales[k]) for k in OURS}
        self.combine = list(combine)
        self.data = ref.data

    def bench(self, name: str, methods: List[str],
              scale: Dict[str, float]) -> Benchmark:
        """The val-only run folder ``OUT/NAME`` of one candidate."""
        return Benchmark(osp.join(self.out, name), self.preset, self.seeds,
                         methods, data=self.data, threads=self.threads,
                         jobs=self.jobs, loss_scale=scale, splits=['val'],
                         teacher_from=self.reuse,
                         allow_stale=self.allow_stale)

    def execute(self, benches: List[Benchmark]) -> None:
        """Prepare each candidate (data fingerprint, teacher data, stale
        records, initial weights), run them together, then summarize
        each."""
        from .lock import folder_lock
        with contextlib.ExitStack() as stack:
            for bench in benches:
                stack.enter_context(folder_lock(bench.out))
            tasks = []
            for bench in benches:
                todo = bench.tasks()
                bench.prepare(todo)
                tasks += todo
            failures = runner.execute(tasks, self.jobs)
            for bench in benches:
                bench.summarize()
        runner.raise_failures(failures)

    def run(self) -> dict:
        """Run the search; write and return ``search.json``'s content."""
        seeds = list(range(self.seeds))
        alone = {(k, x): self.bench(f'only_{k}_x{fmt_scale(x)}',
                                    [f'only_{k}'], {k: x})
                 for k in OURS for x in self.scales[k]}
        self.execute(list(alone.values()))
        first = next(iter(alone.values()))
        result = dict(preset=self.preset, reuse=self.reuse, seeds=seeds,
                      student=val_means(first, 'student', seeds),
                      teacher=val_means(first, 'teacher', [TEACHER_SEED]),
                      alone={}, ours={})
        best = {}
        for key in OURS:
            cands = {x: val_means(b, f'only_{key}', seeds)
                     for (k, x), b in alone.items() if k == key}
            result['alone'][key] = {fmt_scale(x): v
                                    for x, v in cands.items()}
            best[key] = best_factor(cands)
        combined = {
            g: self.bench(f'ours_g{fmt_scale(g)}', ['ours'],
                          {f'ours.{k}': best[k] * g for k in OURS})
            for g in self.combine
        }
        self.execute(list(combined.values()))
        cands = {g: val_means(b, 'ours', seeds) for g, b in combined.items()}
        result['ours'] = {fmt_scale(g): v for g, v in cands.items()}
        g = best_factor(cands)
        result['chosen'] = dict(
            {k: best[k] for k in OURS},
            **{f'ours.{k}': best[k] * g for k in OURS})
        result['loss_scale_args'] = ' '.join(
            f'{k}={fmt_scale(v)}' for k, v in result['chosen'].items())
        records.json_dump(result, osp.join(self.out, 'search.json'))
        from mmtrack_kd.utils.io import atomic_write
        with atomic_write(osp.join(self.out, 'search.md')) as f:
            f.write(markdown(result))
        return result


def markdown(result: dict) -> str:
    """search.md: the val table and the chosen ``--loss-scale``."""

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
