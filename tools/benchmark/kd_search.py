"""The val-split loss-weight search of the KD benchmark (command line of
:mod:`mmtrack_kd.benchmark.search`).

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
import os.path as osp
import sys

from mmtrack_kd.benchmark.lock import RunFolderBusyError
from mmtrack_kd.benchmark.plan import preset_names
from mmtrack_kd.benchmark.provenance import StaleRecordsError
from mmtrack_kd.benchmark.search import Search, markdown, parse_scales


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='val-split loss-weight search for kd_benchmark.py')
    parser.add_argument('--reuse', required=True,
                        help='benchmark run folder with the trained teacher '
                        'and students')
    parser.add_argument('--out', required=True, help='search folder')
    parser.add_argument('--preset', default='full',
                        choices=sorted(preset_names()))
    parser.add_argument('--seeds', type=int, default=1)
    parser.add_argument('--scales', nargs='+', default=['0.3', '1', '3'],
                        help='loss-weight factors tried for each loss alone: '
                        'F1 F2 ... for all, or id=F1,F2 feat=... resp=...')
    parser.add_argument('--combine', type=float, nargs='+',
                        default=[1.0, 0.3],
                        help='factors on the best ones, tried for ours')
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--allow-stale', action='store_true',
                        help='use records made with other code, config or '
                        'data instead of refusing them')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        search = Search(args.reuse, args.out, args.preset, args.seeds,
                        parse_scales(args.scales), args.combine, args.jobs,
                        args.threads, allow_stale=args.allow_stale)
    except ValueError as err:
        print(f'kd_search: {err}', file=sys.stderr)
        return 2
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
