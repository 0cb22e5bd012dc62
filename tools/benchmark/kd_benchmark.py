"""The knowledge-distillation benchmark on SynthMOT (command line of
:mod:`mmtrack_kd.benchmark`).

Trains the teacher, the student without KD and the student with every KD
method (ours, its ablations, the baselines) on identical data, schedule and
seeds, evaluates each model on the val and test splits, and writes
``results.json``, ``results.md`` and PNG plots. See docs/benchmark.md.

Example:
    python tools/benchmark/kd_benchmark.py --preset quick --seeds 1 \
        --out outputs/bench_quick
    python tools/benchmark/kd_benchmark.py --preset full --seeds 3 \
        --out outputs/bench_full --dry-run
    python tools/benchmark/kd_benchmark.py --family fairmot --preset full \
        --seeds 3 --methods ours fitnets --out outputs/bench_fairmot

Every finished (method, seed) is recorded atomically in
``OUT/records/METHOD__seedS.json`` and skipped on a rerun; a training that
was killed half-way restarts from scratch, or resumes from its last
checkpoint with ``--resume``. Records made with other code, config or data
than the current run are refused (exit 2, naming each record file) unless
``--allow-stale`` is given.
"""
import argparse
import sys
from typing import Dict

from mmtrack_kd.benchmark import (
    FRAGMENTS,
    METHODS,
    Benchmark,
    parse_loss_options,
    parse_loss_scale,
    parse_size_options,
    run_benchmark,
)
from mmtrack_kd.benchmark.cli import add_shared_options
from mmtrack_kd.benchmark.lock import RunFolderBusyError
from mmtrack_kd.benchmark.plan import (
    default_methods,
    parse_seeds_of,
    protocol_settings,
)
from mmtrack_kd.benchmark.provenance import StaleRecordsError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='KD benchmark on SynthMOT (see docs/benchmark.md)')
    add_shared_options(parser, 'quick', kd_decay_help=' (as for '
                       '--loss-scale); needs --grad-ratio')
    parser.add_argument('--seeds', type=int, default=None,
                        help='number of seeds (FIRST..FIRST+N-1; default 1, '
                        'or the protocol\'s)')
    parser.add_argument('--seeds-of', nargs='+', default=None,
                        metavar='METHOD=N',
                        help='a method\'s own number of seeds '
                        '(FIRST..FIRST+N-1), e.g. student=5 ours=5 with '
                        '--seeds 3; no KD method more than the student')
    parser.add_argument('--protocol', action='store_true',
                        help='run the preset\'s protocol (presets.yaml, '
                        'full: the README\'s 8-epoch benchmark): its '
                        'epochs, methods, seeds per method, --grad-ratio, '
                        '--loss-option and splits; an option given on the '
                        'command line replaces the protocol\'s entry')
    parser.add_argument('--first-seed', type=int, default=0,
                        metavar='FIRST',
                        help='first student seed (default 0): add seeds '
                        'to a study in a new folder; the teacher keeps '
                        'seed 0')
    parser.add_argument('--out', required=True, help='run folder')
    parser.add_argument('--methods', nargs='+', default=None,
                        help=f'subset of {list(METHODS)} (teacher and '
                        'student always run)')
    parser.add_argument('--data', default=None,
                        help='SynthMOT folder (made when missing); default '
                        'OUT/data/synthmot_quick or OUT/data/synthmot_bench')
    parser.add_argument('--loss-scale', nargs='+', default=[],
                        metavar='LOSS=FACTOR',
                        help=f'multiply the loss_weight of a loss fragment '
                        f'({", ".join(FRAGMENTS)}), e.g. id=0.3 feat=0.3; '
                        'METHOD.LOSS=FACTOR sets it for one method only '
                        '(ours.LOSS also for the ours_no_* ablations)')
    parser.add_argument('--project', nargs='+', default=[],
                        metavar='LOSS',
                        help='project the feature gradient of these '
                        'fragments\' losses (e.g. feat id) off the task\'s '
                        'and the method\'s other distillation losses\' '
                        'where they conflict, per image, on the student\'s '
                        'neck outputs (the distiller\'s grad_projection)')
    parser.add_argument('--splits', nargs='+', choices=['val', 'test'],
                        default=None,
                        help='splits to evaluate on (default: the '
                        "preset's, test)")
    parser.add_argument('--teacher-from', default=None, metavar='DIR',
                        help='reuse the teacher and the plain students of '
                        'another run folder (same preset and data)')
    parser.add_argument('--grad-ratio', nargs='+', default=None,
                        metavar='LOSS=RATIO',
                        help='balance every KD method: each loss '
                        'fragment\'s gradient norm on the student\'s neck '
                        'is kept at RATIO times the task\'s (model.'
                        'loss_balance); METHOD.LOSS=RATIO as for '
                        '--loss-scale; a fragment left out gets 1')
    parser.add_argument('--balance-interval', type=int, default=None,
                        metavar='N',
                        help='with --grad-ratio: the balancer measures the '
                        'gradient norms every N iterations (default: the '
                        "configs' 20)")
    parser.add_argument('--rescore', action='store_true',
                        help='recorded models whose thresholds were picked '
                        'on another grid: pick them again on val from the '
                        "preset's grid and evaluate every split (no "
                        'training; the record keeps the earlier choice '
                        "under 'rescored')")
    parser.add_argument('--resume', action='store_true',
                        help='resume half-finished trainings from their '
                        'last checkpoint instead of restarting them')
    parser.add_argument('--measure-costs', type=int, default=None,
                        metavar='N',
                        help='train the teacher, the student and ours of '
                        'the family and preset for N iterations each '
                        '(OUT/costs/) and print the costs entry of '
                        'presets.yaml they give; nothing else is run')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the plan and the time estimate only')
    parser.add_argument('--report-only', action='store_true',
                        help='rewrite results.json/md and the plots from '
                        'the finished records, training nothing')
    return parser.parse_args(argv)


