"""The val-split searches of the KD benchmark (``kd_search.py``).

Both reuse the teacher and the plain students of a benchmark run (the same
family, preset and data), train candidates that are evaluated on the
**val** split only (the test split is never read), and keep for each
method the candidate of the highest val IDF1 (MOTA breaks ties).

**Gradient ratios** (:class:`RatioSearch`, ``--grad-ratios``), the mode
of the balanced protocol: every KD method is balanced by the distiller's
``loss_balance`` (``kd_benchmark.py --grad-ratio``), so what is searched
is the ratio of each fragment's gradient norm to the task's:

1. each of our losses alone (``only_id``, ``only_feat``, ``only_resp``;
   the ones of the family's ``ours``) at every ratio of its grid, and each
   baseline named (``fitnets``, ``pkd``, ...) at every ratio of its
   fragment's grid: each baseline gets as many candidates as ``ours`` is
   tuned on, the candidates of our losses alone plus the ``combine``
   factors (the equal budget, checked);
2. ``ours`` at those best ratios times every ``combine`` factor.

``baselines_only`` runs the baselines of stage 1 alone, on that budget
(for baselines searched after ``ours``).

The result holds the val tables, the trainings each method was given and
the ``--grad-ratio`` arguments (``METHOD.LOSS=R``) for ``kd_benchmark.py``.

**Loss weights** (:class:`Search`), the unbalanced protocol: the
``loss_weight`` of each of our losses times every factor of its grid,
then ``ours`` with the best factors times every ``combine`` factor; the
result holds the ``--loss-scale`` arguments.
"""
import contextlib
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from . import records, runner
from .families import DEFAULT_FAMILY, check_methods, get_family
from .plan import (
    FRAGMENTS,
    METHODS,
    TEACHER_SEED,
    method_fragments,
    reference_cores,
)
from .runner import Benchmark

OURS = ('id', 'feat', 'resp')

#: The baselines the ratio search takes (``--baselines``): every KD method
#: of one fragment that is not one of ours.
BASELINES: Tuple[str, ...] = tuple(
    m for m, (kind, frags, _) in METHODS.items()
    if kind == 'kd' and len(frags) == 1 and
    not m.startswith(('ours', 'only_')))


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


def baseline_fragment(method: str) -> str:
    """The one fragment key of a baseline (``liang_agkd`` -> ``agkd``).

    Raises:
        ValueError: not one of :data:`BASELINES` (names ``--baselines``).
    """
    if method not in BASELINES:
        raise ValueError(f'--baselines: unknown {method!r}, expected some '
                         f'of {list(BASELINES)}')
    return METHODS[method][1][0]


def parse_ratios(items: Sequence[str]) -> Dict[str, List[float]]:
    """``--ratios``: ``['resp=10,20,40', 'feat=1,2', '1,2,5']`` -> ``{'resp':
    [10, 20, 40], 'feat': [1, 2], '*': [1, 2, 5]}``.

    ``KEY=R1,R2,...`` is the grid of one fragment (a key of
    :data:`~mmtrack_kd.benchmark.plan.FRAGMENTS`, or a baseline's method
    name for its fragment, e.g. ``liang_agkd`` for ``agkd``); plain
    ``R1,R2,...`` (or ``R1 R2 ...``) is the grid of every searched fragment
    without one of its own (key ``'*'``).

    Raises:
        ValueError: an unknown key, a value that is not a number, a key
            given twice, an empty grid.
    """
    grids: Dict[str, List[float]] = {}
    for item in items:
        key, sep, values = item.partition('=')
        if not sep:
            key, values = '*', item
        key = METHODS[key][1][0] if key in BASELINES else key
        if key != '*' and key not in FRAGMENTS:
            raise ValueError(f'--ratios: unknown loss {key!r} in {item!r}, '
                             f'expected some of {list(FRAGMENTS)} or a '
                             'baseline\'s method name')
        try:
            grid = [float(v) for v in values.split(',') if v != '']
        except ValueError:
            raise ValueError(f'--ratios: expected LOSS=R1,R2,... or plain '
                             f'ratios, got {item!r}') from None
        if not grid:
            raise ValueError(f'--ratios: no ratio in {item!r}')
        if key in grids and key != '*':
            raise ValueError(f'--ratios: {key} is given twice')
        grids[key] = grids.get(key, []) + grid
    return grids


