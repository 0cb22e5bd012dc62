"""Loss-forward mappings: which recorded tensor or batch datum feeds which
argument of a distillation loss, checked when the distiller is built.

Config format (one entry per loss of ``distill_losses``)::

    loss_forward_mappings = dict(
        loss_kf=dict(                      # a key of distill_losses
            preds_S=dict(from_student=True, recorder='neck', data_idx=0,
                         connector='neck_s0'),
            preds_T=dict(from_student=False, recorder='neck', data_idx=0),
            gt_bboxes=dict(from_data='gt_bboxes'),
            batch_input_shape=dict(from_data='batch_input_shape')))

Keys of one argument's dict:

- ``from_student`` (bool) + ``recorder`` (a name in ``student_recorders``
  or ``teacher_recorders``); optional ``data_idx`` (element of a tuple/list
  output), ``record_idx`` (which call of the module, default 0),
  ``connector`` (a name in ``connectors``, or a list of names applied one
  per element of a list output), ``allow_channel_mismatch`` (skip the
  build-time student/teacher channel check for this argument).
- or ``from_data``: one of :data:`DATA_KEYS`.
"""
import inspect
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmtrack_kd.utils.batch import box_tensor, video_frames

from .errors import DistillConfigError

#: Batch data a loss can ask for with ``from_data``.
DATA_KEYS = ('gt_bboxes', 'gt_labels', 'gt_ids', 'batch_input_shape')

_RECORD_KEYS = {'from_student', 'recorder', 'data_idx', 'record_idx',
                'connector', 'allow_channel_mismatch'}


@dataclass
class ArgSpec:
    """One checked argument mapping.

    Attributes:
        key (str): Its config key, ``loss_forward_mappings.<loss>.<arg>``.
        arg (str): The loss argument name.
        from_data (str, optional): A :data:`DATA_KEYS` entry.
        from_student (bool): Recorded on the student (else the teacher).
        recorder (str, optional): Recorder name.
        data_idx (int, optional): Element of a tuple/list record.
        record_idx (int): Which call of the module.
        connectors (tuple of str): Connector names (empty: none; one: applied
            to the tensor; several: one per element of a list).
        allow_channel_mismatch (bool): Skip the channel check.
    """
    key: str
    arg: str
    from_data: Optional[str] = None
    from_student: bool = True
    recorder: Optional[str] = None
    data_idx: Optional[int] = None
    record_idx: int = 0
    connectors: Tuple[str, ...] = ()
    allow_channel_mismatch: bool = False


def parse_arg_spec(key: str, arg: str, spec: Any,
                   student_recorders: Iterable[str],
                   teacher_recorders: Iterable[str],
                   connector_names: Iterable[str]) -> ArgSpec:
    """Check one argument's mapping dict and return it as an :class:`ArgSpec`.

    Raises:
        DistillConfigError: naming ``key`` (unknown keys, unknown recorder,
            connector or data name, both or neither source given).
    """
    if not isinstance(spec, dict):
        raise DistillConfigError(
            f'{key}: expected a dict like dict(from_student=True, '
            f"recorder='neck') or dict(from_data='gt_bboxes'), got {spec!r}")
    if 'from_data' in spec:
        extra = set(spec) - {'from_data'}
        if extra:
            raise DistillConfigError(
                f'{key}: from_data cannot be combined with '
                f'{", ".join(sorted(extra))}')
        if spec['from_data'] not in DATA_KEYS:
            raise DistillConfigError(
                f'{key}.from_data: unknown data {spec["from_data"]!r}; '
                f'available: {", ".join(DATA_KEYS)}')
        return ArgSpec(key=key, arg=arg, from_data=spec['from_data'])
    extra = set(spec) - _RECORD_KEYS
    if extra:
        raise DistillConfigError(
            f'{key}: unknown key(s) {", ".join(sorted(extra))}; allowed: '
            f'from_data, or {", ".join(sorted(_RECORD_KEYS))}')
    if 'from_student' not in spec or 'recorder' not in spec:
        raise DistillConfigError(
            f'{key}: give from_student (True/False) and recorder, or '
            f'from_data')
    from_student = bool(spec['from_student'])
    names = list(student_recorders if from_student else teacher_recorders)
    side_key = 'student_recorders' if from_student else 'teacher_recorders'
    if spec['recorder'] not in names:
        raise DistillConfigError(
            f'{key}.recorder: {spec["recorder"]!r} is not in {side_key}; '
            f'available: {", ".join(names) or "(none)"}')
    conn = spec.get('connector')
    if conn is None:
        conns: Tuple[str, ...] = ()
    elif isinstance(conn, str):
        conns = (conn, )
    elif isinstance(conn, (list, tuple)) and all(
            isinstance(c, str) for c in conn):
        conns = tuple(conn)
    else:
        raise DistillConfigError(
            f'{key}.connector: expected a name or a list of names, '
            f'got {conn!r}')
    known = list(connector_names)
    for c in conns:
        if c not in known:
            raise DistillConfigError(
                f'{key}.connector: {c!r} is not in connectors; available: '
                f'{", ".join(known) or "(none)"}')
    data_idx = spec.get('data_idx')
    if data_idx is not None and not isinstance(data_idx, int):
        raise DistillConfigError(
            f'{key}.data_idx: expected an int or None, got {data_idx!r}')
    record_idx = spec.get('record_idx', 0)
    if not isinstance(record_idx, int) or record_idx < 0:
        raise DistillConfigError(
            f'{key}.record_idx: expected an int >= 0, got {record_idx!r}')
    return ArgSpec(
        key=key, arg=arg, from_student=from_student,
        recorder=spec['recorder'], data_idx=data_idx, record_idx=record_idx,
        connectors=conns,
        allow_channel_mismatch=bool(spec.get('allow_channel_mismatch',
                                             False)))


