"""Build-time dry run, connector channel inference and channel checks.

The distiller runs student and teacher once, without gradients and in eval
mode, on a zero batch (``dry_run_input_shape``). What the recorders saw then
gives the ``in_channels``/``out_channels`` that connector configs leave out,
and lets every student/teacher argument pair of a loss be checked for equal
channels (after the connectors) before training starts.
"""
import inspect
import random
from functools import partial
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmdet.registry import MODELS

from .connectors import apply_connectors
from .errors import DistillConfigError
from .families import dry_run_batch, tensor_forward
from .mappings import ArgSpec, pair_student_teacher
from .recorders import RecorderManager

#: ``spec -> recorded value`` and ``(spec, value) -> connected value``.
Recorded = Callable[[ArgSpec], Any]
Connect = Callable[[ArgSpec, Any], Any]


def channels_of(value: Any) -> Any:
    """Channels (dim 1) of a Tensor, or a list of them for a list/tuple;
    None where unknown."""
    if isinstance(value, torch.Tensor):
        return int(value.shape[1]) if value.dim() >= 2 else None
    if isinstance(value, (list, tuple)):
        return [channels_of(v) for v in value]
    return None


class _EvalNoGrad:
    """``with``: no grad, ``modules`` in eval mode, their training flags
    restored after."""

    def __init__(self, *modules: nn.Module) -> None:
        self.flags = [(m, m.training) for mod in modules
                      for m in mod.modules()]
        self.no_grad = torch.no_grad()

    def __enter__(self) -> None:
        for m, _ in self.flags:
            m.training = False
        self.no_grad.__enter__()

    def __exit__(self, *exc_info) -> None:
        self.no_grad.__exit__(*exc_info)
        for m, flag in self.flags:
            m.training = flag


def dry_run(student: nn.Module, teacher: nn.Module,
            student_recorders: RecorderManager,
            teacher_recorders: RecorderManager,
            teacher_inputs: Callable[[torch.Tensor], torch.Tensor],
            shape: Tuple[int, ...]) -> None:
    """Record one tensor forward of student and teacher on zeros.

    No gradients; the student runs in eval mode and every module's training
    flag is restored. The records stay readable until the recorders are
    reset.

    Raises:
        DistillConfigError: naming ``dry_run_input_shape`` when a forward
            fails.
    """
    x = torch.zeros(shape)
    for side, model, recorders, inputs in (
            ('student', student, student_recorders, x),
            ('teacher', teacher, teacher_recorders, teacher_inputs(x))):
        try:
            with _EvalNoGrad(model), recorders:
                tensor_forward(model, inputs)
        except Exception as err:  # any failure of the user's model
            raise DistillConfigError(
                f'dry_run_input_shape: the build-time dry run of the '
                f'{side} on zeros {tuple(shape)} failed ({err!r}); give an '
                f'input shape the {side} accepts (e.g. a multiple of its '
                f'largest stride)') from err


def student_loss_names(student: nn.Module,
                       shape: Tuple[int, ...]) -> List[str]:
    """The names ``student.loss`` returns, from one dry run of it on a batch
    of zero images with one box each (:func:`dry_run_batch`).

    Nothing changes: no gradients, eval mode (training flags restored), and
    the torch, numpy and Python random generators are restored after.

    Raises:
        DistillConfigError: naming ``dry_run_input_shape`` when it fails.
    """
    inputs, samples = dry_run_batch(student, shape)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]), _EvalNoGrad(student):
            return list(student.loss(inputs, samples))
    except Exception as err:  # any failure of the user's model
        raise DistillConfigError(
            f'dry_run_input_shape: the build-time dry run of student.loss on '
            f'zeros {tuple(shape)} with one box failed ({err!r}); give an '
            f'input shape the student accepts') from err
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def infer_connector_channels(name: str, loss_specs: Dict[str, Dict[str,
                                                                   ArgSpec]],
                             recorded: Recorded) -> Dict[str, int]:
    """``in_channels``/``out_channels`` of connector ``name`` from the
    dry-run records of the arguments it maps and of their partners.

    Raises:
        DistillConfigError: naming ``connectors.<name>`` when a record is not
            a (N, C, ...) tensor or the connector is used with different
            channels.
    """
    key = f'connectors.{name}'
    found: List[Tuple[str, int, int]] = []
    for specs in loss_specs.values():
        partner = {}
        for s, t in pair_student_teacher(specs):
            partner[s.arg], partner[t.arg] = t, s
        for spec in specs.values():
            for j, conn in enumerate(spec.connectors):
                if conn != name:
                    continue
                elem = j if len(spec.connectors) > 1 else None
                c_in = channels_of(recorded(spec))
                other = partner.get(spec.arg)
                c_out = channels_of(recorded(other)) \
                    if other is not None else c_in
                if elem is not None:
                    c_in = c_in[elem] if isinstance(c_in, list) else None
                    c_out = c_out[elem] if isinstance(c_out, list) else None
                if not isinstance(c_in, int) or not isinstance(c_out, int):
                    raise DistillConfigError(
                        f'{key}: cannot infer channels from {spec.key} '
                        f'(recorded value is not a (N, C, ...) tensor; '
                        f'use data_idx or one connector per element)')
                found.append((spec.key, c_in, c_out))
    if not found:
        raise DistillConfigError(
            f'{key}: in_channels/out_channels must be given: no recorded '
            f'argument uses this connector to infer them from')
    if len({(i, o) for _, i, o in found}) > 1:
        raise DistillConfigError(
            f'{key}: used with different channels: ' +
            ', '.join(f'{k} ({i}->{o})' for k, i, o in found))
    _, c_in, c_out = found[0]
    return dict(in_channels=c_in, out_channels=c_out)