class _SearchBase:
    """What both searches share: the checked ``--reuse`` folder, the
    candidate folders and their execution.

    Args:
        reuse (str): benchmark run folder with the trained teacher and
            plain students.
        out (str): search folder.
        preset (str): the preset of ``reuse``.
        seeds (int): seeds 0..seeds-1 of every candidate.
        jobs (int): trainings at once.
        threads (int): torch threads of each subprocess.
        allow_stale (bool): keep records of other code, config or data
            (``--allow-stale``) instead of refusing them.
        family (str): the tracker family of ``reuse`` (``--family``).
        loss_options (dict, optional): ``--loss-option`` of every
            candidate.
        epochs (int, optional): ``--epochs`` of every candidate (``reuse``'s
            plain students must have been trained with as many, or they are
            refused as stale).
        ema (float, optional): ``--ema`` of every candidate: score each
            student's moving average of this momentum (``reuse``'s plain
            students must have been trained with the same, or they are
            refused as stale).

    Raises:
        ValueError: ``reuse`` without a trained teacher or a plain student
            of every seed, or of another family; a bad setting of the
            benchmark (its message).
    """

    def __init__(self, reuse: str, out: str, preset: str, seeds: int,
                 jobs: int, threads: int = 1, allow_stale: bool = False,
                 family: str = DEFAULT_FAMILY,
                 loss_options: Optional[Dict[str, dict]] = None,
                 epochs: Optional[int] = None,
                 ema: Optional[float] = None,
                 student_size: Optional[dict] = None) -> None:
        fam = get_family(family)
        owner = runner.folder_family(reuse)
        if owner is not None and owner != fam.name:
            raise ValueError(f'--reuse: {reuse} is a run folder of family '
                             f'{owner}, not --family {fam.name}')
        ref = Benchmark(reuse, preset, seeds, [], family=fam.name,
                        loss_options=loss_options, epochs=epochs, ema=ema,
                        student_size=student_size)
        if ref.load_record('teacher', TEACHER_SEED) is None:
            raise ValueError(f'--reuse: {reuse} has no trained teacher '
                             '(run kd_benchmark.py with it first)')
        missing = [s for s in range(seeds)
                   if ref.load_record('student', s) is None]
        if missing:  # else every candidate folder would train its own
            raise ValueError(f'--reuse: {reuse} has no plain student of '
                             f'seed(s) {missing} (run kd_benchmark.py '
                             f'--seeds {seeds} with it first)')
        # plain models without val metrics: every candidate folder
        # evaluates them on val again (into its own records)
        self.no_val = [(m, s) for m, s in [('teacher', TEACHER_SEED)] + [
            ('student', s) for s in range(seeds)]
            if 'val' not in ref.load_record(m, s).get('metrics', {})]
        self.reuse, self.out, self.preset = reuse, osp.abspath(out), preset
        self.seeds, self.jobs, self.threads = seeds, jobs, threads
        self.allow_stale = allow_stale
        self.family = fam
        self.loss_options = {k: dict(v) for k, v in
                             (loss_options or {}).items()}
        self.epochs = epochs
        self.ema = ref.ema
        self.data = ref.data
        self.student_size = student_size

    def candidate(self, name: str, methods: List[str],
                  **settings) -> Benchmark:
        """The val-only run folder ``OUT/NAME`` of one candidate, with the
        search's family, options and epochs and ``settings`` (e.g.
        ``loss_scale``, ``grad_ratio``)."""
        return Benchmark(osp.join(self.out, name), self.preset, self.seeds,
                         methods, data=self.data, threads=self.threads,
                         jobs=self.jobs, splits=['val'],
                         teacher_from=self.reuse,
                         allow_stale=self.allow_stale,
                         family=self.family.name,
                         loss_options=self.loss_options,
                         epochs=self.epochs, ema=self.ema,
                         student_size=self.student_size, **settings)

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

    def header(self) -> dict:
        """The settings every ``search.json`` starts with."""
        return dict(family=self.family.name, preset=self.preset,
                    reuse=self.reuse, seeds=list(range(self.seeds)),
                    epochs=self.epochs, ema=self.ema,
                    loss_options=self.loss_options,
                    student_size=self.student_size)

    def plain_scores(self, bench: Benchmark) -> dict:
        """The val means of the student and the teacher (from a finished
        candidate folder)."""
        seeds = list(range(self.seeds))
        return dict(student=val_means(bench, 'student', seeds),
                    teacher=val_means(bench, 'teacher', [TEACHER_SEED]))

    def write(self, result: dict) -> None:
        """``OUT/search.json`` and ``OUT/search.md``."""
        records.json_dump(result, osp.join(self.out, 'search.json'))
        from mmtrack_kd.utils.io import atomic_write
        with atomic_write(osp.join(self.out, 'search.md')) as f:
            f.write(markdown(result))


