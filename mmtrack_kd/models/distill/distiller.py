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
"""
import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel

from .checkpoint import load_strict
from .errors import DistillConfigError
from .mappings import (ArgSpec, check_loss_forward_mappings,
                       collect_batch_data, pair_student_teacher)
from .recorders import RecorderManager


def tensor_forward(model: nn.Module, inputs: torch.Tensor) -> Any:
    """Run only the tensor forward of a model (no loss, no post-processing).

    (N, T, C, H, W) inputs are folded to (N*T, C, H, W). mmdet MOT models
    that wrap a detector (ByteTrack, OCSORT, ...) run ``detector._forward``;
    others run their own ``_forward``.

    Args:
        model (nn.Module): A model with ``_forward`` or ``detector._forward``.
        inputs (Tensor): (N, C, H, W) or (N, T, C, H, W).

    Returns:
        Any: Whatever the tensor forward returns.
    """
    if inputs.dim() == 5:
        inputs = inputs.flatten(0, 1)
    detector = getattr(model, 'detector', None)
    if isinstance(detector, nn.Module):
        head = getattr(detector, 'bbox_head', None)
        if isinstance(head, nn.Module) and hasattr(detector, 'extract_feat'):
            # mmdet's SingleStageDetector._forward calls bbox_head.forward
            # directly, which skips forward hooks: call the head module
            return head(detector.extract_feat(inputs))
        if hasattr(detector, '_forward'):
            return detector._forward(inputs)
    return model._forward(inputs)


_FRAGMENT_KEYS = ('student_recorders', 'teacher_recorders', 'connectors',
                  'distill_losses', 'loss_forward_mappings')


def merge_distill_cfgs(fragments: Sequence[dict],
                       base: Dict[str, Optional[dict]]) -> Dict[str, dict]:
    """Merge ``distill_cfgs`` fragments into the distiller's dict arguments.

    Args:
        fragments: dicts with any of :data:`_FRAGMENT_KEYS`.
        base: the explicit arguments (values may be None).

    Returns:
        dict: one plain dict per key of :data:`_FRAGMENT_KEYS`.

    Raises:
        DistillConfigError: an unknown key in a fragment, or one name defined
            twice with different contents (names the key).
    """
    out = {k: dict(base.get(k) or {}) for k in _FRAGMENT_KEYS}
    for i, frag in enumerate(fragments or ()):
        if not isinstance(frag, dict):
            raise DistillConfigError(
                f'distill_cfgs[{i}]: expected a dict, got {type(frag)}')
        for key, entries in frag.items():
            if key not in out:
                raise DistillConfigError(
                    f'distill_cfgs[{i}].{key}: unknown key, expected one of '
                    f'{list(_FRAGMENT_KEYS)}')
            for name, value in (entries or {}).items():
                if name in out[key] and out[key][name] != value:
                    raise DistillConfigError(
                        f'distill_cfgs[{i}].{key}.{name}: defined twice with '
                        f'different contents: {out[key][name]} vs {value}')
                out[key][name] = value
    return out


def fill_decoders(distill_losses: Optional[dict],
                  student: nn.Module) -> dict:
    """Fill ``decoder.anchors``/``strides``/``num_classes`` left None in
    loss configs from the student's detection head, so that response losses
    decode exactly as the student does."""
    head = getattr(student, 'bbox_head', None)
    if head is None and getattr(student, 'detector', None) is not None:
        head = getattr(student.detector, 'bbox_head', None)
    out = {}
    for name, cfg in (distill_losses or {}).items():
        cfg = dict(cfg)
        dec = cfg.get('decoder')
        if isinstance(dec, dict):
            dec = dict(dec)
            for attr in ('anchors', 'strides', 'num_classes'):
                if attr in dec and dec[attr] is None:
                    value = getattr(head, attr, None)
                    if value is None:
                        raise DistillConfigError(
                            f'distill_losses.{name}.decoder.{attr}: None, '
                            'and the student has no bbox_head.{attr} to '
                            'read it from; set it in the config')
                    if attr == 'strides':
                        value = [s[0] if isinstance(s, (tuple, list)) else s
                                 for s in value]
                    dec[attr] = value
            cfg['decoder'] = dec
        out[name] = cfg
    return out


def _channels(value: Any) -> Any:
    """Channels (dim 1) of a Tensor, or a list of them for a list/tuple;
    None where unknown."""
    if isinstance(value, torch.Tensor):
        return int(value.shape[1]) if value.dim() >= 2 else None
    if isinstance(value, (list, tuple)):
        return [_channels(v) for v in value]
    return None


class _Unregistered:
    """Holds a module without making it a sub-module of its owner.

    The owner's ``state_dict()``, ``parameters()``, ``train()``,
    ``init_weights()`` and DDP never see it. ``deepcopy`` (e.g. an EMA copy
    of the owner) shares it instead of copying it: it is frozen.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __deepcopy__(self, memo: dict) -> '_Unregistered':
        # later references to the teacher's modules and tensors (teacher
        # recorders) resolve to the shared originals too
        for m in self.module.modules():
            memo[id(m)] = m
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            memo[id(t)] = t
        return self


