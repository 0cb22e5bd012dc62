"""Cost of a KD training step against the plain student step.

Example:
    python tools/benchmark/kd_step_overhead.py \
        configs/kd/cstrack_s2n_kd_synthmot.py --iters 10 \
        --cfg-options model.teacher_ckpt=work_dirs/s/epoch_12.pth

On one training batch of the config, in one process, interleaved, after
one untimed warm-up of each: ``student`` (``student.loss`` + backward),
``kd`` (``MOTDistiller.loss`` + backward) and ``teacher`` (the teacher's
tensor forward under ``no_grad``). Prints the median times and the ratios
``kd / student`` and ``(kd - teacher) / student`` (the overhead beyond the
teacher's forward), then the parts of the KD step (recorders, batch data,
each connector and each loss, forward and backward) timed alone. See
:mod:`mmtrack_kd.apis.speed`.

Then, on a second build of the same model and batch, the parts timed
inside real KD steps (:func:`time_in_step`): each part of
``MOTDistiller.loss`` wrapped by a timer, the backward, and the student
step's forward and backward beside it, so that what the parts timed alone
leave out (``in_step.other``: the distiller's own work between the parts)
and the backward's extra over the student's (``in_step.backward_extra``)
show; and the gradient balancer (``loss_balance``): its measurement on the
iterations it measures (every ``interval``-th; the median KD step above is
one that does not), and that cost spread over ``interval`` iterations.
``overhead_beyond_teacher_amortised`` adds it to the overhead.

The process keeps freed memory as ``tools/train.py`` sets it
(:func:`mmtrack_kd.utils.malloc.retain_freed_memory`);
``--release-memory`` measures with glibc's default instead.

With ``--out FILE`` the report is also written as JSON (key
``overhead_beyond_teacher``: a fraction of a student step, from the
three steps' medians; ``overhead_paired``: the median of each iteration's
own overhead, the three steps of an iteration timed back to back, which a
slow spell of the machine moves less; ``times_ms``: every timed call;
``in_step``,
``balancer``, ``overhead_beyond_teacher_amortised``,
``retain_freed_memory`` and ``random_teacher`` beside it).
The steps timed are training's after the connectors' warm-up
(``detach_iters``, ended before timing; JSON ``steady_state``);
``--warmup-phase`` times those of the warm-up instead, where the feature
losses' gradients stop at the connectors.
``--random-teacher`` times the step with a teacher of random weights, for
configs whose teacher is not trained yet (the MOT17 ones). The ratio moves
by several points from one process to the next (the student step's time
does, by up to 10 %, on the same machine): ``--processes N`` runs the whole
measurement in N fresh processes and reports the median and the range,
and the mean over the processes with its 95 % t interval (JSON
``overhead_ci95``; ``--target 0.10`` says whether each interval lies below
that overhead, above it, or across it). With
``--profile FILE`` a ``torch.profiler`` table of a few KD steps (operators
by self CPU time) is written to FILE.
"""
import argparse
import contextlib
import os.path as osp
import statistics
import sys
import tempfile
from typing import Callable, Dict, Iterator, List, Optional

import torch
from mmengine.config import DictAction

from mmtrack_kd.apis.speed import (
    CLOCKS,
    build_distiller_batch,
    format_step_overhead,
    measure_kd_step_overhead,
    step_overhead_json,
    write_json,
)
from mmtrack_kd.utils.malloc import retain_freed_memory


