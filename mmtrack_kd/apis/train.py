"""Training a tracker or a distiller from a config (``tools/train.py``)."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmtrack_kd.utils.config import set_max_epochs
from mmtrack_kd.utils.tools import load_run_config

__all__ = ['build_runner', 'build_train_config', 'train_model']


def build_runner(cfg: Config) -> Runner:
    """The runner of ``cfg``: ``Runner.from_cfg``, or the registered
    ``runner_type`` when the config names one."""
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def build_train_config(config: str,
                       work_dir: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       launcher: str = 'none',
                       resume: Optional[str] = None,
                       epochs: Optional[int] = None,
                       amp: bool = False) -> Config:
    """The training config of ``config`` with the tool's options applied.

    Args:
        config (str): Train config file.
        work_dir (str, optional): Folder for logs and checkpoints (default:
            the config's, else ``./work_dirs/NAME``).
        cfg_options (dict, optional): Config overrides.
        launcher (str): Job launcher (``'none'``, ``'pytorch'``, ...).
        resume (str, optional): ``'auto'``: resume from the latest
            checkpoint of the work dir; a path: resume from that checkpoint.
        epochs (int, optional): Train for this many epochs; epoch-based LR
            schedules are stretched to match.
        amp (bool): Mixed precision training (``AmpOptimWrapper``).

    Returns:
        Config: the config to build the runner from.

    Raises:
        FileNotFoundError: the config or the ``resume`` checkpoint is
            missing.
    """
    cfg = load_run_config(config, work_dir, cfg_options, launcher)
    if epochs is not None:
        set_max_epochs(cfg, epochs)
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(
                f'--resume checkpoint not found: {resume}')
        cfg.resume = True
        cfg.load_from = resume
    return cfg


def train_model(config: str, **kwargs) -> Runner:
    """Train ``config``; keyword arguments as :func:`build_train_config`.

    Returns:
        Runner: the runner, after training.
    """
    runner = build_runner(build_train_config(config, **kwargs))
    runner.train()
    return runner
