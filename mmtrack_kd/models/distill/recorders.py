"""Recorders: forward hooks, by module path, that keep what a module saw.

A recorder is told a dotted module path (``'neck'``, ``'detector.neck'``,
``'id_head.embed_conv'``). :meth:`BaseRecorder.prepare_from_model` resolves
the path on a model (a bad path fails at once with the closest candidates).
Hooks exist only inside a ``with recorder:`` (or ``with manager:``) block:
entering registers them and clears the buffer, leaving removes them. The data
recorded in the block stays readable after it, until the next ``with`` or
:meth:`BaseRecorder.reset_data`.

Example:
    >>> import torch.nn as nn
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
    >>> rec = ModuleOutputsRecorder(source='0')
    >>> rec.prepare_from_model(model)
    >>> with rec:
    ...     _ = model(torch.zeros(1, 3, 2, 2))
    >>> rec.get_record_data().shape
    torch.Size([1, 4, 2, 2])
"""
import difflib
from typing import Any, Dict, List, Optional

import torch  # noqa: F401  (used by the doctest)
import torch.nn as nn
from mmdet.registry import TASK_UTILS

from .errors import DistillConfigError


def find_module(model: nn.Module, path: str,
                key: str = 'source') -> nn.Module:
    """Return the sub-module of ``model`` at the dotted ``path``.

    Args:
        model (nn.Module): The model to search.
        path (str): Dotted module path as in ``model.named_modules()``.
        key (str): The config key the path came from, for the error.

    Returns:
        nn.Module: The module at ``path``.

    Raises:
        DistillConfigError: no module at ``path``; the message lists the
            closest module paths of ``model``.
    """
    modules = dict(model.named_modules())
    if path in modules and path != '':
        return modules[path]
    names = [name for name in modules if name]
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.4)
    if not close:
        close = names[:10]
    raise DistillConfigError(
        f'{key}: no module {path!r} in {type(model).__name__}; '
        f'closest module paths: {", ".join(close) or "(none)"}')


