"""Train a tracker or a distiller from an mmengine config.

Example:
    python tools/train.py configs/cstrack/cstrack_yolov5n_synthmot.py
    python tools/train.py configs/kd/cstrack_yolov5s_kd.py --work-dir work_dirs/kd
    torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmtrack_kd.utils.config import set_max_epochs
from mmtrack_kd.utils.tools import add_common_args, load_config, parse_common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a MOT model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest one in '
        'the work dir when no path is given')
    parser.add_argument(
        '--epochs',
        type=int,
        help='train for this many epochs; epoch-based LR schedules are '
        'stretched to match')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision training')
    add_common_args(parser)
    return parse_common(parser, argv)


def build_cfg(args) -> Config:
    cfg = load_config(args)
    if args.epochs is not None:
        set_max_epochs(cfg, args.epochs)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    sys.exit(main())
