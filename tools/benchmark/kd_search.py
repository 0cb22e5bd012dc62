"""The val-split searches of the KD benchmark (command line of
:mod:`mmtrack_kd.benchmark.search`).

Both reuse the teacher and the plain students of a benchmark run
(``--reuse``, the same family, preset and data) and train, on ``--seeds``
seeds, candidates evaluated on the **val** split only; per method the
candidate of the highest val IDF1 is kept (MOTA breaks ties). The test
split is never read.

``--grad-ratios`` (the balanced protocol; every KD method balanced by
gradient ratio as ``kd_benchmark.py --grad-ratio`` does):

1. each of our losses alone (``only_id``, ``only_feat``, ``only_resp``:
   those of the family's ours) at every ratio of its ``--ratios`` grid,
   and each baseline of ``--baselines`` at every ratio of its fragment's
   grid; each baseline gets as many candidates as ``ours`` is tuned on,
   the grids of our losses plus ``--combine`` (the equal budget; anything
   else is refused);
2. ``ours`` at those best ratios times every factor of ``--combine``.

``--baselines-only`` trains the baselines alone (stage 1 without our
losses, no stage 2), on the budget the grids of our losses and
``--combine`` give: for baselines searched after ``ours``.

It prints the val trainings each method was given and the
``--grad-ratio`` arguments (``METHOD.LOSS=R``) for ``kd_benchmark.py``.

Without ``--grad-ratios`` (the unbalanced protocol), the ``loss_weight`` of
each of our losses is searched: every factor of ``--scales`` alone, then
``ours`` with the best factors times ``--combine``; it prints the
``--loss-scale`` arguments.

Both write ``OUT/search.json`` and ``OUT/search.md``. Rerunning skips what
is recorded.

Example:
    python tools/benchmark/kd_search.py --grad-ratios --reuse \
        outputs/bench_full --out outputs/ratio_search --seeds 3 \
        --ratios resp=10,20,40 feat=1,2,5 id=1,2,5 \
        1,2,3,5,7,10,15,20,30,40 \
        --baselines fitnets pkd liang_agkd atttrack --combine 1
    python tools/benchmark/kd_search.py --reuse outputs/bench_full \
        --out outputs/kd_search --scales id=1,3,10 feat=0.1,0.3,1 \
        resp=0.1,0.3,1 --combine 1
"""
import argparse
import os.path as osp
import sys

from mmtrack_kd.benchmark.cli import add_shared_options
from mmtrack_kd.benchmark.lock import RunFolderBusyError
from mmtrack_kd.benchmark.plan import (
    parse_loss_options,
    parse_loss_scale,
    parse_size_options,
)
from mmtrack_kd.benchmark.provenance import StaleRecordsError
from mmtrack_kd.benchmark.search import (
    BASELINES,
    RatioSearch,
    Search,
    markdown,
    parse_ratios,
    parse_scales,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='val-split search (gradient ratios or loss weights) '
        'for kd_benchmark.py')
    parser.add_argument('--reuse', required=True,
                        help='benchmark run folder with the trained teacher '
                        'and students')
    parser.add_argument('--out', required=True, help='search folder')
    add_shared_options(parser, 'full', kd_decay_help=' (ours.LOSS also '
                       'for the ours_no_* ablations); needs --grad-ratios; '
                       'passed to every candidate',
                       ema_help=' (passed to every candidate; --reuse must '
                       'have been run with the same)')
    parser.add_argument('--seeds', type=int, default=1,
                        help='seeds 0..N-1 of every candidate (--reuse '
                        'needs a plain student of each)')
    parser.add_argument('--grad-ratios', action='store_true',
                        help='search gradient ratios (every KD method '
                        'balanced, as kd_benchmark.py --grad-ratio) '
                        'instead of loss weights')
    parser.add_argument('--ratios', nargs='+', default=None,
                        metavar='LOSS=R1,R2',
                        help='with --grad-ratios: the ratio grid of each '
                        'searched fragment (resp=10,20,40 feat=1,2,5 '
                        'fitnets=...), plain R1,R2 for every fragment '
                        'without its own')
    parser.add_argument('--baselines', nargs='+', default=[],
                        metavar='METHOD',
                        help=f'with --grad-ratios: baselines searched with '
                        f'the same budget, some of {list(BASELINES)}')
    parser.add_argument('--baselines-only', action='store_true',
                        help='with --grad-ratios: train the baselines '
                        'alone; --ratios still gives the grids of our '
                        'losses and --combine, which set the budget each '
                        'baseline gets')
    parser.add_argument('--ours', default='ours', metavar='METHOD',
                        help='with --grad-ratios: the method searched as '
                        'ours, ours or an ablation such as ours_no_id '
                        '(its losses are the ones searched alone; the '
                        'chosen ours.LOSS ratios apply to it; default ours)')
    parser.add_argument('--scales', nargs='+', default=None,
                        help='loss-weight factors tried for each loss alone: '
                        'F1 F2 ... for all, or id=F1,F2 feat=... resp=... '
                        '(default 0.3 1 3; not with --grad-ratios)')
    parser.add_argument('--combine', type=float, nargs='+',
                        default=[1.0, 0.3],
                        help='factors on the best ones, tried for ours')
    parser.add_argument('--dry-run', action='store_true',
                        help='with --grad-ratios: print the candidates, the '
                        'val trainings per method and the time estimate '
                        'only')
    return parser.parse_args(argv)


def make_search(args):
    """The search the arguments ask for.

    Raises:
        ValueError: bad or contradicting arguments.
    """
    common = dict(family=args.family, epochs=args.epochs, ema=args.ema,
                  loss_options=parse_loss_options(args.loss_option),
                  student_size=parse_size_options(args.student_size))
    if args.grad_ratios:
        if args.scales is not None:
            raise ValueError('--scales is the loss-weight search; with '
                             '--grad-ratios give --ratios')
        if not args.ratios:
            raise ValueError('--grad-ratios needs --ratios (e.g. '
                             'resp=10,20,40 feat=1,2,5 id=1,2,5)')
        return RatioSearch(
            args.reuse, args.out, args.preset, args.seeds,
            parse_ratios(args.ratios), args.combine, args.jobs,
            args.threads, allow_stale=args.allow_stale,
            baselines=args.baselines, baselines_only=args.baselines_only,
            ours_method=args.ours, kd_decay=None if args.kd_decay is None else
            parse_loss_scale(args.kd_decay, '--kd-decay'), **common)
    for flag, value in (('--ratios', args.ratios),
                        ('--baselines', args.baselines),
                        ('--baselines-only', args.baselines_only),
                        ('--ours', args.ours != 'ours'),
                        ('--kd-decay', args.kd_decay),
                        ('--dry-run', args.dry_run)):
        if value:
            raise ValueError(f'{flag} needs --grad-ratios (baselines, '
                             'decay and the plan are of the balanced '
                             'search)')
    return Search(args.reuse, args.out, args.preset, args.seeds,
                  parse_scales(args.scales or ['0.3', '1', '3']),
                  args.combine, args.jobs, args.threads,
                  allow_stale=args.allow_stale, **common)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        search = make_search(args)
    except ValueError as err:
        print(f'kd_search: {err}', file=sys.stderr)
        return 2
    if isinstance(search, RatioSearch):
        print(search.describe(), flush=True)
        if args.dry_run:
            return 0
    try:
        result = search.run()
    except (StaleRecordsError, RunFolderBusyError) as err:
        print(f'kd_search: {err}', file=sys.stderr)
        return 2
    print(markdown(result))
    print(f'wrote {osp.join(search.out, "search.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