@MODELS.register_module()
class MOTDistiller(BaseModel):
    """Knowledge distillation from a frozen teacher into a student tracker.

    ``loss`` returns the student's own losses plus one ``loss_<name>`` per
    distillation loss. The teacher runs under ``torch.no_grad()`` through its
    tensor forward only (see :func:`tensor_forward`); recorders (forward
    hooks by module path) pick the tensors the losses need, connectors map
    student features to the teacher's width, and ``loss_forward_mappings``
    say which tensor or batch datum feeds which loss argument (see
    :mod:`mmtrack_kd.models.distill.mappings`). Everything is checked here,
    at build time, with errors that name the config key.

    The teacher is not a sub-module: it is frozen (``requires_grad=False``),
    always in eval mode, and absent from ``state_dict()`` (which holds
    ``student.*``, ``connectors.*`` and learnable ``distill_losses.*``), from
    ``parameters()`` and from DDP. ``.to()``/``.cuda()`` still move it.
    ``predict`` and ``_forward`` are the student's.

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
            (0-based) iteration on, read from MessageHub ``iter``.
        distill_stop_epoch (int, optional): Same with MessageHub ``epoch``.
        distill_cfgs (list[dict], optional): Fragments, each with any of
            ``student_recorders``, ``teacher_recorders``, ``connectors``,
            ``distill_losses``, ``loss_forward_mappings``, merged into those
            arguments (``configs/_base_/distill/*.py`` define one per loss).
            An entry defined twice must be identical.
        dry_run_input_shape (tuple): (N, C, H, W) of the zero input of the
            build-time dry run that infers and checks channels.
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
                 distill_cfgs: Sequence[dict] = (),
                 dry_run_input_shape: Sequence[int] = (1, 3, 128, 128),
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        merged = merge_distill_cfgs(
            distill_cfgs,
            dict(student_recorders=student_recorders,
                 teacher_recorders=teacher_recorders,
                 connectors=connectors,
                 distill_losses=distill_losses,
                 loss_forward_mappings=loss_forward_mappings))
        student_recorders = merged['student_recorders']
        teacher_recorders = merged['teacher_recorders']
        connectors = merged['connectors']
        distill_losses = merged['distill_losses']
        loss_forward_mappings = merged['loss_forward_mappings']
        student_model = MODELS.build(student)
        distill_losses = fill_decoders(distill_losses, student_model)
        if data_preprocessor is None:
            data_preprocessor = student_model.data_preprocessor
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = student_model
        self.distill_stop_iter = distill_stop_iter
        self.distill_stop_epoch = distill_stop_epoch

        if not teacher_ckpt:
            raise DistillConfigError(
                'teacher_ckpt: required (a trained teacher checkpoint)')
        teacher_model = self._build_teacher(teacher, teacher_cfg_key,
                                            teacher_ckpt)
        load_strict(teacher_model, teacher_ckpt, key='teacher_ckpt')
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        self._teacher_box = _Unregistered(teacher_model)
        self._set_teacher_renorm()

        self.student_recorders = RecorderManager(student_recorders,
                                                 'student_recorders')
        self.student_recorders.prepare_from_model(self.student)
        self.teacher_recorders = RecorderManager(teacher_recorders,
                                                 'teacher_recorders')
        self.teacher_recorders.prepare_from_model(self.teacher)

        self.distill_losses = nn.ModuleDict()
        for name, cfg in (distill_losses or {}).items():
            try:
                self.distill_losses[name] = MODELS.build(cfg)
            except (KeyError, TypeError, ValueError) as err:
                raise DistillConfigError(
                    f'distill_losses.{name}: {err}') from err
        connectors = dict(connectors or {})
        self.loss_specs = check_loss_forward_mappings(
            loss_forward_mappings, dict(self.distill_losses),
            self.student_recorders.recorders,
            self.teacher_recorders.recorders, connectors)
        used = {c for specs in self.loss_specs.values()
                for s in specs.values() for c in s.connectors}
        for name in connectors:
            if name not in used:
                raise DistillConfigError(
                    f'connectors.{name}: not used by any '
                    f'loss_forward_mappings entry (an unused connector '
                    f'breaks DDP)')
        self._data_keys = {s.from_data for specs in self.loss_specs.values()
                           for s in specs.values() if s.from_data}
        self.log_names = {
            name: name if name.startswith('loss') else f'loss_{name}'
            for name in self.loss_specs
        }

        dry_ok = self._dry_run(tuple(dry_run_input_shape))
        self.connectors = nn.ModuleDict()
        for name, cfg in connectors.items():
            self.connectors[name] = self._build_connector(name, cfg, dry_ok)
        if dry_ok:
            self._check_channels()
        self.student_recorders.reset_data()
        self.teacher_recorders.reset_data()

    # ----------------------------------------------------------------- build
    @staticmethod
    def _build_teacher(teacher: Union[dict, str], key: str,
                       ckpt: str) -> nn.Module:
        from mmtrack_kd.utils.config import teacher_model_cfg
        try:
            teacher = teacher_model_cfg(teacher, ckpt, key)
        except (OSError, ValueError) as err:
            raise DistillConfigError(f'teacher: {err}') from err
        return MODELS.build(teacher)

    @property
    def detector(self) -> nn.Module:
        """The student's detector, for hooks written for mmdet's MOT models
        (e.g. ``YOLOXModeSwitchHook`` sets ``model.detector.bbox_head``).
        Absent (AttributeError) when the student has no detector."""
        student = self._modules.get('student')
        detector = getattr(student, 'detector', None)
        if detector is None:
            raise AttributeError('the student has no detector')
        return detector

    @property
    def teacher(self) -> nn.Module:
        """nn.Module: the frozen teacher (not a sub-module)."""
        return self._teacher_box.module

    def _set_teacher_renorm(self) -> None:
        """Reconcile input normalisation when teacher and student differ:
        teacher input = (flip?(x * std_s + mean_s) - mean_t) / std_t."""
        s_dp = self.data_preprocessor
        t_dp = getattr(self.teacher, 'data_preprocessor', None)
        self._renorm_flip = False
        self._renorm = False

        def norm(dp):
            if dp is not None and getattr(dp, '_enable_normalize', False):
                return dp.mean.detach().clone(), dp.std.detach().clone()
            return None

        if t_dp is None:
            return
        s_flip = bool(getattr(s_dp, '_channel_conversion', False))
        t_flip = bool(getattr(t_dp, '_channel_conversion', False))
        self._renorm_flip = s_flip != t_flip
        s_norm, t_norm = norm(s_dp), norm(t_dp)
        if s_norm is None and t_norm is None:
            return  # at most a channel flip
        if s_norm is not None and t_norm is not None and not \
                self._renorm_flip and torch.equal(s_norm[0], t_norm[0]) \
                and torch.equal(s_norm[1], t_norm[1]):
            return
        if s_norm is None or t_norm is None:
            ref = (s_norm or t_norm)[0]
            one = (torch.zeros_like(ref), torch.ones_like(ref))
            s_norm, t_norm = s_norm or one, t_norm or one
        self._renorm = True
        self.register_buffer('_s_mean', s_norm[0], persistent=False)
        self.register_buffer('_s_std', s_norm[1], persistent=False)
        self.register_buffer('_t_mean', t_norm[0], persistent=False)
        self.register_buffer('_t_std', t_norm[1], persistent=False)

    def _teacher_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self._renorm and not self._renorm_flip:
            return inputs
        x = inputs.flatten(0, 1) if inputs.dim() == 5 else inputs
        if self._renorm:
            x = x * self._s_std + self._s_mean
        if self._renorm_flip:
            x = x.flip(1)
        if self._renorm:
            x = (x - self._t_mean) / self._t_std
        return x

    def _dry_run(self, shape: Tuple[int, ...]) -> bool:
        """One no-grad eval-mode pass of student and teacher on zeros,
        recording; restores every module's training flag. Returns whether
        it ran."""
        needed = any(s.from_data is None for specs in self.loss_specs.values()
                     for s in specs.values())
        if not needed:
            return False
        flags = [(m, m.training) for m in self.student.modules()]
        self.student.eval()
        x = torch.zeros(shape)
        try:
            with torch.no_grad():
                with self.student_recorders:
                    tensor_forward(self.student, x)
                with self.teacher_recorders:
                    tensor_forward(self.teacher, self._teacher_inputs(x))
        except Exception as err:  # a model without a tensor forward
            print_log(
                f'MOTDistiller: dry run on zeros {shape} failed ({err!r}); '
                f'connector channels are not inferred and channels are not '
                f'checked at build time', level=30)
            self._dry_error = repr(err)
            return False
        finally:
            for m, flag in flags:
                m.training = flag
        return True

    def _recorded(self, spec: ArgSpec) -> Any:
        """The recorded value of a student/teacher argument (no connector)."""
        manager = self.student_recorders if spec.from_student \
            else self.teacher_recorders
        rec = manager.get_recorder(spec.recorder)
        try:
            return rec.get_record_data(spec.record_idx, spec.data_idx)
        except (RuntimeError, IndexError, TypeError) as err:
            raise RuntimeError(f'{spec.key}: {err}') from err

    def _build_connector(self, name: str, cfg: dict,
                         dry_ok: bool) -> nn.Module:
        key = f'connectors.{name}'
        cfg = dict(cfg)
        cls = cfg.get('type')
        cls = MODELS.get(cls) if isinstance(cls, str) else cls
        if cls is None:
            raise DistillConfigError(
                f'{key}.type: {cfg.get("type")!r} is not registered')
        params = inspect.signature(cls.__init__).parameters
        todo = [k for k in ('in_channels', 'out_channels')
                if k in params and cfg.get(k) is None]
        if todo:
            inferred = self._infer_channels(name, dry_ok)
            for k in todo:
                cfg[k] = inferred[k]
        try:
            return MODELS.build(cfg)
        except (KeyError, TypeError, ValueError) as err:
            raise DistillConfigError(f'{key}: {err}') from err

    def _infer_channels(self, name: str, dry_ok: bool) -> Dict[str, int]:
        key = f'connectors.{name}'
        if not dry_ok:
            raise DistillConfigError(
                f'{key}: in_channels/out_channels must be given: the dry run '
                f'that infers them did not run '
                f'({getattr(self, "_dry_error", "no recorded argument")})')
        found: List[Tuple[str, int, int]] = []
        for specs in self.loss_specs.values():
            partner = {}
            for s, t in pair_student_teacher(specs):
                partner[s.arg], partner[t.arg] = t, s
            for spec in specs.values():
                for j, conn in enumerate(spec.connectors):
                    if conn != name:
                        continue
                    elem = j if len(spec.connectors) > 1 else None
                    c_in = _channels(self._recorded(spec))
                    other = partner.get(spec.arg)
                    c_out = _channels(self._recorded(other)) \
                        if other is not None else c_in
                    if elem is not None:
                        c_in = c_in[elem] if isinstance(c_in, list) else None
                        c_out = c_out[elem] if isinstance(c_out,
                                                          list) else None
                    if not isinstance(c_in, int) or \
                            not isinstance(c_out, int):
                        raise DistillConfigError(
                            f'{key}: cannot infer channels from {spec.key} '
                            f'(recorded value is not a (N, C, ...) tensor; '
                            f'use data_idx or one connector per element)')
                    found.append((spec.key, c_in, c_out))
        if len({(i, o) for _, i, o in found}) > 1:
            raise DistillConfigError(
                f'{key}: used with different channels: ' + ', '.join(
                    f'{k} ({i}->{o})' for k, i, o in found))
        _, c_in, c_out = found[0]
        return dict(in_channels=c_in, out_channels=c_out)

    def _check_channels(self) -> None:
        """Student vs teacher channels of each paired argument, after the
        connectors, on the dry-run records."""
        flags = [(m, m.training) for m in self.connectors.modules()]
        self.connectors.eval()
        try:
            with torch.no_grad():
                for name, specs in self.loss_specs.items():
                    loss = self.distill_losses[name]
                    if getattr(loss, 'allow_channel_mismatch', False):
                        continue
                    for s, t in pair_student_teacher(specs):
                        if s.allow_channel_mismatch or \
                                t.allow_channel_mismatch:
                            continue
                        cs = _channels(self._connect(s, self._recorded(s)))
                        ct = _channels(self._connect(t, self._recorded(t)))
                        if cs != ct:
                            raise DistillConfigError(
                                f'loss_forward_mappings.{name}: student '
                                f'{s.arg} has {cs} channels but teacher '
                                f'{t.arg} has {ct}; add a connector '
                                f"(connectors=dict(NAME=dict(type="
                                f"'ConvBNConnector')) and connector='NAME' "
                                f'in {s.key}) or set '
                                f'allow_channel_mismatch=True there')
        finally:
            for m, flag in flags:
                m.training = flag

    def _connect(self, spec: ArgSpec, value: Any) -> Any:
        """Apply the argument's connector(s) to its recorded value."""
        if not spec.connectors:
            return value
        try:
            if len(spec.connectors) == 1:
                if not isinstance(value, torch.Tensor):
                    raise TypeError(
                        f'connector {spec.connectors[0]!r} needs a Tensor, '
                        f'got a {type(value).__name__}; use data_idx or a '
                        f'list of connectors, one per element')
                return self.connectors[spec.connectors[0]](value)
            if not isinstance(value, (list, tuple)) or \
                    len(value) != len(spec.connectors):
                raise TypeError(
                    f'{len(spec.connectors)} connectors need a list of as '
                    f'many tensors, got {type(value).__name__}')
            return [self.connectors[c](v)
                    for c, v in zip(spec.connectors, value)]
        except (TypeError, RuntimeError) as err:
            raise DistillConfigError(
                f'{spec.key}.connector: {err}') from err

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
        """bool: False from ``distill_stop_iter``/``distill_stop_epoch`` on
        (MessageHub ``iter``/``epoch``, 0-based)."""
        hub = MessageHub.get_current_instance()
        if self.distill_stop_iter is not None and \
                (hub.get_info('iter') or 0) >= self.distill_stop_iter:
            return False
        if self.distill_stop_epoch is not None and \
                (hub.get_info('epoch') or 0) >= self.distill_stop_epoch:
            return False
        return True

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
        try:
            with self.student_recorders:
                losses = dict(self.student.loss(inputs, data_samples))
            active = self.distill_active()
            if active:
                with torch.no_grad(), self.teacher_recorders:
                    tensor_forward(self.teacher, self._teacher_inputs(inputs))
                data = collect_batch_data(inputs, data_samples,
                                          self._data_keys)
            for name, specs in self.loss_specs.items():
                log_name = self.log_names[name]
                if active:
                    kwargs = {
                        arg: data[s.from_data] if s.from_data else
                        self._connect(s, self._recorded(s))
                        for arg, s in specs.items()
                    }
                    out = self.distill_losses[name](**kwargs)
                else:
                    out = self._zero_loss(name, inputs)
                if isinstance(out, dict):
                    items = {f'{log_name}_{k}': v for k, v in out.items()}
                else:
                    items = {log_name: out}
                for k, v in items.items():
                    if k in losses:
                        raise DistillConfigError(
                            f'distill_losses.{name}: log key {k!r} is also a '
                            f'student loss; rename the distillation loss '
                            f'(e.g. kd_{name.replace("loss_", "", 1)})')
                    losses[k] = v
        finally:
            self.student_recorders.reset_data()
            self.teacher_recorders.reset_data()
        return losses

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
