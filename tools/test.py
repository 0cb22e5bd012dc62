"""Track and evaluate a trained model; prints MOT metrics and FPS.

Example:
    python tools/test.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/cstrack_yolov5n_synthmot/epoch_12.pth --out metrics.json
"""
import argparse
import sys

from mmtrack_kd.apis.evaluate import evaluate_checkpoint
from mmtrack_kd.utils.tools import add_common_args, parse_common


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
    parser.add_argument(
        '--onnx', metavar='MODEL.onnx',
        help='run the network in ONNX Runtime from this export (fp32 or '
        'int8; tools/deploy/); post-processing and tracker stay PyTorch')
    add_common_args(parser)
    return parse_common(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    evaluate_checkpoint(
        args.config, args.checkpoint, out=args.out, work_dir=args.work_dir,
        cfg_options=args.cfg_options, launcher=args.launcher,
        split=args.split, results_dir=args.results_dir, onnx=args.onnx)
    return 0


if __name__ == '__main__':
    sys.exit(main())