class Search(_SearchBase):
    """The loss-weight search: one benchmark run folder per candidate.

    Args:
        reuse, out, preset, seeds, jobs, threads, allow_stale, family,
        loss_options, epochs: see :class:`_SearchBase`.
        scales (dict): loss of :data:`OURS` -> factors tried alone.
        combine (Sequence[float]): factors on the best ones, tried for
            ``ours``.

    Raises:
        ValueError: empty or non-positive factors, a family without our
            three losses, or ``reuse`` without a trained teacher.
    """

    def __init__(self, reuse: str, out: str, preset: str, seeds: int,
                 scales: Dict[str, List[float]], combine: Sequence[float],
                 jobs: int, threads: int = 1,
                 allow_stale: bool = False, **kwargs) -> None:
        factors = [x for grid in scales.values() for x in grid]
        if not all(scales.get(k) for k in OURS) or not combine:
            raise ValueError('--scales and --combine need a factor each')
        if any(not x > 0 for x in factors + list(combine)):
            raise ValueError('--scales/--combine: factors must be > 0')
        fam = get_family(kwargs.get('family', DEFAULT_FAMILY))
        if not fam.id_head:
            raise ValueError(f'--family {fam.name}: the loss-weight search '
                             'tries our three losses, and it has no ID '
                             'head; use --grad-ratios')
        super().__init__(reuse, out, preset, seeds, jobs, threads,
                         allow_stale, **kwargs)
        self.scales = {k: list(scales[k]) for k in OURS}
        self.combine = list(combine)

    def bench(self, name: str, methods: List[str],
              scale: Dict[str, float]) -> Benchmark:
        """The val-only run folder ``OUT/NAME`` of one candidate."""
        return self.candidate(name, methods, loss_scale=scale)

    def run(self) -> dict:
        """Run the search; write and return ``search.json``'s content."""
        seeds = list(range(self.seeds))
        alone = {(k, x): self.bench(f'only_{k}_x{fmt_scale(x)}',
                                    [f'only_{k}'], {k: x})
                 for k in OURS for x in self.scales[k]}
        self.execute(list(alone.values()))
        first = next(iter(alone.values()))
        result = dict(self.header(), mode='loss_scale',
                      **self.plain_scores(first), alone={}, ours={})
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
        self.write(result)
        return result