def measure(bench: Benchmark, iters: int) -> int:
    """``--measure-costs``: time the family's teacher, student and ours
    (:func:`mmtrack_kd.benchmark.costs.measure_costs`) and print the
    result as JSON (``OUT/costs/costs.json``)."""
    import json

    from mmtrack_kd.benchmark.costs import measure_costs
    from mmtrack_kd.benchmark.lock import folder_lock
    from mmtrack_kd.benchmark.records import json_dump
    try:
        with folder_lock(bench.out):
            bench.check_family()
            result = measure_costs(bench, iters)
    except (ValueError, StaleRecordsError, RunFolderBusyError) as err:
        print(f'kd_benchmark: {err}', file=sys.stderr)
        return 2
    json_dump(result, f'{bench.out}/costs/costs.json')
    print(json.dumps(result, indent=2))
    return 0


def apply_protocol(args, seeds_of: Dict[str, int]) -> Dict[str, int]:
    """``--protocol``: fill every option of the protocol (``PROTOCOL_KEYS``
    of :mod:`mmtrack_kd.benchmark.plan`) that the command line left unset;
    returns the seeds per method (``seeds_of`` when given, else the
    protocol's)."""
    proto = protocol_settings(args.preset, args.family)
    for key, value in proto.items():
        if key != 'seeds_of' and getattr(args, key) in (None, []):
            setattr(args, key, value)
    return seeds_of or proto.get('seeds_of', {})


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        seeds_of = parse_seeds_of(args.seeds_of)
        if args.protocol:
            seeds_of = apply_protocol(args, seeds_of)
    except ValueError as err:
        print(f'kd_benchmark: {err}', file=sys.stderr)
        return 2
    methods = args.methods
    if methods is None:
        methods = default_methods(args.preset, args.family)
    try:
        bench = Benchmark(
            args.out, args.preset, 1 if args.seeds is None else args.seeds,
            methods, args.data,
            args.threads, args.resume, jobs=args.jobs,
            loss_scale=parse_loss_scale(args.loss_scale), splits=args.splits,
            teacher_from=args.teacher_from,
            loss_options=parse_loss_options(args.loss_option),
            allow_stale=args.allow_stale, epochs=args.epochs,
            grad_ratio=None if args.grad_ratio is None else
            parse_loss_scale(args.grad_ratio, '--grad-ratio'),
            kd_decay=None if args.kd_decay is None else
            parse_loss_scale(args.kd_decay, '--kd-decay'),
            family=args.family, rescore=args.rescore, project=args.project,
            first_seed=args.first_seed, ema=args.ema,
            balance_interval=args.balance_interval, seeds_of=seeds_of,
            student_size=parse_size_options(args.student_size))
    except ValueError as err:
        print(f'kd_benchmark: {err}', file=sys.stderr)
        return 2
    if args.measure_costs is not None:
        return measure(bench, args.measure_costs)
    try:
        run_benchmark(bench, dry_run=args.dry_run,
                      report_only=args.report_only)
    except (StaleRecordsError, FileNotFoundError,
            RunFolderBusyError) as err:
        print(f'kd_benchmark: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
