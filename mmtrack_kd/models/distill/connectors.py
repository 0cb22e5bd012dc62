"""Connectors: small learnable maps from student features to teacher width.

Every connector takes ``in_channels`` and ``out_channels``. In a
:class:`MOTDistiller` config either may be left ``None``: the distiller then
fills them in from one no-grad dry run of student and teacher before it
builds the connector.

The learnable connectors take ``detach_iters``: for their first N forward
calls in training mode (one per iteration when a connector feeds one loss
argument) the student's feature enters them detached, so the connector
learns its map from the teacher's target before the loss pulls on the
student. A random connector at the start otherwise sends the student
towards a random projection of the teacher's features.
"""
from typing import TYPE_CHECKING, Any, Optional

import torch
import torch.nn as nn
from mmdet.registry import MODELS

from .errors import DistillConfigError

if TYPE_CHECKING:
    from .mappings import ArgSpec


def _require(value: Optional[int], name: str, cls: str) -> int:
    if value is None:
        raise ValueError(
            f'{cls}: {name} is None; give it, or let MOTDistiller infer it')
    return int(value)


class _WarmupMixin:
    """``detach_iters``: the student's feature is detached for the first
    N training forward calls (counted in a buffer, so a resumed run goes on
    counting)."""

    def _init_warmup(self, detach_iters: int) -> None:
        if not (isinstance(detach_iters, int) and detach_iters >= 0):
            raise ValueError(
                f'{type(self).__name__}: detach_iters must be an int >= 0, '
                f'got {detach_iters!r}')
        self.detach_iters = detach_iters
        if detach_iters:  # no buffer (and no new state-dict key) when off
            self.register_buffer('warmup_calls',
                                 torch.zeros((), dtype=torch.long))

    def _warm(self, x: torch.Tensor) -> torch.Tensor:
        """``x``, detached while the warm-up lasts (training mode only).
        Once it is over the count is no longer read (no device sync per
        step)."""
        if not self.detach_iters or not self.training or \
                getattr(self, '_warm_done', False):
            return x
        calls = int(self.warmup_calls)
        if calls >= self.detach_iters:
            self._warm_done = True
            return x
        self.warmup_calls += 1
        return x.detach()

    def _load_from_state_dict(self, *args, **kwargs):
        # a loaded count may be inside the warm-up again: read it
        self._warm_done = False
        super()._load_from_state_dict(*args, **kwargs)


@MODELS.register_module()
class ConvConnector(_WarmupMixin, nn.Module):
    """A 1x1 conv alone: (N, Cin, H, W) -> (N, Cout, H, W).

    For a loss that standardises each channel over H, W (of each frame:
    ``KeyFeatureLoss(normalize=True)``; of the batch: ``PKDLoss``): the
    standardisation removes any per-channel scale and shift, so the
    BatchNorm of :class:`ConvBNConnector` changes nothing there (its batch
    statistics and affine are per channel) but costs as much as the conv,
    forward and backward. The loss then sees the same maps, up to the sign
    of the BN scale (1 at its init, and it gets no gradient there) and the
    standardisation's epsilon.

    Args:
        in_channels (int): Student channels Cin.
        out_channels (int): Teacher channels Cout.
        bias (bool): Give the conv a bias. Defaults to False (a per-channel
            shift that a standardising loss removes, as the BN's).
        detach_iters (int): Warm-up: the student's feature is detached for
            the first N training calls (see the module docstring).
            Defaults to 0 (none).
    """

    def __init__(self, in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 bias: bool = False, detach_iters: int = 0) -> None:
        super().__init__()
        self.in_channels = _require(in_channels, 'in_channels',
                                    type(self).__name__)
        self.out_channels = _require(out_channels, 'out_channels',
                                     type(self).__name__)
        self.conv = nn.Conv2d(self.in_channels, self.out_channels, 1,
                              bias=bool(bias))
        self._init_warmup(detach_iters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, Cin, H, W) to (N, Cout, H, W)."""
        return self.conv(self._warm(x))


@MODELS.register_module()
class ConvBNConnector(ConvConnector):
    """1x1 conv + BatchNorm (+ ReLU): (N, Cin, H, W) -> (N, Cout, H, W).

    Args:
        in_channels (int): Student channels Cin.
        out_channels (int): Teacher channels Cout.
        act (bool): Append a ReLU. Defaults to False.
        detach_iters (int): Warm-up: the student's feature is detached for
            the first N training calls (see the module docstring).
            Defaults to 0 (none).
    """

    def __init__(self, in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 act: bool = False, detach_iters: int = 0) -> None:
        super().__init__(in_channels, out_channels, bias=False,
                         detach_iters=detach_iters)
        self.bn = nn.BatchNorm2d(self.out_channels)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, Cin, H, W) to (N, Cout, H, W)."""
        return self.act(self.bn(super().forward(x)))


