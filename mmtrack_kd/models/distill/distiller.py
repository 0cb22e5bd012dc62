"""MOTDistiller: train a student tracker with a frozen teacher's features.

Config example (student CSTrack-S, teacher CSTrack-L)::

    _base_ = ['../cstrack/cstrack_yolov5s_synthmot.py']
    teacher = 'configs/cstrack/cstrack_yolov5l_synthmot.py'
    model = dict(
        _delete_=True,
        type='MOTDistiller',
        student=_base_.model,
        teacher=teacher,                    # or a model config dict
        teacher_ckpt='work_dirs/cstrack_l/epoch_30.pth',
        student_recorders=dict(
            neck=dict(type='ModuleOutputsRecorder', source='neck'),
            id_map=dict(type='ModuleOutputsRecorder', source='id_head')),
        teacher_recorders=dict(
            neck=dict(type='ModuleOutputsRecorder', source='neck'),
            id_map=dict(type='ModuleOutputsRecorder', source='id_head')),
        connectors=dict(  # channels inferred
            neck_s0=dict(type='ConvBNConnector'),
            neck_s1=dict(type='ConvBNConnector'),
            neck_s2=dict(type='ConvBNConnector')),
        distill_losses=dict(
            kd_feat=dict(type='KeyFeatureLoss', loss_weight=1.0),
            kd_id=dict(type='IDResponseConsistencyLoss', loss_weight=1.0)),
        loss_forward_mappings=dict(
            kd_feat=dict(
                preds_S=dict(from_student=True, recorder='neck',
                             connector=['neck_s0', 'neck_s1', 'neck_s2']),
                preds_T=dict(from_student=False, recorder='neck'),
                gt_bboxes=dict(from_data='gt_bboxes'),
                batch_input_shape=dict(from_data='batch_input_shape')),
            kd_id=dict(
                preds_S=dict(from_student=True, recorder='id_map',
                             allow_channel_mismatch=True),
                preds_T=dict(from_student=False, recorder='id_map'),
                gt_bboxes=dict(from_data='gt_bboxes'),
                batch_input_shape=dict(from_data='batch_input_shape'))))

This logs ``loss_kd_feat`` and ``loss_kd_id`` beside the student's losses.

Where things live: the teacher (build, strict load, freeze, input
renormalisation) in :mod:`.teacher`; the build-time dry run, connector
channel inference and channel checks in :mod:`.channels`; what depends on
the tracker family (tensor forward, detection head, decoder values) in
:mod:`.families`, with the response decoders in ``TASK_UTILS``
(:mod:`mmtrack_kd.models.task_modules.response_decoders`); the mapping
checks and batch data in :mod:`.mappings`; the stop of distillation at an
iteration or epoch in :class:`mmtrack_kd.engine.DistillStopHook`.
"""
from typing import Any, Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModel

from ..layers.window_pool import use_window_max_pools
from .balance import build_balancer, summed
from .channels import build_checked_connectors, dry_run, student_loss_names
from .connectors import apply_connectors
from .errors import DistillConfigError
from .families import fill_decoders, tensor_forward
from .fragments import build_distill_losses, merge_distill_cfgs
from .mappings import (
    ArgSpec,
    check_connectors_used,
    check_loss_forward_mappings,
    collect_batch_data,
    log_name_clash,
    loss_log_names,
    recorded_value,
)
from .projection import build_projector
from .recorders import RecorderManager
from .teacher import TeacherBox, TeacherInputs, build_frozen_teacher

__all__ = ['MOTDistiller', 'tensor_forward', 'fill_decoders',
           'merge_distill_cfgs']