class RatioSearch(_SearchBase):
    """The gradient-ratio search of the balanced protocol: our losses
    alone and each baseline at every ratio of their grids, then ``ours``
    at the best ratios times each ``combine`` factor; one benchmark run
    folder per candidate (``OUT/only_LOSS_rR``, ``OUT/BASELINE_rR``,
    ``OUT/ours_ratio_gG``).

    Args:
        reuse, out, preset, seeds, jobs, threads, allow_stale, family,
        loss_options, epochs: see :class:`_SearchBase`.
        ratios (dict): :func:`parse_ratios`'s grids: fragment key (or
            ``'*'``, the grid of every fragment without its own) ->
            ratios.
        combine (Sequence[float]): factors on the best ratios of our
            losses, tried for ``ours``.
        baselines (Sequence[str]): methods of :data:`BASELINES` searched
            with the same budget.
        kd_decay (dict, optional): ``--kd-decay`` of every candidate.
        baselines_only (bool): search the baselines alone
            (``--baselines-only``): our losses and ``ours`` are not
            trained; their grids and ``combine`` still say what ``ours``
            was given, so the baselines get as much.
        ours_method (str): the method searched as ``ours`` (``--ours``):
            ``ours`` or one of its ``ours_no_*`` ablations, e.g.
            ``ours_no_id`` where the ID loss is known to hurt; its
            fragments are the ones searched alone, and the chosen
            ``ours.KEY`` ratios apply to it.

    The equal budget: ``ours`` is tuned on the candidates of each of its
    losses alone plus its ``combine`` candidates, so each baseline gets
    exactly that many candidates (sum of our grids + ``len(combine)``),
    on the same seeds.

    Raises:
        ValueError: a searched fragment without a grid, a grid of a
            fragment not searched, non-positive ratios or factors, a
            baseline that is unknown or does not apply to the family, an
            ``ours_method`` that is not ours or an ablation of it, or does
            not apply to the family, a baseline with another number of
            candidates than ``ours`` (the equal budget),
            ``baselines_only`` without baselines, a bad ``reuse``.
    """

    def __init__(self, reuse: str, out: str, preset: str, seeds: int,
                 ratios: Dict[str, List[float]], combine: Sequence[float],
                 jobs: int, threads: int = 1, allow_stale: bool = False,
                 baselines: Sequence[str] = (),
                 kd_decay: Optional[Dict[str, float]] = None,
                 baselines_only: bool = False, ours_method: str = 'ours',
                 **kwargs) -> None:
        fam = get_family(kwargs.get('family', DEFAULT_FAMILY))
        ablations = [m for m in METHODS if m.startswith('ours_no_')]
        if ours_method not in ['ours'] + ablations:
            raise ValueError(
                f'--ours: expected ours or one of its ablations '
                f'{ablations}, got {ours_method!r}')
        check_methods(fam, [ours_method])
        ours = method_fragments(fam, ours_method, METHODS[ours_method][1])
        baselines = list(dict.fromkeys(baselines))
        frag_of = {m: baseline_fragment(m) for m in baselines}
        check_methods(fam, baselines)
        searched = list(ours) + [frag_of[m] for m in baselines]
        extra = sorted(set(ratios) - set(searched) - {'*'})
        if extra:
            raise ValueError(
                f'--ratios: {extra} not searched (our losses of '
                f'{fam.name}: {list(ours)}; baselines: '
                f'{baselines or "none, see --baselines"})')
        grids = {}
        for key in searched:
            grid = ratios.get(key, ratios.get('*'))
            if not grid:
                raise ValueError(f'--ratios: no grid for {key} (give '
                                 f'{key}=R1,R2,... or plain ratios for '
                                 'every fragment without its own)')
            grids[key] = list(dict.fromkeys(float(r) for r in grid))
        values = [r for g in grids.values() for r in g]
        if any(not r > 0 for r in values):
            raise ValueError(f'--ratios: ratios must be > 0, got {grids}')
        if not combine or any(not g > 0 for g in combine):
            raise ValueError('--combine: factors must be > 0, at least one')
        if baselines_only and not baselines:
            raise ValueError('--baselines-only needs --baselines')
        combine = list(dict.fromkeys(float(g) for g in combine))
        budget = sum(len(grids[k]) for k in ours) + len(combine)
        unequal = {m: len(grids[frag_of[m]]) for m in baselines
                   if len(grids[frag_of[m]]) != budget}
        if unequal:
            raise ValueError(
                f'--ratios: equal budget: each baseline gets as many '
                f'candidates as ours is tuned on ({budget}: ' +
                ', '.join(f'{k} {len(grids[k])}' for k in ours) +
                f', --combine {len(combine)}), got ' +
                ', '.join(f'{m} ({frag_of[m]}) {n}'
                          for m, n in unequal.items()))
        super().__init__(reuse, out, preset, seeds, jobs, threads,
                         allow_stale, **kwargs)
        self.ours = tuple(ours)
        self.baselines = baselines
        self.frag_of = frag_of
        self.grids = grids
        self.combine = combine
        self.kd_decay = dict(kd_decay or {})
        self.baselines_only = baselines_only
        self.ours_method = ours_method
        # checks --kd-decay (and every setting) before anything runs
        self.bench('_check', [ours_method] + baselines, {})

    def bench(self, name: str, methods: List[str],
              ratio: Dict[str, float]) -> Benchmark:
        """The val-only run folder ``OUT/NAME`` of one candidate, every
        KD method balanced (``ratio``: ``--grad-ratio``)."""
        return self.candidate(name, methods, grad_ratio=ratio,
                              kd_decay=self.kd_decay)

    # ............................................................... plan
    def singles(self) -> Dict[Tuple[str, str, float], Benchmark]:
        """The first stage: ``(method, fragment, ratio) -> candidate`` for
        each of our losses alone and each baseline."""
        out = {}
        methods = [] if self.baselines_only else [
            (f'only_{k}', k) for k in self.ours]
        methods += [(m, self.frag_of[m]) for m in self.baselines]
        for method, key in methods:
            for r in self.grids[key]:
                out[(method, key, r)] = self.bench(
                    f'{method}_r{fmt_scale(r)}', [method],
                    {f'{method}.{key}': r})
        return out

    def combined(self, best: Dict[str, float]) -> Dict[float, Benchmark]:
        """The second stage: ``combine factor -> candidate`` of ``ours``
        at ``best`` (our loss -> its best ratio alone) times the factor."""
        return {g: self.bench(f'{self.ours_method}_ratio_g{fmt_scale(g)}',
                              [self.ours_method],
                              {f'ours.{k}': best[k] * g for k in self.ours})
                for g in self.combine}

    def budget(self) -> Dict[str, dict]:
        """Per method: its ``candidates``, the val ``trainings`` they take
        (candidates x seeds) and, for ``ours``, the trainings of the
        single losses it builds on (``builds_on``). With
        ``baselines_only``, our methods' entries are what their search is
        given (``searched_here: False``), not trained here."""
        out = {}
        for k in self.ours:
            n = len(self.grids[k])
            out[f'only_{k}'] = dict(candidates=n, trainings=n * self.seeds)
        for m in self.baselines:
            n = len(self.grids[self.frag_of[m]])
            out[m] = dict(candidates=n, trainings=n * self.seeds)
        out['ours'] = dict(
            candidates=len(self.combine),
            trainings=len(self.combine) * self.seeds,
            builds_on=sum(out[f'only_{k}']['trainings'] for k in self.ours))
        if self.baselines_only:
            for m in [f'only_{k}' for k in self.ours] + ['ours']:
                out[m]['searched_here'] = False
        return out

    def describe(self) -> str:
        """The plan, as ``--dry-run`` prints it: the candidates, the
        budget per method and the estimated time (from the preset's
        costs; teacher and plain students are reused)."""
        singles = self.singles()
        ours = {} if self.baselines_only else self.combined(
            {k: self.grids[k][0] for k in self.ours})
        lines = [f'gradient-ratio search, family {self.family.name}, '
                 f'preset {self.preset}, seeds 0..{self.seeds - 1}, '
                 f'reusing {self.reuse}'
                 + (f', decay {self.kd_decay}' if self.kd_decay else '')
                 + (f', loss options {self.loss_options}'
                    if self.loss_options else '')
                 + (f', {self.epochs} epochs' if self.epochs else '')
                 + (', baselines only' if self.baselines_only else '')
                 + (f', ours = {self.ours_method}'
                    if self.ours_method != 'ours' else ''),
                 'stage 1 (each alone):']
        total = 0.
        for (method, key, r), bench in singles.items():
            est = bench.estimate_s(method) * self.seeds
            total += est
            lines.append(f'  {osp.basename(bench.out):<24} {method} at '
                         f'{key} ratio {fmt_scale(r)}  ~{est:6.0f} s')
        if not self.baselines_only:
            lines.append(f'stage 2 ({self.ours_method} at the best ratios '
                         'of stage 1 times '
                         f'{", ".join(map(fmt_scale, self.combine))}):')
        for g, bench in ours.items():
            est = bench.estimate_s(self.ours_method) * self.seeds
            total += est
            lines.append(f'  {osp.basename(bench.out):<24} '
                         f'{self.ours_method}  '
                         f'~{est:6.0f} s')
        lines.append('val trainings per method (candidates x seeds):')
        for m, b in self.budget().items():
            lines.append(f'  {m:<12} {b["trainings"]:3d} ({b["candidates"]}'
                         f' candidate(s))' + (
                             f' + the {b["builds_on"]} of our single '
                             'losses it builds on' if 'builds_on' in b
                             else '') + (
                             ', its own search: not trained here'
                             if b.get('searched_here') is False else ''))
        if self.no_val:
            evals = len(self.no_val) * (len(singles) + len(ours))
            total += evals * next(iter(singles.values())).preset['eval_s']
            which = ', '.join(f'{m} seed {s}' for m, s in self.no_val)
            lines.append(
                f'{len(self.no_val)} plain record(s) of {self.reuse} lack '
                f'val metrics ({which}): '
                f'each candidate folder evaluates them on val again, '
                f'{evals} evaluations in all (kd_benchmark.py --splits val '
                'test avoids it)')
        at_once = min(self.jobs, reference_cores())
        lines.append(f'estimated time: {total / 60 / at_once:.1f} min '
                     f'({self.jobs} job(s); recorded candidates are '
                     'skipped)')
        return '\n'.join(lines)

    # ................................................................ run
    def run(self) -> dict:
        """Run the search; write and return ``search.json``'s content."""
        seeds = list(range(self.seeds))
        singles = self.singles()
        self.execute(list(singles.values()))
        result = dict(self.header(), mode='grad_ratio',
                      ours_method=self.ours_method,
                      kd_decay=self.kd_decay,
                      baselines_only=self.baselines_only,
                      **self.plain_scores(next(iter(singles.values()))),
                      grids={k: [fmt_scale(r) for r in g]
                             for k, g in self.grids.items()},
                      candidates={}, chosen={})
        best = {}
        ours_singles = [] if self.baselines_only else [
            f'only_{k}' for k in self.ours]
        for method in ours_singles + self.baselines:
            cands = {r: val_means(b, method, seeds)
                     for (m, _, r), b in singles.items() if m == method}
            key = next(k for (m, k, _) in singles if m == method)
            result['candidates'][method] = {
                fmt_scale(r): v for r, v in cands.items()}
            best[method] = best_factor(cands)
            result['chosen'][f'{method}.{key}'] = best[method]
        g = None
        if not self.baselines_only:
            combined = self.combined(
                {k: best[f'only_{k}'] for k in self.ours})
            self.execute(list(combined.values()))
            cands = {g: val_means(b, self.ours_method, seeds)
                     for g, b in combined.items()}
            result['candidates']['ours'] = {
                fmt_scale(g): v for g, v in cands.items()}
            g = best_factor(cands)
            result['ours_factor'] = g
            for k in self.ours:
                result['chosen'][f'ours.{k}'] = best[f'only_{k}'] * g
        result['best'] = {
            m: dict(result['candidates'][m][fmt_scale(
                g if m == 'ours' else best[m])] or {},
                setting=fmt_scale(g if m == 'ours' else best[m]))
            for m in result['candidates']}
        result['budget'] = self.budget()
        result['grad_ratio_args'] = ' '.join(
            f'{k}={fmt_scale(v)}' for k, v in result['chosen'].items())
        result['benchmark_args'] = benchmark_args(result)
        self.write(result)
        return result