@MODELS.register_module()
class IdentityConnector(nn.Module):
    """Pass the feature through unchanged (a placeholder in configs).

    Args:
        in_channels (int, optional): Ignored beyond a consistency check.
        out_channels (int, optional): Must equal ``in_channels`` when both
            are given.
    """

    def __init__(self, in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None) -> None:
        super().__init__()
        if (in_channels is not None and out_channels is not None
                and in_channels != out_channels):
            raise ValueError(
                f'IdentityConnector: in_channels={in_channels} differs from '
                f'out_channels={out_channels}; use ConvBNConnector')
        self.in_channels = in_channels
        self.out_channels = out_channels if out_channels else in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x``."""
        return x


@MODELS.register_module()
class MLPConnector(_WarmupMixin, nn.Module):
    """Linear-ReLU-Linear over the channel dimension (dim 1).

    Works on (N, Cin) embeddings and on (N, Cin, H, W) maps alike
    (a per-position MLP, i.e. two 1x1 convs).

    Args:
        in_channels (int): Student channels Cin.
        out_channels (int): Teacher channels Cout.
        hidden_channels (int, optional): Hidden width. Defaults to
            ``out_channels``.
        detach_iters (int): Warm-up, as for :class:`ConvConnector`.
            Defaults to 0 (none).
    """

    def __init__(self, in_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 hidden_channels: Optional[int] = None,
                 detach_iters: int = 0) -> None:
        super().__init__()
        self.in_channels = _require(in_channels, 'in_channels',
                                    type(self).__name__)
        self.out_channels = _require(out_channels, 'out_channels',
                                     type(self).__name__)
        hidden = int(hidden_channels or self.out_channels)
        self.fc1 = nn.Linear(self.in_channels, hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, self.out_channels)
        self._init_warmup(detach_iters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, Cin, ...) to (N, Cout, ...)."""
        y = self._warm(x).movedim(1, -1)
        y = self.fc2(self.act(self.fc1(y)))
        return y.movedim(-1, 1)


def end_warmups(module: nn.Module) -> int:
    """End the warm-up of every connector in ``module`` whose warm-up is
    still on, as ``detach_iters`` training calls would: the student's
    feature reaches them from the next call (the steady state of a
    training run, which a benchmark of the step should time).

    Returns:
        int: How many connectors were still warming up.
    """
    ended = 0
    for m in module.modules():
        if isinstance(m, _WarmupMixin) and m.detach_iters and \
                int(m.warmup_calls) < m.detach_iters:
            m.warmup_calls.fill_(m.detach_iters)
            ended += 1
    return ended


def apply_connectors(connectors: nn.ModuleDict, spec: 'ArgSpec',
                     value: Any) -> Any:
    """Apply an argument's connector(s) to its recorded value.

    Args:
        connectors (nn.ModuleDict): The distiller's connectors.
        spec (ArgSpec): The argument; no connector returns ``value``, one
            maps a Tensor, several map a list element-wise.
        value (Any): The recorded value.

    Returns:
        Any: The mapped Tensor or list of Tensors.

    Raises:
        DistillConfigError: naming ``<spec.key>.connector``.
    """
    if not spec.connectors:
        return value
    try:
        if len(spec.connectors) == 1:
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f'connector {spec.connectors[0]!r} needs a Tensor, got '
                    f'a {type(value).__name__}; use data_idx or a list of '
                    f'connectors, one per element')
            return connectors[spec.connectors[0]](value)
        if not isinstance(value, (list, tuple)) or \
                len(value) != len(spec.connectors):
            raise TypeError(
                f'{len(spec.connectors)} connectors need a list of as many '
                f'tensors, got {type(value).__name__}')
        return [connectors[c](v) for c, v in zip(spec.connectors, value)]
    except (TypeError, RuntimeError) as err:
        raise DistillConfigError(f'{spec.key}.connector: {err}') from err
