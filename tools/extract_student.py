"""Extract the student of a MOTDistiller checkpoint as a plain checkpoint.

Usage:
    python tools/extract_student.py KD_CKPT OUT

Writes ``OUT`` = ``dict(meta=<KD_CKPT's meta>, state_dict=<student
weights>)`` that the student's own config loads strictly; see
:func:`mmtrack_kd.apis.extract_student`.
"""
import argparse
import sys
from typing import List, Optional

from mmtrack_kd.apis.extract import extract_student


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract the student of a MOTDistiller checkpoint.')
    parser.add_argument('kd_ckpt', help='MOTDistiller checkpoint')
    parser.add_argument('out', help='output student checkpoint')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        n = extract_student(args.kd_ckpt, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f'extract_student: {err}', file=sys.stderr)
        return 1
    print(f'wrote {n} student tensors to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
