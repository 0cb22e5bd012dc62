"""The student of a distillation checkpoint as a plain checkpoint."""
import torch

__all__ = ['extract_student']


def extract_student(kd_ckpt: str, out: str) -> int:
    """Write the student weights of the ``MOTDistiller`` checkpoint
    ``kd_ckpt`` to ``out``.

    ``out`` holds ``dict(meta=<kd_ckpt's meta>, state_dict=<student
    weights>)`` with the ``student.`` (and ``module.``) prefix stripped and
    no teacher, connector or distillation-loss keys, so the student's own
    config loads it strictly (``load_from=out`` or
    ``mmengine.runner.load_checkpoint(model, out, strict=True)``). It is
    written to a temporary name beside ``out`` and renamed, so a crash
    never leaves a half-written ``out``.

    Args:
        kd_ckpt (str): A MOTDistiller checkpoint (runner output).
        out (str): Output checkpoint path.

    Returns:
        int: Number of tensors written.

    Raises:
        FileNotFoundError: ``kd_ckpt`` does not exist.
        ValueError: ``kd_ckpt`` has no ``student.`` keys.
    """
    from mmtrack_kd.utils.checkpoint import (
        model_state_from_checkpoint,
        read_checkpoint,
    )
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