def benchmark_args(result: dict) -> str:
    """The ``kd_benchmark.py`` arguments that train the methods of a ratio
    search as it chose them (family, epochs, EMA, options, decay,
    ratios)."""
    args = [f'--family {result["family"]}']
    if result.get('epochs'):
        args.append(f'--epochs {result["epochs"]}')
    if result.get('ema'):
        args.append(f'--ema {result["ema"]}')
    opts = [f'{k}.{a}={v!r}' for k, o in result['loss_options'].items()
            for a, v in o.items()]
    if opts:
        args.append('--loss-option ' + ' '.join(opts))
    if result.get('kd_decay'):
        args.append('--kd-decay ' + ' '.join(
            f'{k}={fmt_scale(v)}' for k, v in result['kd_decay'].items()))
    args.append(f'--grad-ratio {result["grad_ratio_args"]}')
    return ' '.join(args)


def _row(name: str, v: Optional[dict], extra: str = '') -> str:
    if v is None:
        return f'| {name} |{extra} (failed) | | |'
    return (f'| {name} |{extra} {v["IDF1"]:.2f} | {v["MOTA"]:.2f} | '
            f'{v["HOTA"]:.2f} |')


def markdown(result: dict) -> str:
    """search.md: the val tables and the chosen arguments."""
    if result.get('mode') == 'grad_ratio':
        return _ratio_markdown(result)
    lines = [f'# Val-split loss-weight search ({result["preset"]} preset, '
             f'seeds {result["seeds"]})', '',
             '| run (loss-weight factor) | val IDF1 | val MOTA | val HOTA |',
             '|---|---|---|---|',
             _row('student, no KD', result['student']),
             _row('teacher', result['teacher'])]
    for key, cands in result['alone'].items():
        for x, v in cands.items():
            lines.append(_row(f'only_{key} x{x}', v))
    for g, v in result['ours'].items():
        lines.append(_row(f'ours (best factors) x{g}', v))
    lines += ['', f'Chosen: `--loss-scale {result["loss_scale_args"]}`', '']
    return '\n'.join(lines)