class BaseRecorder:
    """Keep data seen by one module of a model while inside ``with``.

    Args:
        source (str): Dotted path of the module in the model.
    """

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not source:
            raise DistillConfigError(
                f'source: a recorder needs a module path string, '
                f'got {source!r}')
        self.source = source
        self.module: Optional[nn.Module] = None
        self.data_buffer: List[Any] = []
        self._handle = None

    def prepare_from_model(self, model: nn.Module,
                           key: str = 'source') -> None:
        """Resolve :attr:`source` on ``model`` (no hook is added yet).

        Args:
            model (nn.Module): The model the recorder watches.
            key (str): The config key of the path, named in errors.
        """
        self.module = find_module(model, self.source, key)

    def _hook(self, module: nn.Module, inputs: tuple, outputs: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> 'BaseRecorder':
        if self.module is None:
            raise RuntimeError(
                f'recorder of {self.source!r} used before '
                f'prepare_from_model()')
        if self._handle is not None:
            raise RuntimeError(f'recorder of {self.source!r} is already on')
        self.reset_data()
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    @property
    def active(self) -> bool:
        """bool: whether a hook is registered right now."""
        return self._handle is not None

    def reset_data(self) -> None:
        """Forget the recorded data."""
        self.data_buffer = []

    def get_record_data(self, record_idx: int = 0,
                        data_idx: Optional[int] = None) -> Any:
        """Return what the module saw on its ``record_idx``-th call.

        Args:
            record_idx (int): Which call (a module may run several times).
            data_idx (int, optional): For tuple/list data, the element.

        Returns:
            Any: The recorded data (a Tensor, or a tuple/list of them).
        """
        if not self.data_buffer:
            raise RuntimeError(
                f'recorder of {self.source!r} recorded nothing: the module '
                f'did not run inside the recording block')
        if record_idx >= len(self.data_buffer):
            raise IndexError(
                f'recorder of {self.source!r}: record_idx={record_idx} but '
                f'the module ran {len(self.data_buffer)} time(s)')
        data = self.data_buffer[record_idx]
        if data_idx is None:
            return data
        if not isinstance(data, (tuple, list)):
            raise TypeError(
                f'recorder of {self.source!r}: data_idx={data_idx} given but '
                f'the recorded data is a {type(data).__name__}')
        return data[data_idx]


@TASK_UTILS.register_module(name=['ModuleOutputsRecorder', 'ModuleOutputs'])
class ModuleOutputsRecorder(BaseRecorder):
    """Record the outputs of a module (a Tensor or a tuple/list of them).

    Args:
        source (str): Dotted module path, e.g. ``'neck'``.
    """

    def _hook(self, module: nn.Module, inputs: tuple, outputs: Any) -> None:
        self.data_buffer.append(outputs)


@TASK_UTILS.register_module(name=['ModuleInputsRecorder', 'ModuleInputs'])
class ModuleInputsRecorder(BaseRecorder):
    """Record the positional inputs of a module, as a tuple.

    ``data_idx=0`` then selects the first positional argument.

    Args:
        source (str): Dotted module path, e.g. ``'bbox_head'``.
    """

    def _hook(self, module: nn.Module, inputs: tuple, outputs: Any) -> None:
        self.data_buffer.append(tuple(inputs))


class RecorderManager:
    """Several named recorders on one model, switched on together.

    Args:
        recorders (dict, optional): ``name -> recorder config`` (a dict with
            ``type`` registered in ``TASK_UTILS``, e.g.
            ``dict(type='ModuleOutputsRecorder', source='neck')``) or a
            recorder instance.
        cfg_key (str): The config key of the dict (``'student_recorders'``),
            used in error messages.

    Example:
        >>> manager = RecorderManager(
        ...     dict(neck=dict(type='ModuleOutputsRecorder', source='neck')),
        ...     cfg_key='student_recorders')
        >>> manager.prepare_from_model(model)  # doctest: +SKIP
        >>> with manager:  # doctest: +SKIP
        ...     model(x)
        >>> manager.get_recorder('neck').get_record_data()  # doctest: +SKIP
    """

    def __init__(self, recorders: Optional[Dict[str, Any]] = None,
                 cfg_key: str = 'recorders') -> None:
        self.cfg_key = cfg_key
        self.recorders: Dict[str, BaseRecorder] = {}
        for name, cfg in (recorders or {}).items():
            key = f'{cfg_key}.{name}'
            if isinstance(cfg, BaseRecorder):
                self.recorders[name] = cfg
                continue
            if not isinstance(cfg, dict) or 'type' not in cfg:
                raise DistillConfigError(
                    f'{key}: expected a dict with a "type" (e.g. '
                    f"dict(type='ModuleOutputsRecorder', source='neck')), "
                    f'got {cfg!r}')
            try:
                self.recorders[name] = TASK_UTILS.build(dict(cfg))
            except DistillConfigError as err:
                raise DistillConfigError(f'{key}.{err}') from None
            except KeyError as err:
                raise DistillConfigError(
                    f'{key}.type: {err}') from None

    def prepare_from_model(self, model: nn.Module) -> None:
        """Resolve every recorder's module path on ``model``.

        Raises:
            DistillConfigError: naming ``<cfg_key>.<name>.source`` and the
                closest module paths.
        """
        for name, rec in self.recorders.items():
            rec.prepare_from_model(model, key=f'{self.cfg_key}.{name}.source')

    def get_recorder(self, name: str) -> BaseRecorder:
        """Return the recorder called ``name``."""
        return self.recorders[name]

    def __contains__(self, name: str) -> bool:
        return name in self.recorders

    def reset_data(self) -> None:
        """Forget every recorder's data (frees the recorded tensors)."""
        for rec in self.recorders.values():
            rec.reset_data()

    def __enter__(self) -> 'RecorderManager':
        entered = []
        try:
            for rec in self.recorders.values():
                rec.__enter__()
                entered.append(rec)
        except BaseException:
            for rec in entered:
                rec.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for rec in self.recorders.values():
            rec.__exit__(*exc_info)
