"""The patches ``import mmtrack_kd`` applies to the pinned OpenMMLab stack.

Every patch is listed in :data:`PATCHES` with what it changes, why, and the
library versions it was written for. :func:`apply_patches` (called once by
``mmtrack_kd/__init__.py``) applies each patch whose versions match and, for
the others, leaves the library alone and records why;
:func:`patch_status` tells what happened to each.

Patches:

- ``torch_safe_globals`` (torch >= 2.6 with mmengine 0.10.x): torch 2.6
  made ``torch.load(weights_only=True)`` the default, and mmengine 0.10
  loads checkpoints with a plain ``torch.load``; its checkpoints hold the
  ``MessageHub`` (``HistoryBuffer`` objects with numpy arrays and scalars),
  so every resume and ``load_from`` fails with ``Weights only load failed``.
  The patch allow-lists exactly these data types
  (``torch.serialization.add_safe_globals``), not arbitrary callables.
- ``track_data_sample_setter`` (mmdet 3.3.0): the
  ``TrackDataSample.video_data_samples`` setter of mmdet 3.3.0 has its
  f-string assert message as a separate statement, so every assignment
  formats the whole first ``DetDataSample`` (all its instances): measured
  14 % of ``tools/test.py`` time and 7 % of a training step on the small
  SynthMOT models. The replacement stores the same field and raises the
  same errors for bad values.
- ``config_scope`` (mmengine 0.10.x): mmengine reads ``_base_`` entries of
  the form ``PACKAGE::PATH`` only for the packages of its fixed
  ``MODULE2PACKAGE`` table. The patch adds ``mmtrack_kd`` to it, so a
  user's config anywhere can inherit ours as
  ``mmtrack_kd::_base_/distill/id_response.py`` (read from the package's
  ``.mim/configs``, as mmdet ships its own); the scope's registries are in
  :mod:`mmtrack_kd.registry`.
"""
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np
import torch

APPLIED = 'applied'


@dataclass
class Patch:
    """One patch of a third-party library.

    Args:
        name: short name, the key of :data:`PATCHES`.
        target: what the patch changes.
        why: the problem it solves.
        versions: the library versions it is written for.
        skip_reason: returns None when the installed versions are the ones
            the patch is written for, else the reason to leave the library
            alone.
        apply: applies the patch; must be idempotent.
        warn_on_skip: warn when skipped (the patch fixes a failure rather
            than a slowness).
    """
    name: str
    target: str
    why: str
    versions: str
    skip_reason: Callable[[], Optional[str]]
    apply: Callable[[], None]
    warn_on_skip: bool = False


def _version_tuple(version: str) -> tuple:
    """'2.13.0+cpu' -> (2, 13, 0); non-numeric parts are dropped."""
    out = []
    for part in version.split('+')[0].split('.'):
        digits = ''.join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


# --------------------------------------------------------- torch safe globals
def _safe_globals_skip_reason() -> Optional[str]:
    import mmengine
    if _version_tuple(torch.__version__) < (2, 6):
        return (f'torch {torch.__version__} < 2.6 does not default to '
                'weights_only=True, so mmengine checkpoints load without it')
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return (f'torch {torch.__version__} has no '
                'torch.serialization.add_safe_globals')
    if _version_tuple(mmengine.__version__)[:2] != (0, 10):
        return (f'written for mmengine 0.10.x, found {mmengine.__version__}; '
                'if resuming fails with "Weights only load failed", check '
                'how this mmengine version calls torch.load')
    return None