@MODELS.register_module()
class MOTDistiller(BaseModel):
    """Knowledge distillation from a frozen teacher into a student tracker.

    ``loss`` returns the student's losses plus one ``loss_<name>`` per
    distillation loss. The teacher runs without gradients through its tensor
    forward only; recorders (forward hooks by module path) pick the tensors
    the losses need, connectors map student features to the teacher's width,
    and ``loss_forward_mappings`` say which tensor or batch datum feeds which
    loss argument. All of it is checked at build, with errors that name the
    config key. The teacher is frozen, always in eval mode and not a
    sub-module (absent from ``state_dict()``, ``parameters()`` and DDP;
    ``.to()`` still moves it). ``predict`` and ``_forward`` are the
    student's.

    Args:
        student (dict): Student model config (its ``data_preprocessor`` is
            used by default).
        teacher (dict | str): Teacher model config, or a config file path
            whose ``teacher_cfg_key`` entry is the model config.
        teacher_ckpt (str): Teacher checkpoint, loaded strictly. Keys may be
            nested under ``state_dict`` and prefixed ``student.`` (a
            distiller checkpoint) or ``module.``.
        teacher_cfg_key (str): Key of the model in a teacher config file.
            Defaults to ``'model'``.
        student_recorders (dict, optional): ``name -> recorder config``, e.g.
            ``dict(neck=dict(type='ModuleOutputsRecorder', source='neck'))``.
        teacher_recorders (dict, optional): Same, on the teacher.
        connectors (dict, optional): ``name -> connector config``;
            ``in_channels``/``out_channels`` left out or None are inferred.
        distill_losses (dict, optional): ``name -> loss config``; weights
            come from each loss's own ``loss_weight``.
        loss_forward_mappings (dict, optional): ``loss name -> arg name ->
            mapping``.
        distill_stop_iter (int, optional): No distillation from this
            (0-based) iteration on. Applied by a ``DistillStopHook`` in
            ``custom_hooks``, which must then be there.
        distill_stop_epoch (int, optional): Same for a (0-based) epoch.
        loss_balance (dict, optional): scale each distillation loss, in
            training, to a set ratio of the task's gradient norm on the
            student's shared layers (``ratios``, ``interval``,
            ``momentum``, ``shared``, ``max_scale``, ``min_scale``: see
            :class:`~mmtrack_kd.models.distill.balance.GradientBalancer`);
            the measured norms and scales are logged. None (default): each
            loss keeps its ``loss_weight`` alone.
        grad_projection (dict, optional): in training, remove from the
            feature gradient of some distillation losses (``losses``) the
            part that opposes other terms (``against``: losses or
            ``'task'``), per image, on a student recorder's output
            (``recorder``, default ``'neck'``); see
            :class:`~mmtrack_kd.models.distill.projection.
            GradientProjector`. None (default): no projection.
        distill_cfgs (list[dict], optional): Fragments, each with any of
            ``student_recorders``, ``teacher_recorders``, ``connectors``,
            ``distill_losses``, ``loss_forward_mappings``, merged into those
            arguments (``configs/_base_/distill/*.py`` define one per loss).
            An entry defined twice must be identical.
        dry_run_input_shape (tuple): (N, C, H, W) of the zero input of the
            build-time dry run that infers and checks channels and the
            student's loss names.
        data_preprocessor (dict | nn.Module, optional): Defaults to the
            student's.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 student: dict,
                 teacher: Union[dict, str],
                 teacher_ckpt: str,
                 teacher_cfg_key: str = 'model',
                 student_recorders: Optional[dict] = None,
                 teacher_recorders: Optional[dict] = None,
                 connectors: Optional[dict] = None,
                 distill_losses: Optional[dict] = None,
                 loss_forward_mappings: Optional[dict] = None,
                 distill_stop_iter: Optional[int] = None,
                 distill_stop_epoch: Optional[int] = None,
                 loss_balance: Optional[dict] = None,
                 grad_projection: Optional[dict] = None,
                 distill_cfgs: Sequence[dict] = (),
                 dry_run_input_shape: Sequence[int] = (1, 3, 128, 128),
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        cfg = merge_distill_cfgs(
            distill_cfgs,
            dict(student_recorders=student_recorders,
                 teacher_recorders=teacher_recorders, connectors=connectors,
                 distill_losses=distill_losses,
                 loss_forward_mappings=loss_forward_mappings))
        student_model = MODELS.build(student)
        if data_preprocessor is None:
            data_preprocessor = student_model.data_preprocessor
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = student_model
        self.distill_stop_iter = distill_stop_iter
        self.distill_stop_epoch = distill_stop_epoch
        self.distill_stopped = False  # both set by DistillStopHook
        self.stop_hook_attached = False
        self._dict_keys = {}  # dict-valued losses' keys, logged as 0 after

        self._teacher_box = TeacherBox(
            build_frozen_teacher(teacher, teacher_ckpt, teacher_cfg_key))
        # SPP's max pools (YOLOv5/YOLOX bodies) by 1-D window maxima in the
        # teacher's gradient-free forward: the same values, far faster
        use_window_max_pools(self.teacher)
        self.teacher_renorm = TeacherInputs(
            self.data_preprocessor,
            getattr(self.teacher, 'data_preprocessor', None))
        self.student_recorders = RecorderManager(cfg['student_recorders'],
                                                 'student_recorders')
        self.student_recorders.prepare_from_model(self.student)
        self.teacher_recorders = RecorderManager(cfg['teacher_recorders'],
                                                 'teacher_recorders')
        self.teacher_recorders.prepare_from_model(self.teacher)

        self.distill_losses = build_distill_losses(cfg['distill_losses'],
                                                   self.student)
        self.loss_specs = check_loss_forward_mappings(
            cfg['loss_forward_mappings'], dict(self.distill_losses),
            self.student_recorders.recorders,
            self.teacher_recorders.recorders, cfg['connectors'])
        check_connectors_used(self.loss_specs, cfg['connectors'])
        self._data_keys = {s.from_data for specs in self.loss_specs.values()
                           for s in specs.values() if s.from_data}
        shape = tuple(dry_run_input_shape)
        self.log_names = loss_log_names(
            self.loss_specs, student_loss_names(self.student, shape))
        if any(s.from_data is None for specs in self.loss_specs.values()
               for s in specs.values()):
            dry_run(self.student, self.teacher, self.student_recorders,
                    self.teacher_recorders, self.teacher_renorm, shape)
        self.connectors = build_checked_connectors(
            cfg['connectors'], self.loss_specs, self.distill_losses,
            self._recorded)
        self.student_recorders.reset_data()
        self.teacher_recorders.reset_data()
        self.loss_balance = build_balancer(loss_balance,
                                           list(self.loss_specs))
        if self.loss_balance is not None:  # paths checked at build
            self.loss_balance.check_paths(self.student)
        self.projector = build_projector(
            grad_projection, list(self.loss_specs),
            list(self.student_recorders.recorders))

    # ---------------------------------------------------------------- parts
    @property
    def teacher(self) -> nn.Module:
        """nn.Module: the frozen teacher (not a sub-module)."""
        return self._teacher_box.module

    @property
    def detector(self) -> nn.Module:
        """The student's detector, for hooks written for mmdet's MOT models
        (e.g. ``YOLOXModeSwitchHook`` sets ``model.detector.bbox_head``).
        Absent (AttributeError) when the student has no detector."""
        detector = getattr(self._modules.get('student'), 'detector', None)
        if detector is None:
            raise AttributeError('the student has no detector')
        return detector

    def _teacher_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's view of the student's pre-processed inputs."""
        return self.teacher_renorm(inputs)

    def _recorded(self, spec: ArgSpec) -> Any:
        """The recorded value of a student/teacher argument (no connector)."""
        return recorded_value(spec, self.student_recorders,
                              self.teacher_recorders)

    # ------------------------------------------------------------- nn.Module
    def train(self, mode: bool = True) -> 'MOTDistiller':
        """Set train/eval on the student side; the teacher stays eval."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        """Move/cast the teacher together with the distiller."""
        super()._apply(fn, *args, **kwargs)
        box = self.__dict__.get('_teacher_box')
        if box is not None:
            box.module._apply(fn, *args, **kwargs)
        return self

    # --------------------------------------------------------------- forward
    def forward(self, inputs: torch.Tensor, data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        """Dispatch to :meth:`loss`, :meth:`predict` or :meth:`_forward`."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}": use loss, predict or '
                           f'tensor')

    def predict(self, inputs: torch.Tensor, data_samples: Any = None,
                **kwargs) -> Any:
        """The student's ``predict``."""
        return self.student.predict(inputs, data_samples, **kwargs)

    def _forward(self, inputs: torch.Tensor, data_samples: Any = None,
                 **kwargs) -> Any:
        """The student's tensor forward."""
        if data_samples is None:
            return self.student._forward(inputs, **kwargs)
        return self.student._forward(inputs, data_samples, **kwargs)

    def distill_active(self) -> bool:
        """bool: False once ``DistillStopHook`` stopped distillation (an
        error when a stop is set but no such hook applies it)."""
        for key in ('distill_stop_iter', 'distill_stop_epoch'):
            if getattr(self, key) is not None and \
                    not self.stop_hook_attached:
                raise DistillConfigError(
                    f'model.{key}: set, but no DistillStopHook applies it; '
                    f"add dict(type='DistillStopHook') to custom_hooks")
        return not self.distill_stopped

    def loss(self, inputs: torch.Tensor,
             data_samples: Any) -> Dict[str, torch.Tensor]:
        """Student losses plus the distillation losses.

        Args:
            inputs (Tensor): (N, C, H, W) or (N, T, C, H, W), already
                pre-processed.
            data_samples (list): DetDataSamples or TrackDataSamples.

        Returns:
            dict[str, Tensor]: the student's losses and ``loss_<name>`` per
            distillation loss (zero, still connected to the connector and
            loss parameters so DDP sees them used, after the stop).
        """
        active = self.distill_active()
        try:
            if active:
                # the teacher first: its activations are freed before the
                # student's graph is built, so the two never share memory
                with torch.no_grad(), self.teacher_recorders:
                    tensor_forward(self.teacher, self._teacher_inputs(inputs))
                data = collect_batch_data(inputs, data_samples,
                                          self._data_keys)
            with self.student_recorders:
                losses = dict(self.student.loss(inputs, data_samples))
            outs = {}
            for name, specs in self.loss_specs.items():
                if active:
                    out = self.distill_losses[name](**{
                        arg: data[s.from_data] if s.from_data else
                        apply_connectors(self.connectors, s,
                                         self._recorded(s))
                        for arg, s in specs.items()
                    })
                    if isinstance(out, dict):  # its keys, for after the stop
                        self._dict_keys[name] = list(out)
                else:
                    zero = self._zero_loss(name, inputs)
                    keys = self._dict_keys.get(name)
                    out = dict.fromkeys(keys, zero) if keys else zero
                outs[name] = out
            if active and self.training and self.loss_balance is not None:
                outs, logs = self._balanced(losses, outs, inputs)
                losses.update(logs)
            if active and self.training and self.projector is not None:
                losses.update(self._projected(losses, outs, inputs))
            for name, out in outs.items():
                log_name = self.log_names[name]
                items = {f'{log_name}_{k}': v for k, v in out.items()} \
                    if isinstance(out, dict) else {log_name: out}
                for k, v in items.items():
                    if k in losses:  # a dict-valued loss's own keys
                        raise log_name_clash(name, k)
                    losses[k] = v
        finally:
            self.student_recorders.reset_data()
            self.teacher_recorders.reset_data()
        return losses

    def _balanced(self, losses: Dict[str, Any], outs: Dict[str, Any],
                  inputs: torch.Tensor) -> tuple:
        """The distillation losses scaled by :attr:`loss_balance` (which
        measures gradient norms on its iterations), and what it logs
        (``gnorm_*`` and ``kd_scale_*``: no ``loss`` in the names, so
        logged but not summed)."""
        bal = self.loss_balance
        if bal.due():
            logs = bal(self.student, self._task_total(losses),
                       {n: summed(o) for n, o in outs.items()})
        else:  # the sums it would not read are not made
            logs = bal.skip()
        scaled = {}
        for name, out in outs.items():
            scale = bal.scale_of(name)
            factor = bal.factor(name)
            if factor != 1.0:
                scale = scale * factor
            scaled[name] = {k: v * scale for k, v in out.items()} \
                if isinstance(out, dict) else out * scale
        logs = {k: inputs.new_tensor(v) for k, v in logs.items()}
        if logs:
            logs.update({f'kd_scale_{n}': bal.scale_of(n).detach().clone()
                         for n in outs})
            logs.update({f'kd_factor_{n}': inputs.new_tensor(bal.factor(n))
                         for n in outs if n in bal.decay})
        return scaled, logs

    @staticmethod
    def _task_total(losses: Dict[str, Any]) -> torch.Tensor:
        """The student's own losses summed as mmengine sums them (only
        they are in ``losses`` when this is called; the logs of the
        balancer have no ``loss`` in their names)."""
        return summed({k: v for k, v in losses.items() if 'loss' in k})

    def _projected(self, losses: Dict[str, Any], outs: Dict[str, Any],
                   inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Add to each projected loss of ``outs`` the projector's term
        (value 0: the loss's feature gradient becomes the projected one);
        return the logs (``proj_frac_*``)."""
        proj = self.projector
        feats = self.student_recorders.get_recorder(
            proj.recorder).get_record_data()
        res = proj(feats, self._task_total(losses),
                   {n: summed(o) for n, o in outs.items()})
        logs = {}
        for key, extra in res.items():  # extra: 0, with the new gradient
            if key.startswith('proj_frac_'):
                logs[key] = inputs.new_tensor(extra)
                continue
            out = outs[key]
            if isinstance(out, dict):  # on its first entry
                first = next(iter(out))
                outs[key] = dict(out, **{first: out[first] + extra})
            else:
                outs[key] = out + extra
        return logs

    def _zero_loss(self, name: str, inputs: torch.Tensor) -> torch.Tensor:
        """0, but touching every parameter the loss would have used."""
        params = [p for p in self.distill_losses[name].parameters()
                  if p.requires_grad]
        for spec in self.loss_specs[name].values():
            for c in spec.connectors:
                params.extend(p for p in self.connectors[c].parameters()
                              if p.requires_grad)
        zero = inputs.new_zeros(())
        for p in params:
            zero = zero + p.sum() * 0
        return zero
