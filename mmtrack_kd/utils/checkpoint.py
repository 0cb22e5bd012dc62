"""The one checkpoint reader of the project.

Every tool and model that reads a checkpoint goes through
:func:`read_checkpoint` (the file as a dict) and
:func:`model_state_from_checkpoint` (its model weights as a plain state
dict); :func:`load_strict` loads them into a model with every key and shape
checked. Errors have one style: they name the config key or argument the
path came from (when given), the file, and what is wrong::

    teacher_ckpt: checkpoint file not found: work_dirs/t/epoch_3.pth
    checkpoint work_dirs/kd/epoch_3.pth: holds a list, not a dict
"""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn


class CheckpointError(ValueError):
    """A checkpoint file does not hold what is needed; the message names the
    file (and the config key of its path, when known) and what is wrong."""


def _prefix(key: Optional[str]) -> str:
    return f'{key}: ' if key else ''


def checkpoint_error(filename: str, problem: str,
                     key: Optional[str] = None) -> CheckpointError:
    """A :class:`CheckpointError` in the project's one style:
    ``'<key>: checkpoint <filename>: <problem>'``."""
    return CheckpointError(f'{_prefix(key)}checkpoint {filename}: {problem}')


def read_checkpoint(filename: str, key: Optional[str] = None) -> Dict:
    """Read a checkpoint with mmengine's loader (local file, URL, ...).

    mmengine 0.10 calls ``torch.load`` without ``weights_only``, which torch
    >= 2.6 turns on by default; a runner checkpoint (message hub, schedulers)
    then fails to unpickle. For a local file we then read it again with
    ``weights_only=False``: the file is the user's own training output.

    Args:
        filename (str): Path or URL.
        key (str, optional): Config key or argument the path came from,
            named in errors (e.g. ``'teacher_ckpt'``).

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: ``'<key>: checkpoint file not found: <file>'``.
        CheckpointError: the file does not hold a dict.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    filename = str(filename)
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(
            f'{_prefix(key)}checkpoint file not found: {filename}')
    try:
        ckpt = _load_checkpoint(filename, map_location='cpu')
    except pickle.UnpicklingError:
        if '://' in filename:
            raise
        ckpt = torch.load(filename, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, dict):
        raise checkpoint_error(
            filename, f'holds a {type(ckpt).__name__}, not a state dict',
            key)
    return ckpt


def model_state_from_checkpoint(
        ckpt: Dict,
        student: bool = True,
        filename: str = '<checkpoint>') -> 'OrderedDict[str, Any]':
    """Return the model weights of a checkpoint as a plain state dict.

    Accepts a bare state dict or one nested under ``state_dict``; strips a
    DDP ``module.`` prefix. With ``student=True``, when keys are prefixed
    ``student.`` (a ``MOTDistiller`` checkpoint) keeps only those, without
    the prefix; with ``student=False`` they are returned as they are.

    Args:
        ckpt (dict): A checkpoint from :func:`read_checkpoint`.
        student (bool): Take the student of a distiller checkpoint.
        filename (str): The file it came from, named in errors.

    Returns:
        OrderedDict: parameter name -> tensor.

    Raises:
        CheckpointError: ``state_dict`` is not a dict.
    """
    state = ckpt.get('state_dict', ckpt)
    if not isinstance(state, dict):
        raise checkpoint_error(
            filename, 'not a model checkpoint (its state_dict is a '
            f'{type(state).__name__})')
    state = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items())
    if student and any(k.startswith('student.') for k in state):
        state = OrderedDict((k[len('student.'):], v)
                            for k, v in state.items()
                            if k.startswith('student.'))
    return state


def is_distiller_state(state: Dict[str, Any]) -> bool:
    """bool: the state dict is a ``MOTDistiller``'s (``student.`` keys)."""
    return any(k.startswith('student.') for k in state)


def _short(keys: List[str], limit: int = 20) -> str:
    text = ', '.join(keys[:limit])
    if len(keys) > limit:
        text += f', ... ({len(keys) - limit} more)'
    return text


def state_mismatches(model: nn.Module, state: Dict[str, Any]) -> List[str]:
    """What keeps ``state`` from loading strictly into ``model``.

    Returns:
        list[str]: ``'missing keys: ...'``, ``'unexpected keys: ...'`` and
        ``'shape mismatch: ...'`` entries, empty when it fits. BatchNorm's
        ``num_batches_tracked`` may be missing.
    """
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
    return problems


def load_strict(model: nn.Module, filename: str,
                key: Optional[str] = None) -> None:
    """Load ``filename`` into ``model``; every key and shape must match.

    A distiller checkpoint loads its student (see
    :func:`model_state_from_checkpoint`).

    Args:
        model (nn.Module): The model (e.g. a distiller's teacher).
        filename (str): Checkpoint path (see :func:`read_checkpoint`).
        key (str, optional): Config key of the path, named in errors.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: missing, unexpected or mis-shaped keys, all listed
            with the file name.
    """
    from mmengine.runner.checkpoint import load_state_dict
    state = model_state_from_checkpoint(
        read_checkpoint(filename, key), filename=filename)
    problems = state_mismatches(model, state)
    if problems:
        raise checkpoint_error(
            filename, f'does not match {type(model).__name__} exactly; ' +
            '; '.join(problems), key)
    load_state_dict(model, state, strict=True)