def allow_mmengine_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` (the default since torch 2.6)
    read the checkpoints that mmengine 0.10 writes.

    Only the data types of mmengine's ``MessageHub`` are allowed
    (``getattr`` is how numpy 2 pickles its dtype classes), not arbitrary
    callables. Idempotent.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    # numpy >= 2 moved numpy.core to numpy._core
    multiarray = (np._core if hasattr(np, '_core') else np.core).multiarray
    safe = [
        HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
        multiarray.scalar, getattr
    ]
    safe += [
        type(np.dtype(t)) for t in (np.float64, np.float32, np.float16,
                                    np.int64, np.int32, np.int16, np.int8,
                                    np.uint8, np.bool_)
    ]
    torch.serialization.add_safe_globals(safe)


# ------------------------------------------------ TrackDataSample setter
def _setter_skip_reason() -> Optional[str]:
    import mmdet
    if mmdet.__version__ != '3.3.0':
        return (f'written for mmdet 3.3.0, found {mmdet.__version__}; its '
                'own TrackDataSample.video_data_samples setter is kept')
    return None


#: The message of mmdet 3.3.0's assert for a first element that is not a
#: ``DetDataSample`` (the patched setter appends the element's type name).
NOT_DET_DATA_SAMPLE = ('video_data_samples must be a list of DetDataSample, '
                       'but got ')


def fast_track_data_sample_setter() -> None:
    """Replace mmdet 3.3.0's ``TrackDataSample.video_data_samples`` setter
    by one that does not format the first sample on every assignment.

    The replacement stores the same ``_video_data_samples`` field and raises
    what the original raises: ``AssertionError`` for a value that is not a
    list (or a single ``DetDataSample``) or whose first element is not a
    ``DetDataSample``, ``IndexError`` for an empty list. The original setter
    stays reachable as ``fset.__wrapped__``. Idempotent.
    """
    from mmdet.structures import DetDataSample, TrackDataSample
    prop = TrackDataSample.__dict__['video_data_samples']
    if hasattr(prop.fset, '__wrapped__'):
        return

    def fset(self, value):
        if isinstance(value, DetDataSample):
            value = [value]
        assert isinstance(value, list), 'video_data_samples must be a list'
        first = value[0]  # IndexError for [], as in mmdet
        assert isinstance(first, DetDataSample), (
            NOT_DET_DATA_SAMPLE + type(first).__name__)
        self.set_field(value, '_video_data_samples', dtype=list)

    fset.__wrapped__ = prop.fset
    fset.__doc__ = prop.fset.__doc__
    TrackDataSample.video_data_samples = property(prop.fget, fset,
                                                  prop.fdel, prop.__doc__)


# ------------------------------------------------ mmtrack_kd:: config paths
def _config_scope_skip_reason() -> Optional[str]:
    import mmengine
    if not mmengine.__version__.startswith('0.10.'):
        return (f'written for mmengine 0.10.x, found {mmengine.__version__}; '
                '"mmtrack_kd::" config paths may not resolve')
    return None


def register_config_scope() -> None:
    """Let mmengine read ``mmtrack_kd::PATH`` config paths (from
    ``mmtrack_kd/.mim/configs``). Idempotent."""
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault('mmtrack_kd', 'mmtrack_kd')


#: Every patch, by name.
PATCHES: Dict[str, Patch] = {
    p.name: p
    for p in (
        Patch(
            name='torch_safe_globals',
            target='torch.serialization safe globals (add_safe_globals)',
            why='mmengine 0.10 loads checkpoints with a plain torch.load, '
            'which refuses its MessageHub since torch 2.6 '
            '(weights_only=True by default)',
            versions='torch >= 2.6, mmengine 0.10.x',
            skip_reason=_safe_globals_skip_reason,
            apply=allow_mmengine_checkpoints,
            warn_on_skip=True),
        Patch(
            name='track_data_sample_setter',
            target='mmdet.structures.TrackDataSample.video_data_samples '
            '(setter)',
            why='the mmdet 3.3.0 setter formats the whole first '
            'DetDataSample on every assignment (14 % of test time)',
            versions='mmdet 3.3.0',
            skip_reason=_setter_skip_reason,
            apply=fast_track_data_sample_setter),
        Patch(
            name='config_scope',
            target='mmengine.config.utils.MODULE2PACKAGE (one entry added)',
            why='mmengine resolves PACKAGE::PATH config paths only for the '
            'packages of its own table',
            versions='mmengine 0.10.x',
            skip_reason=_config_scope_skip_reason,
            apply=register_config_scope,
            warn_on_skip=True),
    )
}

_STATUS: Dict[str, str] = {}


def apply_patches() -> Dict[str, str]:
    """Apply every patch of :data:`PATCHES` whose versions match.

    A patch written for other versions is skipped; the reason is recorded
    (and warned about for patches that fix failures). Calling it again does
    nothing new.

    Returns:
        dict: :func:`patch_status`.
    """
    for name, patch in PATCHES.items():
        if name in _STATUS:
            continue
        reason = patch.skip_reason()
        if reason is None:
            patch.apply()
            _STATUS[name] = APPLIED
        else:
            _STATUS[name] = f'skipped: {reason}'
            if patch.warn_on_skip:
                warnings.warn(f'mmtrack_kd: patch {name!r} not applied: '
                              f'{reason}')
    return patch_status()


def patch_status() -> Dict[str, str]:
    """What happened to each patch: ``'applied'``, ``'skipped: <reason>'``
    or ``'not applied'`` (before :func:`apply_patches`)."""
    return {name: _STATUS.get(name, 'not applied') for name in PATCHES}