def _ratio_markdown(result: dict) -> str:
    budget = result['budget']
    lines = [f'# Val-split gradient-ratio search ({result["family"]}, '
             f'{result["preset"]} preset, seeds {result["seeds"]})', '',
             'Best candidate of each method (highest val IDF1, MOTA breaks '
             'ties) and the val trainings it was given (candidates x '
             'seeds; ours also builds on the trainings of our single '
             'losses):', '',
             '| method | chosen | val IDF1 | val MOTA | val HOTA | val '
             'trainings |',
             '|---|---|---|---|---|---|',
             _row('student, no KD', result['student'], ' |') + ' |',
             _row('teacher', result['teacher'], ' |') + ' |']
    ours_name = result.get('ours_method', 'ours')
    for m, v in result['best'].items():
        what = (f'x{v["setting"]} on the best ratios' if m == 'ours' else
                f'ratio {v["setting"]}')
        label = (f'ours ({ours_name})' if m == 'ours' and
                 ours_name != 'ours' else m)
        spent = str(budget[m]['trainings'])
        if 'builds_on' in budget[m]:
            spent += f' (+{budget[m]["builds_on"]})'
        lines.append(_row(label, v if 'IDF1' in v else None, f' {what} |') +
                     f' {spent} |')
    if result.get('baselines_only'):
        ours = budget['ours']
        lines += ['', f'Baselines only: `ours` and our single losses were '
                  f'not trained here; their search gives `ours` '
                  f'{ours["trainings"] + ours["builds_on"]} val trainings '
                  f'({ours["builds_on"]} of the single losses + '
                  f'{ours["trainings"]} of `ours`), as many as each '
                  'baseline above.']
    lines += ['', '| candidate | val IDF1 | val MOTA | val HOTA |',
              '|---|---|---|---|']
    for m, cands in result['candidates'].items():
        for x, v in cands.items():
            label = (f'{ours_name} x{x}' if m == 'ours' else
                     f'{m} ratio {x}')
            lines.append(_row(label, v))
    lines += ['', f'Chosen: `--grad-ratio {result["grad_ratio_args"]}`', '',
              'kd_benchmark.py arguments: '
              f'`{result["benchmark_args"]}`', '']
    return '\n'.join(lines)