def check_loss_forward_mappings(
        mappings: Dict[str, Dict[str, Any]], losses: Dict[str, nn.Module],
        student_recorders: Iterable[str], teacher_recorders: Iterable[str],
        connector_names: Iterable[str]) -> Dict[str, Dict[str, ArgSpec]]:
    """Check every mapping against ``inspect.signature`` of its loss.

    Args:
        mappings (dict): ``loss_forward_mappings`` from the config.
        losses (dict): ``name -> built loss module``.
        student_recorders / teacher_recorders (iterable of str): Names.
        connector_names (iterable of str): Names in ``connectors``.

    Returns:
        dict: ``loss name -> arg name -> ArgSpec``.

    Raises:
        DistillConfigError: naming ``loss_forward_mappings.<loss>[.<arg>]``
            for a loss without mapping or a mapping without loss, an argument
            the loss does not take, a required argument left unmapped, or a
            bad argument mapping.
    """
    student_recorders = list(student_recorders)
    teacher_recorders = list(teacher_recorders)
    connector_names = list(connector_names)
    mappings = dict(mappings or {})
    for name in losses:
        if name not in mappings:
            raise DistillConfigError(
                f'loss_forward_mappings.{name}: distill_losses.{name} has no '
                f'mapping; every distillation loss needs one')
    specs: Dict[str, Dict[str, ArgSpec]] = {}
    for name, mapping in mappings.items():
        key = f'loss_forward_mappings.{name}'
        if name not in losses:
            raise DistillConfigError(
                f'{key}: no such loss in distill_losses; available: '
                f'{", ".join(losses) or "(none)"}')
        if not isinstance(mapping, dict) or not mapping:
            raise DistillConfigError(
                f'{key}: expected a non-empty dict of argument mappings')
        loss = losses[name]
        sig = inspect.signature(loss.forward)
        params = sig.parameters
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
        named = [n for n, p in params.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        cls = type(loss).__name__
        for arg in mapping:
            if arg not in named and not takes_kwargs:
                raise DistillConfigError(
                    f'{key}.{arg}: {cls}.forward has no argument {arg!r}; '
                    f'its arguments: {", ".join(named)}')
        for arg in named:
            if params[arg].default is inspect.Parameter.empty and \
                    arg not in mapping:
                raise DistillConfigError(
                    f'{key}.{arg}: required argument of {cls}.forward is '
                    f'not mapped')
        specs[name] = {
            arg: parse_arg_spec(f'{key}.{arg}', arg, spec, student_recorders,
                                teacher_recorders, connector_names)
            for arg, spec in mapping.items()
        }
    return specs


def pair_student_teacher(
        specs: Dict[str, ArgSpec]) -> List[Tuple[ArgSpec, ArgSpec]]:
    """Pair the student and teacher arguments of one loss.

    Names that differ only by a ``_S``/``_T`` (or ``_s``/``_t``) suffix pair
    first (``preds_S`` with ``preds_T``, ``emb_S`` with ``emb_T``); the rest
    pair in config order.

    Returns:
        list of (student ArgSpec, teacher ArgSpec).
    """
    student = [s for s in specs.values() if s.from_data is None
               and s.from_student]
    teacher = [s for s in specs.values() if s.from_data is None
               and not s.from_student]

    def stem(name: str) -> str:
        return name[:-2] if name[-2:] in ('_S', '_T', '_s', '_t') else name

    pairs = []
    for s in list(student):
        match = [t for t in teacher if stem(t.arg) == stem(s.arg)]
        if len(match) == 1:
            pairs.append((s, match[0]))
            student.remove(s)
            teacher.remove(match[0])
    pairs.extend(zip(student, teacher))
    return pairs


def recorded_value(spec: ArgSpec, student_recorders: Any,
                   teacher_recorders: Any) -> Any:
    """The value recorded for a student/teacher argument (no connector).

    Args:
        spec (ArgSpec): A recorded argument (``from_data`` None).
        student_recorders, teacher_recorders (RecorderManager): The two
            sides' recorders.

    Raises:
        RuntimeError: naming ``spec.key`` when nothing (or not that element)
            was recorded.
    """
    manager = student_recorders if spec.from_student else teacher_recorders
    rec = manager.get_recorder(spec.recorder)
    try:
        return rec.get_record_data(spec.record_idx, spec.data_idx)
    except (RuntimeError, IndexError, TypeError) as err:
        raise RuntimeError(f'{spec.key}: {err}') from err


def check_connectors_used(loss_specs: Dict[str, Dict[str, ArgSpec]],
                          connector_names: Iterable[str]) -> None:
    """Every connector must feed some argument (an unused one breaks DDP).

    Raises:
        DistillConfigError: naming ``connectors.<name>``.
    """
    used = {c for specs in loss_specs.values() for s in specs.values()
            for c in s.connectors}
    for name in connector_names:
        if name not in used:
            raise DistillConfigError(
                f'connectors.{name}: not used by any loss_forward_mappings '
                f'entry (an unused connector breaks DDP)')


def loss_log_names(loss_names: Iterable[str],
                   student_losses: Iterable[str]) -> Dict[str, str]:
    """The log name of each distillation loss: its name when it starts with
    ``loss``, else ``loss_<name>``.

    Args:
        loss_names (iterable of str): Keys of ``distill_losses``.
        student_losses (iterable of str): Names the student's ``loss``
            returns.

    Returns:
        dict: ``loss name -> log name``.

    Raises:
        DistillConfigError: naming ``distill_losses.<name>`` when its log
            name is also a student loss.
    """
    student_losses = set(student_losses)
    out = {}
    for name in loss_names:
        log_name = name if name.startswith('loss') else f'loss_{name}'
        if log_name in student_losses:
            raise log_name_clash(name, log_name)
        out[name] = log_name
    return out


def log_name_clash(name: str, log_name: str) -> DistillConfigError:
    """The error for a distillation loss logged under a student loss's
    name."""
    return DistillConfigError(
        f'distill_losses.{name}: log key {log_name!r} is also a student '
        f'loss; rename the distillation loss '
        f'(e.g. kd_{name.replace("loss_", "", 1)})')


def collect_batch_data(inputs: torch.Tensor, data_samples: Sequence[Any],
                       keys: Iterable[str]) -> Dict[str, Any]:
    """Compute the requested :data:`DATA_KEYS` from a batch.

    Args:
        inputs (Tensor): (N, C, H, W) or (N, T, C, H, W).
        data_samples (list): DetDataSamples or TrackDataSamples.
        keys (iterable of str): Which data to compute.

    Returns:
        dict: ``gt_bboxes`` list of (K_i, 4) x1y1x2y2 input-pixel Tensors,
        ``gt_labels`` / ``gt_ids`` lists of (K_i,) Tensors (one per frame),
        ``batch_input_shape`` (H, W).
    """
    keys = set(keys)
    out: Dict[str, Any] = {}
    if not keys:
        return out
    frames = video_frames(data_samples or [])
    if 'batch_input_shape' in keys:
        shape = None
        if frames:
            shape = frames[0].metainfo.get('batch_input_shape')
        out['batch_input_shape'] = tuple(
            shape) if shape is not None else tuple(inputs.shape[-2:])
    field = dict(gt_bboxes='bboxes', gt_labels='labels',
                 gt_ids='instances_ids')
    for data_key, inst_key in field.items():
        if data_key not in keys:
            continue
        values = []
        for i, frame in enumerate(frames):
            inst = frame.get('gt_instances') if hasattr(frame, 'get') \
                else getattr(frame, 'gt_instances', None)
            if inst is None or inst_key not in inst:
                raise KeyError(
                    f'{data_key}: frame {i} of the batch has no '
                    f'gt_instances.{inst_key}')
            values.append(box_tensor(inst.get(inst_key)))
        out[data_key] = values
    return out
