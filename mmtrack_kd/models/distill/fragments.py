"""The distillation config: ``distill_cfgs`` fragments merged into the
distiller's arguments (``configs/_base_/distill/*.py`` define one per loss),
and the distillation losses built from it."""
from typing import Dict, Optional, Sequence

import torch.nn as nn
from mmdet.registry import MODELS

from .errors import DistillConfigError
from .families import fill_decoders

#: The distiller arguments a fragment may hold.
FRAGMENT_KEYS = ('student_recorders', 'teacher_recorders', 'connectors',
                 'distill_losses', 'loss_forward_mappings')


def merge_distill_cfgs(fragments: Sequence[dict],
                       base: Dict[str, Optional[dict]]) -> Dict[str, dict]:
    """Merge ``distill_cfgs`` fragments into the distiller's dict arguments.

    Args:
        fragments: dicts with any of :data:`FRAGMENT_KEYS`.
        base: the explicit arguments (values may be None).

    Returns:
        dict: one plain dict per key of :data:`FRAGMENT_KEYS`.

    Raises:
        DistillConfigError: an unknown key in a fragment, or one name defined
            twice with different contents (names the key).
    """
    out = {k: dict(base.get(k) or {}) for k in FRAGMENT_KEYS}
    for i, frag in enumerate(fragments or ()):
        if not isinstance(frag, dict):
            raise DistillConfigError(
                f'distill_cfgs[{i}]: expected a dict, got {type(frag)}')
        for key, entries in frag.items():
            if key not in out:
                raise DistillConfigError(
                    f'distill_cfgs[{i}].{key}: unknown key, expected one of '
                    f'{list(FRAGMENT_KEYS)}')
            for name, value in (entries or {}).items():
                if name in out[key] and out[key][name] != value:
                    raise DistillConfigError(
                        f'distill_cfgs[{i}].{key}.{name}: defined twice with '
                        f'different contents: {out[key][name]} vs {value}')
                out[key][name] = value
    return out


def build_distill_losses(cfgs: Dict[str, dict],
                         student: nn.Module) -> nn.ModuleDict:
    """Build ``distill_losses``, decoder values left None filled from the
    student's detection head (see :func:`.families.fill_decoders`).

    Raises:
        DistillConfigError: naming ``distill_losses.<name>``.
    """
    losses = nn.ModuleDict()
    for name, cfg in fill_decoders(cfgs, student).items():
        try:
            losses[name] = MODELS.build(cfg)
        except (KeyError, TypeError, ValueError) as err:
            raise DistillConfigError(f'distill_losses.{name}: {err}') from err
    return losses
