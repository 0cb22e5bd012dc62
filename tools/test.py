"""Track and evaluate a trained model; prints MOT metrics and FPS.

Example:
    python tools/test.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/cstrack_yolov5n_synthmot/epoch_12.pth --out metrics.json

Several detection/tracker thresholds on one network pass (each candidate's
metrics as its own ``--cfg-options`` run would write them)::

    echo '{"t0.4": {"model.test_cfg.score_thr": 0.4},
           "t0.6": {"model.test_cfg.score_thr": 0.6,
                    "model.tracker.init_track_thr": 0.6}}' > sweep.json
    python tools/test.py CONFIG CKPT --split val --sweep sweep.json \
        --out 'metrics/val.{label}.json'
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
        '--out', help='write the metrics (and FPS) as JSON to this file; '
        'with --sweep a pattern with {i} (the candidate\'s index) and/or '
        '{label}, or a folder (FOLDER/LABEL.json)')
    parser.add_argument(
        '--results-dir',
        help='write one MOTChallenge SEQ.txt per sequence to this folder '
        '(with --sweep: to FOLDER/LABEL/)')
    parser.add_argument(
        '--sweep', metavar='FILE.json',
        help='score several candidates on one network pass per frame: a '
        'JSON object, label -> {config key: value}, keys of the '
        'post-processing (model.test_cfg.*, ByteTrack: '
        'model.detector.test_cfg.*) and the tracker (model.tracker.*) '
        'only; each candidate gets its own tracker and evaluator')
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
    sweep = None
    if args.sweep:
        from mmtrack_kd.evaluation import load_sweep
        sweep = load_sweep(args.sweep)
    evaluate_checkpoint(
        args.config, args.checkpoint, out=args.out, work_dir=args.work_dir,
        cfg_options=args.cfg_options, launcher=args.launcher,
        split=args.split, results_dir=args.results_dir, onnx=args.onnx,
        sweep=sweep)
    return 0


if __name__ == '__main__':
    sys.exit(main())