def parse_args(argv=None):
    # no abbreviations: the processes of --processes get the options
    # spelled out (see _one_process_argv)
    parser = argparse.ArgumentParser(
        description='KD training-step overhead vs the student step',
        allow_abbrev=False)
    parser.add_argument('config', help='a MOTDistiller config')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--out', metavar='FILE.json',
                        help='also write the report as JSON')
    parser.add_argument('--profile', metavar='FILE.txt',
                        help='write a torch.profiler table of KD steps')
    parser.add_argument('--release-memory', action='store_true',
                        help="glibc's default malloc (freed memory back to "
                        'the OS between steps) instead of what tools/train.py '
                        'sets (see mmtrack_kd.utils.malloc)')
    parser.add_argument('--warmup-phase', action='store_true',
                        help="time the steps of the connectors' warm-up "
                        '(their first detach_iters iterations, the feature '
                        "losses' gradients stopping at them) instead of "
                        "training's steps after it")
    parser.add_argument('--random-teacher', action='store_true',
                        help='time with a teacher of random weights (seed 0; '
                        'its checkpoint written to a temporary folder) '
                        'instead of model.teacher_ckpt: for configs whose '
                        'teacher is not trained yet, e.g. the MOT17 ones')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='wall: elapsed time (default); cpu: CPU time '
                        'of the process, steadier on a shared machine')
    parser.add_argument('--processes', type=int, default=1, metavar='N',
                        help='measure in N fresh processes, one after the '
                        'other, and report the median overhead and its '
                        'range (the ratio moves by several points from one '
                        'process to the next), and the mean over the '
                        'processes with its 95 %% t interval')
    parser.add_argument('--target', type=float, default=None,
                        metavar='FRACTION',
                        help='with --processes: say whether each 95 %% '
                        'interval lies below, above or across this overhead '
                        '(a fraction of a student step, e.g. 0.10)')
    return parser.parse_args(argv)


