"""Distributed launch helpers for machines without CUDA."""
import datetime
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def auto_dist_backend(cfg: Config) -> str:
    """Make ``torchrun ... --launcher pytorch`` work on CPU-only machines.

    Three things stop mmengine 0.10 from training distributed without CUDA:

    1. ``nccl`` (the back-end of ``configs/_base_/default_runtime.py``) needs
       GPUs: ``cfg.env_cfg.dist_cfg.backend`` is set to ``'gloo'`` when it is
       ``'nccl'`` or unset and no CUDA device is visible (any other explicit
       choice is kept);
    2. ``mmengine.dist.init_dist('pytorch')`` calls ``torch.cuda.set_device``
       unconditionally, which fails without CUDA: so, for
       ``cfg.launcher == 'pytorch'`` without CUDA, the default process group
       is initialised here (``gloo``, from torchrun's ``RANK`` /
       ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT`` variables and
       ``dist_cfg.timeout`` in seconds). The runner then finds it initialised
       and skips its own ``init_dist``;
    3. ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
       ``MMDistributedDataParallel``, which DDP rejects for CPU modules: with
       a launcher and without CUDA, ``cfg.model_wrapper_cfg`` gets
       ``device_ids=None`` (created as mmengine's default wrapper,
       ``broadcast_buffers=False`` and the config's
       ``find_unused_parameters``, when absent; other wrapper types are left
       alone).

    Call it after ``--cfg-options`` are merged and before the runner is
    built; calling it again is harmless.

    Args:
        cfg (Config): the training/testing config (changed in place); reads
            ``launcher`` (default ``'none'``) and ``env_cfg.dist_cfg``.

    Returns:
        str: the back-end the config now names.
    """
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    backend = dist_cfg.get('backend', 'nccl')
    has_cuda = torch.cuda.is_available()
    if backend == 'nccl' and not has_cuda:
        backend = 'gloo'
    dist_cfg['backend'] = backend
    launcher = cfg.get('launcher', 'none')
    if launcher != 'none' and not has_cuda:
        wrapper = cfg.get('model_wrapper_cfg', None)
        if wrapper is None:
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel',
                broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters',
                                               False),
                device_ids=None)
        elif wrapper.get('type', 'MMDistributedDataParallel') == \
                'MMDistributedDataParallel':
            wrapper.setdefault('device_ids', None)
    if (launcher == 'pytorch' and not has_cuda
            and torch_dist.is_available()
            and not torch_dist.is_initialized()):
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if 'timeout' in kwargs and kwargs['timeout'] is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
            if var not in os.environ:
                raise RuntimeError(
                    f'--launcher pytorch: environment variable {var} is not '
                    'set; start the script with torchrun')
        torch_dist.init_process_group(
            backend=backend,
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            **kwargs)
    return backend
