"""Save the random number generators in checkpoints and restore them on
resume, so that a resumed run draws the same augmentations as an
uninterrupted one."""
import random
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

RNG_KEY = 'rng_state'


def get_rng_state() -> dict:
    """The state of Python's, NumPy's and torch's global generators, as
    tensors and plain numbers only (loadable with ``weights_only=True``).

    Returns:
        dict: ``python`` (version, state (625,) int64 tensor, gauss_next),
        ``numpy`` (keys (624,) int64 tensor, pos, has_gauss, cached_gaussian),
        ``torch`` (uint8 tensor) and ``cuda`` (list of uint8 tensors, empty
        without CUDA).
    """
    version, internal, gauss_next = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return dict(
        python=dict(
            version=version,
            state=torch.tensor(internal, dtype=torch.int64),
            gauss_next=gauss_next),
        numpy=dict(
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached)),
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all()
        if torch.cuda.is_available() else [])


def set_rng_state(state: dict) -> None:
    """Restore the generators from :func:`get_rng_state`'s output. The CUDA
    states are restored only when the same number of devices is visible."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['state']),
                     py['gauss_next']))
    npst = state['numpy']
    np.random.set_state(('MT19937', npst['keys'].numpy().astype(np.uint32),
                         npst['pos'], npst['has_gauss'],
                         npst['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda') or []
    if cuda and torch.cuda.is_available() and len(
            cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store the global random generators in every checkpoint
    (``checkpoint['rng_state']``) and restore them when training resumes.

    mmengine re-seeds the generators when a runner is built and does not
    save their states, so a resumed run draws other random augmentations
    (``RandomResize``, ``RandomFlip``, frame sampling) than the uninterrupted
    run from the resumed iteration on. With this hook, a single-process
    resumed run matches the uninterrupted one exactly (with
    ``randomness.deterministic=True`` and ``num_workers=0``; data-loader
    workers draw their seeds from torch's generator, which is restored too).

    The state is restored in ``before_train`` (after ``load_or_resume``),
    only when the loaded checkpoint is a resume point: the runner's iteration
    equals the checkpoint's ``meta.iter`` and is > 0. Loading weights with
    ``load_from`` (fine-tuning) leaves the seeded generators alone.

    Limitation: only rank 0 saves checkpoints, so under DDP every rank
    restores rank 0's state.

    Example:
        >>> custom_hooks = [dict(type='RNGStateHook')]
    """
    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None
        self._pending_iter: Optional[int] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get(RNG_KEY)
        self._pending_iter = checkpoint.get('meta', {}).get('iter')

    def before_train(self, runner) -> None:
        state, it = self._pending, self._pending_iter
        self._pending = self._pending_iter = None
        if state is None:
            return
        if it is not None and it > 0 and runner.iter == it:
            set_rng_state(state)
            runner.logger.info(
                f'random generator states restored from the checkpoint '
                f'(iteration {it})')