@contextlib.contextmanager
def _timers(model, now: Callable[[], float],
            acc: Dict[str, float]) -> Iterator[None]:
    """Wrap the parts of ``MOTDistiller.loss`` by timers that add their
    seconds to ``acc``: ``teacher_forward`` (with its recorders),
    ``batch_data``, ``student_loss`` (with its recorders), ``connectors``,
    ``loss.NAME`` and ``balancer`` (its measurement) / ``balance`` (the
    rest of the balancing: scaling and logs). Removed on exit."""
    from mmtrack_kd.models.distill import distiller

    def timed(key: str, fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            t0 = now()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[key] = acc.get(key, 0.0) + now() - t0
        return wrapped

    module_fns = dict(teacher_forward='tensor_forward',
                      batch_data='collect_batch_data',
                      connectors='apply_connectors')
    saved = {name: getattr(distiller, name) for name in module_fns.values()}
    instances = [(model.student, 'loss', 'student_loss'),
                 (model, '_balanced', 'balance')]
    instances += [(loss, 'forward', f'loss.{name}')
                  for name, loss in model.distill_losses.items()]
    if model.loss_balance is not None:
        instances.append((model.loss_balance, 'forward', 'balancer'))
    try:
        for key, name in module_fns.items():
            setattr(distiller, name, timed(key, saved[name]))
        for obj, attr, key in instances:
            setattr(obj, attr, timed(key, getattr(obj, attr)))
        yield
    finally:
        for name, fn in saved.items():
            setattr(distiller, name, fn)
        for obj, attr, _ in instances:
            vars(obj).pop(attr, None)  # back to the class's method


def time_in_step(model, inputs: torch.Tensor, data_samples, iters: int,
                 clock: str = 'wall') -> Dict[str, List[float]]:
    """Seconds of each part of real KD steps, beside student steps.

    ``iters`` KD steps on which the balancer (if any) does not measure and,
    interleaved, ``iters`` student steps, after one untimed warm-up of each;
    then, with a balancer, ``iters`` KD steps on which it measures. The
    balancer's counter is set before each step and put back after.

    Returns:
        dict[str, list[float]]: the parts of :func:`_timers` (KD steps on
        which the balancer does not measure), ``forward`` (all of
        ``MOTDistiller.loss``), ``backward``, ``other`` (``forward`` less
        its parts: the distiller's own work), ``student.forward`` and
        ``student.backward``; with a balancer, ``balancer.measure`` (the
        balancer on the steps where it measures).
    """
    now = CLOCKS[clock]
    balancer = model.loss_balance
    step0 = None if balancer is None else balancer.step.clone()
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()

    def one(kind: str) -> Dict[str, float]:
        acc: Dict[str, float] = {}
        if balancer is not None:  # due: a multiple of the interval
            balancer.step.fill_(balancer.interval if kind == 'measure' else
                                balancer.interval + 1)
        fwd = model.loss if kind != 'student' else model.student.loss
        with _timers(model, now, acc):
            t0 = now()
            losses = fwd(inputs, data_samples)
            t1 = now()
            total = sum(v.sum() for k, v in losses.items()
                        if k.startswith('loss') and
                        isinstance(v, torch.Tensor))
            total.backward()
            t2 = now()
        for p in params:
            p.grad = None
        if kind == 'student':
            return {'student.forward': t1 - t0, 'student.backward': t2 - t1}
        if kind == 'measure':
            return {'balancer.measure': acc.get('balancer', 0.0)}
        acc.pop('balancer', None)  # it only counts the step
        acc.update(forward=t1 - t0, backward=t2 - t1)
        acc['other'] = acc['forward'] - sum(
            v for k, v in acc.items() if k not in ('forward', 'backward'))
        return acc

    kinds = ['kd', 'student'] + (['measure'] if balancer is not None else [])
    times: Dict[str, List[float]] = {}
    try:
        for kind in kinds:  # warm-up
            one(kind)
        for i in range(iters):
            for kind in (kinds if i % 2 == 0 else kinds[::-1]):
                for key, seconds in one(kind).items():
                    times.setdefault(key, []).append(seconds)
    finally:
        if balancer is not None:
            balancer.step.copy_(step0)
    return times


def in_step_report(times: Dict[str, List[float]], student_s: float,
                   overhead: float, balancer) -> dict:
    """The ``in_step`` and ``balancer`` parts of the JSON report.

    Args:
        times (dict): :func:`time_in_step`'s result.
        student_s (float): the median student step (seconds) of the main
            measurement, the unit of the shares.
        overhead (float): the main measurement's
            ``overhead_beyond_teacher``.
        balancer (GradientBalancer | None): the model's balancer.

    Returns:
        dict: ``in_step`` (part -> ``dict(median_ms, share_of_student)``,
        ``backward_extra``: KD backward less the student's), and with a
        balancer ``balancer`` (``interval``, ``measure_ms``: its
        measurement on a measured iteration, ``amortised_ms`` = that /
        ``interval``, ``share_of_student``) and
        ``overhead_beyond_teacher_amortised`` (the overhead plus that
        share; the main median KD step is one without the measurement
        when ``interval`` > 2, and is every step's at 1).
    """
    med = {k: statistics.median(v) for k, v in times.items()}
    measure = med.pop('balancer.measure', None)
    med['backward_extra'] = med['backward'] - med['student.backward']
    doc = dict(in_step={
        k: dict(median_ms=1e3 * v, share_of_student=v / student_s)
        for k, v in med.items()})
    if balancer is not None and measure is not None:
        amortised = measure / balancer.interval
        doc['balancer'] = dict(
            interval=balancer.interval, measure_ms=1e3 * measure,
            amortised_ms=1e3 * amortised,
            share_of_student=amortised / student_s)
        # interval 1: every KD step measured, the median one included
        doc['overhead_beyond_teacher_amortised'] = overhead + (
            amortised / student_s if balancer.interval > 1 else 0.0)
    return doc


def format_in_step(doc: dict) -> str:
    """The printed part of :func:`in_step_report`."""
    lines = ['parts timed inside KD steps (medians; share of the student '
             'step):']
    for name, part in doc['in_step'].items():
        lines.append(f'  {name:<32} {part["median_ms"]:8.2f} ms '
                     f'{100 * part["share_of_student"]:6.2f} %')
    bal = doc.get('balancer')
    if bal:
        lines.append(
            f'gradient balancer: {bal["measure_ms"]:.1f} ms on a measured '
            f'iteration, every {bal["interval"]}: {bal["amortised_ms"]:.2f}'
            f' ms a step ({100 * bal["share_of_student"]:.2f} % of a '
            f'student step)')
        lines.append(
            f'overhead beyond the teacher forward with the balancer '
            f'amortised: {doc["overhead_beyond_teacher_amortised"]:+.3f}')
    return '\n'.join(lines)


def profile_kd_steps(model, inputs, data_samples, path: str,
                     steps: int = 3) -> None:
    """Write a ``torch.profiler`` table (operators by self CPU time) of
    ``steps`` KD steps (loss and backward), after one warm-up."""
    from torch.profiler import ProfilerActivity, profile
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()

    def step():
        losses = model.loss(inputs, data_samples)
        sum(v.sum() for k, v in losses.items()
            if k.startswith('loss') and isinstance(v, torch.Tensor)
            ).backward()
        for p in params:
            p.grad = None

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    with open(path, 'w') as f:
        f.write(f'{steps} KD steps\n')
        f.write(prof.key_averages().table(sort_by='self_cpu_time_total',
                                          row_limit=60))
        f.write('\n')


def random_teacher(config: str, cfg_options, path: str) -> str:
    """Write a checkpoint of ``config``'s teacher with random weights (seed
    0) to ``path``; an ``'auto'`` ``num_ids`` of its ID head is counted
    from the config's training annotations, as the student's is. The
    teacher's weights do not change the work of a step, only which priors
    the response loss keeps."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmtrack_kd  # noqa: F401
    from mmtrack_kd.utils import load_config
    from mmtrack_kd.utils.config import count_identities, train_ann_file
    cfg = load_config(config, cfg_options)
    teacher = cfg.model.get('teacher')
    if teacher is None:
        raise ValueError(f'{config}: model.teacher is not set (a '
                         'MOTDistiller config)')
    if isinstance(teacher, str):
        teacher = Config.fromfile(teacher)[cfg.model.get(
            'teacher_cfg_key', 'model')]
    head = teacher.get('id_head')
    if head is not None and head.get('num_ids', 'auto') in (None, 'auto'):
        head['num_ids'] = count_identities(train_ann_file(cfg))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(0)
    model = MODELS.build(teacher)
    torch.save({'state_dict': model.state_dict(),
                'meta': dict(random_teacher=True)}, path)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        print(f'kd_step_overhead: config file not found: {args.config}',
              file=sys.stderr)
        return 2
    if args.iters < 1:
        print('kd_step_overhead: --iters must be >= 1', file=sys.stderr)
        return 2
    if args.processes < 1:
        print('kd_step_overhead: --processes must be >= 1', file=sys.stderr)
        return 2
    if args.target is not None and args.processes < 2:
        print('kd_step_overhead: --target needs --processes >= 2 (its '
              'interval is over the processes)', file=sys.stderr)
        return 2
    command = ['python', 'tools/benchmark/kd_step_overhead.py'] + list(
        sys.argv[1:] if argv is None else argv)
    if args.processes > 1:
        return measure_in_processes(
            args, list(sys.argv[1:] if argv is None else argv), command)
    # as tools/train.py runs a training, unless told otherwise
    retained = False if args.release_memory else retain_freed_memory()
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_teacher:
            args.cfg_options = dict(args.cfg_options or {})
            args.cfg_options['model.teacher_ckpt'] = random_teacher(
                args.config, args.cfg_options, osp.join(tmp, 'teacher.pth'))
        return measure(args, command, retained)


def _one_process_argv(argv: List[str], out: str) -> List[str]:
    """``argv`` without ``--processes``, ``--out``, ``--profile`` and
    ``--target`` (and their values), for one process that writes its JSON
    to ``out``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split('=', 1)[0]
        if name in ('--processes', '--out', '--profile', '--target'):
            skip = '=' not in arg
            continue
        kept.append(arg)
    return kept + ['--processes', '1', '--out', out]


def measure_in_processes(args, argv: List[str], command: List[str]) -> int:
    """Run the measurement in ``args.processes`` fresh processes, one after
    the other; print each one's overhead, then the median and the range.
    The JSON (``--out``) is the document of the process whose overhead is
    the median (the lower middle one for an even count), with
    ``overhead_beyond_teacher`` the median over the processes,
    ``overhead_beyond_teacher_range`` (min, max), ``overhead_ci95``
    (:func:`process_intervals`), ``processes`` (each
    process's overhead, amortised overhead and step medians) and the
    command of the whole run."""
    import json
    import shlex
    import subprocess
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.processes):
            out = osp.join(tmp, f'run{i}.json')
            proc = subprocess.run(
                [sys.executable, osp.abspath(__file__)] +
                _one_process_argv(argv, out), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            if proc.returncode != 0:
                print(proc.stdout, file=sys.stderr)
                print(f'kd_step_overhead: process {i + 1} of '
                      f'{args.processes} failed (exit {proc.returncode})',
                      file=sys.stderr)
                return proc.returncode or 1
            with open(out) as f:
                runs.append(json.load(f))
            doc = runs[-1]
            print(f'process {i + 1}/{args.processes}: overhead beyond the '
                  f'teacher forward {doc["overhead_beyond_teacher"]:+.3f} '
                  f'(student {doc["median_ms"]["student"]:.1f} ms, kd '
                  f'{doc["median_ms"]["kd"]:.1f}, teacher '
                  f'{doc["median_ms"]["teacher"]:.1f})', flush=True)
    values = [r['overhead_beyond_teacher'] for r in runs]
    order = sorted(range(len(runs)), key=values.__getitem__)
    middle = runs[order[(len(runs) - 1) // 2]]
    median = statistics.median(values)
    paired = [r['overhead_paired'] for r in runs]
    print(f'median over {len(runs)} processes: {median:+.3f} (range '
          f'{min(values):+.3f} to {max(values):+.3f}); of the iterations\' '
          f'own overheads: {statistics.median(paired):+.3f} (range '
          f'{min(paired):+.3f} to {max(paired):+.3f})')
    intervals = process_intervals(runs)
    print(format_intervals(intervals, args.target))
    if args.out:
        doc = dict(middle)
        doc.update(
            overhead_beyond_teacher=median,
            overhead_beyond_teacher_range=[min(values), max(values)],
            overhead_note=f'median over {len(runs)} processes; the other '
            'keys are those of the median process',
            overhead_paired_median=statistics.median(
                r['overhead_paired'] for r in runs),
            overhead_ci95=intervals,
            processes=[dict(
                overhead_beyond_teacher=r['overhead_beyond_teacher'],
                overhead_paired=r['overhead_paired'],
                overhead_beyond_teacher_amortised=r.get(
                    'overhead_beyond_teacher_amortised'),
                median_ms=r['median_ms'], load_average=r.get('load_average'))
                for r in runs],
            command=shlex.join(command))
        write_json(doc, args.out)
    return 0


#: the readings of each process whose mean over the processes
#: :func:`process_intervals` reports
READINGS = ('overhead_beyond_teacher', 'overhead_paired',
            'overhead_beyond_teacher_amortised')


def process_intervals(runs: List[dict]) -> dict:
    """For each reading of :data:`READINGS` that every process has: the
    mean over the processes and its 95 % t interval (``n``, ``mean``,
    ``low``, ``high``; nan limits for one process). Each process is a fresh
    start of the same measurement, so the interval says where the
    machine's mean lies, which a target can be checked against."""
    from mmtrack_kd.benchmark.stats import paired_test
    out = {}
    for key in READINGS:
        values = [r.get(key) for r in runs]
        if any(v is None for v in values):
            continue
        t = paired_test(values)
        out[key] = dict(n=t['n'], mean=t['mean_diff'], low=t['ci95_low'],
                        high=t['ci95_high'])
    return out


def format_intervals(intervals: dict, target: Optional[float]) -> str:
    """The printed lines of :func:`process_intervals`; with ``target``,
    whether each interval lies below it."""
    lines = ['mean over the processes, 95 % t interval:']
    for key, t in intervals.items():
        line = (f'  {key:<36} {t["mean"]:+.3f} [{t["low"]:+.3f}, '
                f'{t["high"]:+.3f}]')
        if target is not None:
            if t['high'] < target:
                verdict = 'below'
            elif t['low'] > target:
                verdict = 'above'
            else:
                verdict = 'not resolved from'
            line += f' ({verdict} the target {target:+.3f})'
        lines.append(line)
    return '\n'.join(lines)


def measure(args, command: List[str], retained: bool) -> int:
    """Time, print and write what ``args`` ask for (see :func:`main`)."""
    steady = not args.warmup_phase
    result = measure_kd_step_overhead(args.config, args.iters,
                                      args.cfg_options, args.threads,
                                      clock=args.clock, steady=steady)
    print(format_step_overhead(result))
    # a fresh build: the same weights and batch (seeded)
    model, inputs, samples = build_distiller_batch(
        args.config, args.cfg_options, steady=steady)
    extra = in_step_report(
        time_in_step(model, inputs, samples, args.iters, args.clock),
        result['median']['student'], result['overhead_beyond_teacher'],
        model.loss_balance)
    print(format_in_step(extra))
    if args.out:
        doc = step_overhead_json(result, command)
        doc.update(extra)
        doc['retain_freed_memory'] = retained
        doc['random_teacher'] = bool(args.random_teacher)
        write_json(doc, args.out)
    if args.profile:
        profile_kd_steps(model, inputs, samples, args.profile)
    return 0


if __name__ == '__main__':
    sys.exit(main())
