"""Distributed launch helpers."""
import torch
from mmengine.config import Config


def auto_dist_backend(cfg: Config) -> str:
    """Use the ``gloo`` process-group back-end when CUDA is unavailable.

    ``nccl`` (the default of ``configs/_base_/default_runtime.py``) needs GPUs;
    on a CPU-only machine ``torchrun ... --launcher pytorch`` would fail in
    ``init_process_group``. This sets ``cfg.env_cfg.dist_cfg.backend`` to
    ``'gloo'`` when it is ``'nccl'`` or unset and no CUDA device is visible;
    any other explicit choice is kept. Call it after ``--cfg-options`` are
    merged and before the runner is built.

    Args:
        cfg (Config): the training/testing config (changed in place).

    Returns:
        str: the back-end the config now names.
    """
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    backend = dist_cfg.get('backend', 'nccl')
    if backend == 'nccl' and not torch.cuda.is_available():
        backend = 'gloo'
    dist_cfg['backend'] = backend
    return backend
