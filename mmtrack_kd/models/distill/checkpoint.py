"""Checkpoint reading and strict teacher loading for distillation."""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Any, Dict, List

import torch
import torch.nn as nn

from .errors import DistillConfigError


def read_checkpoint(filename: str, key: str = 'teacher_ckpt') -> Dict:
    """Read a checkpoint with mmengine's loader (local file, URL, ...).

    mmengine 0.10 calls ``torch.load`` without ``weights_only``, which torch
    >= 2.6 turns on by default; a runner checkpoint (message hub, schedulers)
    then fails to unpickle. For a local file we then read it again with
    ``weights_only=False``: the file is the user's own training output.

    Args:
        filename (str): Path or URL.
        key (str): Config key of the path, named in errors.

    Returns:
        dict: The loaded checkpoint.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    if '://' not in str(filename) and not osp.isfile(filename):
        raise FileNotFoundError(f'{key}: checkpoint file {filename!r} '
                                f'does not exist')
    try:
        ckpt = _load_checkpoint(filename, map_location='cpu')
    except pickle.UnpicklingError:
        if '://' in str(filename):
            raise
        ckpt = torch.load(filename, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, dict):
        raise DistillConfigError(
            f'{key}: {filename!r} holds a {type(ckpt).__name__}, '
            f'not a state dict')
    return ckpt


def model_state_from_checkpoint(ckpt: Dict) -> 'OrderedDict[str, Any]':
    """Return the model weights of a checkpoint as a plain state dict.

    Accepts a bare state dict or one nested under ``state_dict``; strips a
    DDP ``module.`` prefix; when keys are prefixed ``student.`` (a
    :class:`MOTDistiller` checkpoint) keeps only those, without the prefix.
    """
    state = ckpt.get('state_dict', ckpt)
    state = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items())
    if any(k.startswith('student.') for k in state):
        state = OrderedDict((k[len('student.'):], v)
                            for k, v in state.items()
                            if k.startswith('student.'))
    return state


def _short(keys: List[str], limit: int = 20) -> str:
    text = ', '.join(keys[:limit])
    if len(keys) > limit:
        text += f', ... ({len(keys) - limit} more)'
    return text


def load_strict(model: nn.Module, filename: str,
                key: str = 'teacher_ckpt') -> None:
    """Load ``filename`` into ``model``; every key and shape must match.

    Args:
        model (nn.Module): The model (e.g. the teacher).
        filename (str): Checkpoint path (see :func:`read_checkpoint`).
        key (str): Config key of the path, named in errors.

    Raises:
        FileNotFoundError: no such file.
        DistillConfigError: missing, unexpected or mis-shaped keys, all
            listed with the file name.
    """
    from mmengine.runner.checkpoint import load_state_dict
    state = model_state_from_checkpoint(read_checkpoint(filename, key))
    own = model.state_dict()
    missing = [k for k in own if k not in state
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f'{k} (checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(own[k].shape)})' for k in own
        if k in state and hasattr(state[k], 'shape')
        and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f'missing keys: {_short(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {_short(unexpected)}')
    if shapes:
        problems.append(f'shape mismatch: {_short(shapes)}')
    if problems:
        raise DistillConfigError(
            f'{key}: {filename!r} does not match {type(model).__name__} '
            f'exactly; ' + '; '.join(problems))
    load_state_dict(model, state, strict=True)
