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
empty file means "no output").
"""
import argparse
import json
import math
import sys
from typing import List, Optional

from mmtrack_kd.datasets.mot_io import MOTFormatError
from mmtrack_kd.evaluation.mot_eval import (ALLOWED_METRICS,
                                            DISTRACTOR_CLASSES,
                                            MOT20_DISTRACTOR_CLASSES,
                                            evaluate_mot, format_table,
                                            load_mot_gt, load_mot_results)
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


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        gt = load_mot_gt(args.gt_root, args.seqs, args.gt_filename)
        results = load_mot_results(args.results_dir, list(gt))
        metrics = evaluate_mot(
            gt,
            results,
            distractor_filter=not args.no_distractor_filter,
            distractor_classes=MOT20_DISTRACTOR_CLASSES
            if args.mot20 else DISTRACTOR_CLASSES,
            metrics=args.metrics)
    except (FileNotFoundError, MOTFormatError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(format_table(metrics))
    if args.out:
        with atomic_write(args.out) as f:
            json.dump(_json_safe(metrics), f, indent=2)
        print(f'metrics written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
