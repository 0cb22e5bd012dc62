"""Evaluate MOTChallenge result files against ground truth.

Prints a per-sequence table of HOTA / CLEAR / identity metrics and writes
them as JSON ({sequence: {metric: value}, "OVERALL": {...}}; undefined values
are null).

Example:
    python tools/analysis/eval_mot.py data/MOT17/train work_dirs/results \
        --out metrics.json
    # MOT15 or ground truth without class labels:
    python tools/analysis/eval_mot.py data/MOT15/train results \
        --out metrics.json --no-distractor-filter

``GT_ROOT/SEQ/gt/gt.txt`` holds the ground truth of sequence SEQ,
``RESULTS_DIR/SEQ.txt`` the tracker output. Every sequence of GT_ROOT is
evaluated (or those given by --seqs); a missing result file is an error (an
empty file means "no output"). See
:func:`mmtrack_kd.evaluation.evaluate_mot_files`.
"""
import argparse
import json
import sys
from typing import List, Optional

from mmtrack_kd.datasets.mot_io import MOTFormatError
from mmtrack_kd.evaluation.mot_eval import (
    ALLOWED_METRICS,
    evaluate_mot_files,
    format_table,
    metrics_to_json,
)
from mmtrack_kd.utils.io import atomic_write


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='MOTChallenge evaluation (HOTA, CLEAR, identity)')
    parser.add_argument('gt_root', help='folder with SEQ/gt/gt.txt')
    parser.add_argument('results_dir', help='folder with SEQ.txt files')
    parser.add_argument('--out', help='write the metrics as JSON here')
    parser.add_argument(
        '--no-distractor-filter',
        action='store_true',
        help='ignore the class column (MOT15, pedestrian-only ground truth) '
        'instead of the MOT16/17/20 distractor preprocessing')
    parser.add_argument(
        '--mot20',
        action='store_true',
        help='MOT20 preprocessing: class 6 (non-MOT vehicle) is a distractor '
        'too')
    parser.add_argument(
        '--metrics',
        nargs='+',
        default=list(ALLOWED_METRICS),
        choices=list(ALLOWED_METRICS),
        help='metric groups to compute (default: all)')
    parser.add_argument(
        '--seqs', nargs='+', help='evaluate only these sequences')
    parser.add_argument(
        '--gt-filename',
        default='gt.txt',
        help='ground-truth file inside SEQ/gt (default: gt.txt)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        metrics = evaluate_mot_files(
            args.gt_root, args.results_dir, seqs=args.seqs,
            gt_filename=args.gt_filename,
            distractor_filter=not args.no_distractor_filter,
            mot20=args.mot20, metrics=args.metrics)
    except (FileNotFoundError, MOTFormatError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(format_table(metrics))
    if args.out:
        with atomic_write(args.out) as f:
            json.dump(metrics_to_json(metrics), f, indent=2)
        print(f'metrics written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
