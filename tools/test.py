"""Track and evaluate a trained model; prints MOT metrics and FPS.

Example:
    python tools/test.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/cstrack_yolov5n_synthmot/epoch_12.pth --out metrics.json
"""
import argparse
import json
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmtrack_kd.utils.tools import add_common_args, load_config, parse_common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (track and evaluate)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='write the metrics (and FPS) as JSON to this file')
    parser.add_argument(
        '--results-dir',
        help='write one MOTChallenge SEQ.txt per sequence to this folder')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='test',
        help='which dataloader of the config to run (default: test)')
    add_common_args(parser)
    return parse_common(parser, argv)


def build_cfg(args) -> Config:
    # the cheap check first: loading the config may already read data
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint file not found: {args.checkpoint}')
    cfg = load_config(args)  # checks the config file
    if args.split == 'val':
        cfg.test_dataloader = cfg.val_dataloader
        cfg.test_evaluator = cfg.val_evaluator
    if args.results_dir is not None:
        evaluators = cfg.test_evaluator if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        for ev in evaluators:
            ev['outfile_prefix'] = args.results_dir
    cfg.load_from = args.checkpoint
    # time every test iteration (model + tracker) to report FPS
    custom_hooks = list(cfg.get('custom_hooks', []))
    if not any(h.get('type') == 'TrackFPSHook' for h in custom_hooks):
        custom_hooks.append(dict(type='TrackFPSHook'))
    cfg.custom_hooks = custom_hooks
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    metrics = runner.test()
    metrics = dict(metrics or {})
    if args.out and runner.rank == 0:
        from mmtrack_kd.utils.io import atomic_write
        with atomic_write(args.out) as f:
            json.dump(metrics, f, indent=2, default=float)
        print(f'metrics written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
