"""What the command-line tools share: the mmengine-style common arguments
and loading a config the same way for training and testing."""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--work-dir', help='folder for logs and outputs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)


def parse_common(parser: argparse.ArgumentParser, argv=None):
    """Parse ``argv``; set ``LOCAL_RANK`` from ``--local-rank`` unless the
    launcher already did."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def parse_cfg_options(pairs: List[str]) -> dict:
    """``['key=value', ...]`` as ``--cfg-options`` reads them (numbers,
    booleans, lists and tuples converted by mmengine's ``DictAction``).

    Args:
        pairs (list[str]): ``key=value`` strings.

    Returns:
        dict: {key: value}.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options'] + list(pairs)).cfg_options


def load_run_config(config: str,
                    work_dir: Optional[str] = None,
                    cfg_options: Optional[dict] = None,
                    launcher: str = 'none') -> Config:
    """Load a training or testing config the way the tools do.

    Applies the launcher and ``cfg_options``; resolves ``num_ids='auto'``;
    sets up CPU distributed training when there is no CUDA; chooses the
    work dir (``work_dir`` > config > ``./work_dirs/NAME``).

    Args:
        config (str): Config file.
        work_dir (str, optional): Folder for logs and outputs.
        cfg_options (dict, optional): Config overrides (``--cfg-options``).
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        Config: the config.

    Raises:
        FileNotFoundError: ``config`` does not exist.
    """
    from mmtrack_kd.engine import auto_dist_backend

    from .config import load_config, resolve_num_ids

    # the launcher goes in first, so that cfg_options may override it
    cfg = load_config(config, {'launcher': launcher, **(cfg_options or {})})
    resolve_num_ids(cfg)
    auto_dist_backend(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg
