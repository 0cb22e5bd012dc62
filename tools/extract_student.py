"""Extract the student of a MOTDistiller checkpoint as a plain checkpoint.

Usage:
    python tools/extract_student.py KD_CKPT OUT

Writes ``OUT`` = ``dict(meta=<KD_CKPT's meta>, state_dict=<student weights>)``
with the ``student.`` prefix stripped and no teacher, connector or
distillation-loss keys, so the student's own config loads it strictly
(``load_from=OUT`` or ``mmengine.runner.load_checkpoint(model, OUT,
strict=True)``). The file is written to a temporary name beside ``OUT`` and
renamed, so a crash never leaves a half-written ``OUT``.
"""
import argparse
import sys
from typing import List, Optional

import torch


def extract_student(kd_ckpt: str, out: str) -> int:
    """Write the student weights of ``kd_ckpt`` to ``out``.

    Args:
        kd_ckpt (str): A MOTDistiller checkpoint (runner output).
        out (str): Output checkpoint path.

    Returns:
        int: Number of tensors written.

    Raises:
        ValueError: ``kd_ckpt`` has no ``student.`` keys.
    """
    from mmtrack_kd.models.distill.checkpoint import (
        model_state_from_checkpoint, read_checkpoint)
    from mmtrack_kd.utils.io import atomic_write
    ckpt = read_checkpoint(kd_ckpt, key='KD_CKPT')
    state = ckpt.get('state_dict', ckpt)
    if not any(k.startswith(('student.', 'module.student.')) for k in state):
        raise ValueError(f'{kd_ckpt}: no "student." keys; is it a '
                         f'MOTDistiller checkpoint?')
    # ``module.`` and ``student.`` stripped, teacher/connector keys dropped
    student = model_state_from_checkpoint(ckpt)
    result = dict(state_dict=student)
    if 'meta' in ckpt:
        result['meta'] = ckpt['meta']
    with atomic_write(out, 'wb') as f:
        torch.save(result, f)
    return len(student)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Extract the student of a MOTDistiller checkpoint.')
    parser.add_argument('kd_ckpt', help='MOTDistiller checkpoint')
    parser.add_argument('out', help='output student checkpoint')
    args = parser.parse_args(argv)
    try:
        n = extract_student(args.kd_ckpt, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f'extract_student: {err}', file=sys.stderr)
        return 1
    print(f'wrote {n} student tensors to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
