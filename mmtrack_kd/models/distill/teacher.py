"""The frozen teacher of a distiller: build, strict load, freeze, eval, how
it is held outside the distiller's modules, and what input it sees."""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from mmtrack_kd.utils.batch import fold_video_inputs
from mmtrack_kd.utils.checkpoint import CheckpointError, load_strict

from .errors import DistillConfigError


def build_frozen_teacher(teacher: Union[dict, str], teacher_ckpt: str,
                         teacher_cfg_key: str = 'model') -> nn.Module:
    """Build the teacher, load its checkpoint strictly, freeze it, eval it.

    Args:
        teacher (dict | str): Model config, or a config file path whose
            ``teacher_cfg_key`` entry is the model config
            (``id_head.num_ids='auto'`` is read from the checkpoint).
        teacher_ckpt (str): Checkpoint (a plain one, a runner one or a
            distiller's, whose student is taken).
        teacher_cfg_key (str): Key of the model in a teacher config file.

    Returns:
        nn.Module: The teacher, ``requires_grad=False``, in eval mode.

    Raises:
        DistillConfigError: naming ``teacher``, ``teacher_cfg_key`` or
            ``teacher_ckpt`` (no checkpoint, keys or shapes that differ).
        FileNotFoundError: the config or checkpoint file is missing.
    """
    from mmtrack_kd.utils.config import teacher_model_cfg
    if not teacher_ckpt:
        raise DistillConfigError(
            'teacher_ckpt: required (a trained teacher checkpoint)')
    try:
        cfg = teacher_model_cfg(teacher, teacher_ckpt, teacher_cfg_key)
    except (OSError, ValueError) as err:
        raise DistillConfigError(f'teacher: {err}') from err
    model = MODELS.build(cfg)
    try:
        load_strict(model, teacher_ckpt, key='teacher_ckpt')
    except CheckpointError as err:
        raise DistillConfigError(str(err)) from err
    model.requires_grad_(False)
    model.eval()
    return model


class TeacherBox:
    """Holds the teacher without making it a sub-module of its owner.

    The owner's ``state_dict()``, ``parameters()``, ``train()``,
    ``init_weights()`` and DDP never see it. ``deepcopy`` (e.g. an EMA copy
    of the owner) shares it instead of copying it: it is frozen.

    Args:
        module (nn.Module): The frozen teacher.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __deepcopy__(self, memo: dict) -> 'TeacherBox':
        # later references to the teacher's modules and tensors (teacher
        # recorders) resolve to the shared originals too
        for m in self.module.modules():
            memo[id(m)] = m
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            memo[id(t)] = t
        return self


def _normalisation(dp: Optional[nn.Module]
                   ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """(mean, std) of a data preprocessor that normalises, else None."""
    if dp is not None and getattr(dp, '_enable_normalize', False):
        return dp.mean.detach().clone(), dp.std.detach().clone()
    return None


class TeacherInputs(nn.Module):
    """Turn the student's pre-processed inputs into the teacher's.

    When the two data preprocessors differ, the teacher input is
    ``(flip?(x * std_s + mean_s) - mean_t) / std_t`` (``flip`` when exactly
    one of them converts BGR to RGB); otherwise the inputs pass unchanged
    (the same tensor). The statistics are non-persistent buffers: they move
    with ``.to()`` and stay out of ``state_dict()``.

    Args:
        student_dp (nn.Module, optional): The student's data preprocessor.
        teacher_dp (nn.Module, optional): The teacher's.
    """

    def __init__(self, student_dp: Optional[nn.Module],
                 teacher_dp: Optional[nn.Module]) -> None:
        super().__init__()
        self.flip = False
        self.renorm = False
        if teacher_dp is None:
            return
        self.flip = bool(getattr(student_dp, '_channel_conversion', False)) \
            != bool(getattr(teacher_dp, '_channel_conversion', False))
        s_norm = _normalisation(student_dp)
        t_norm = _normalisation(teacher_dp)
        if s_norm is None and t_norm is None:
            return  # at most a channel flip
        if s_norm is not None and t_norm is not None and not self.flip \
                and torch.equal(s_norm[0], t_norm[0]) \
                and torch.equal(s_norm[1], t_norm[1]):
            return
        if s_norm is None or t_norm is None:
            ref = (s_norm or t_norm)[0]
            one = (torch.zeros_like(ref), torch.ones_like(ref))
            s_norm, t_norm = s_norm or one, t_norm or one
        self.renorm = True
        self.register_buffer('s_mean', s_norm[0], persistent=False)
        self.register_buffer('s_std', s_norm[1], persistent=False)
        self.register_buffer('t_mean', t_norm[0], persistent=False)
        self.register_buffer('t_std', t_norm[1], persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Map student inputs (N, C, H, W) or (N, T, C, H, W) to teacher
        inputs ((N*T, C, H, W) when changed; ``inputs`` itself when not)."""
        if not self.renorm and not self.flip:
            return inputs
        x = fold_video_inputs(inputs, 'teacher inputs')
        if self.renorm:
            x = x * self.s_std + self.s_mean
        if self.flip:
            x = x.flip(1)
        if self.renorm:
            x = (x - self.t_mean) / self.t_std
        return x