def build_connector(name: str, cfg: dict,
                    infer: Callable[[], Dict[str, int]]) -> nn.Module:
    """Build connector ``name``; ``in_channels``/``out_channels`` that its
    class takes and the config leaves None come from ``infer()``.

    Raises:
        DistillConfigError: naming ``connectors.<name>``.
    """
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
        inferred = infer()
        for k in todo:
            cfg[k] = inferred[k]
    try:
        return MODELS.build(cfg)
    except (KeyError, TypeError, ValueError) as err:
        raise DistillConfigError(f'{key}: {err}') from err


def check_channels(loss_specs: Dict[str, Dict[str, ArgSpec]],
                   distill_losses: nn.ModuleDict, connectors: nn.ModuleDict,
                   recorded: Recorded, connect: Connect) -> None:
    """Student vs teacher channels of each paired argument, after the
    connectors (in eval mode, restored), on the dry-run records.

    Raises:
        DistillConfigError: naming ``loss_forward_mappings.<loss>`` and how
            to fix it.
    """
    with _EvalNoGrad(connectors):
        for name, specs in loss_specs.items():
            if getattr(distill_losses[name], 'allow_channel_mismatch',
                       False):
                continue
            for s, t in pair_student_teacher(specs):
                if s.allow_channel_mismatch or t.allow_channel_mismatch:
                    continue
                cs = channels_of(connect(s, recorded(s)))
                ct = channels_of(connect(t, recorded(t)))
                if cs != ct:
                    raise DistillConfigError(
                        f'loss_forward_mappings.{name}: student {s.arg} has '
                        f'{cs} channels but teacher {t.arg} has {ct}; add a '
                        f"connector (connectors=dict(NAME=dict(type="
                        f"'ConvBNConnector')) and connector='NAME' in "
                        f'{s.key}) or set allow_channel_mismatch=True there')


def build_checked_connectors(cfgs: Dict[str, dict],
                             loss_specs: Dict[str, Dict[str, ArgSpec]],
                             distill_losses: nn.ModuleDict,
                             recorded: Recorded) -> nn.ModuleDict:
    """Build the connectors, their channels inferred where left out, then
    check every student/teacher pair's channels after them.

    Args:
        cfgs (dict): ``connectors`` of the config, in build order.
        loss_specs (dict): ``loss -> arg -> ArgSpec``.
        distill_losses (nn.ModuleDict): The built losses.
        recorded (callable): ``spec -> dry-run record``.

    Returns:
        nn.ModuleDict: ``name -> connector``.

    Raises:
        DistillConfigError: naming the connector or mapping at fault.
    """
    connectors = nn.ModuleDict()
    for name, cfg in cfgs.items():
        connectors[name] = build_connector(
            name, cfg, partial(infer_connector_channels, name, loss_specs,
                               recorded))
    check_channels(loss_specs, distill_losses, connectors, recorded,
                   partial(apply_connectors, connectors))
    return connectors
