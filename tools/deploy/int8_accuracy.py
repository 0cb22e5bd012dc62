"""Tracking accuracy of an int8 graph against its fp32 export.

Example:
    python tools/deploy/int8_accuracy.py CONFIG student.pth \
        --fp32 fp32.onnx --int8 int8.onnx --name student__seed0 \
        --out docs/results/int8_idf1.json \
        --cfg-options model.test_cfg.score_thr=0.5

Tracks and scores the split (``--split``, default test) twice with the
network in ONNX Runtime, once from each graph, with the same
post-processing, tracker and thresholds (``--cfg-options``), and adds the
run (IDF1, MOTA, HOTA, IDs, FPS of both, their change, the date and the
command) to the JSON report ``--out`` under ``--name``. The report's
``summary`` groups runs named ``GROUP__seedN``. See
:func:`mmtrack_kd.apis.quantize.int8_accuracy`.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='IDF1 of an int8 graph against its fp32 export')
    parser.add_argument('config', help='model config (test split data)')
    parser.add_argument('checkpoint', help='plain model checkpoint')
    parser.add_argument('--fp32', required=True, help='fp32 .onnx')
    parser.add_argument('--int8', required=True, help='int8 .onnx')
    parser.add_argument('--name', required=True,
                        help='run name in the report, e.g. ours__seed0')
    parser.add_argument('--out', required=True, help='JSON report to add '
                        'the run to')
    parser.add_argument('--split', choices=['val', 'test'], default='test')
    parser.add_argument('--work-dir', help='folder for the runner logs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (thresholds)')
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    for what, path in (('config', args.config), ('checkpoint',
                                                 args.checkpoint),
                       ('--fp32', args.fp32), ('--int8', args.int8)):
        if not osp.isfile(path):
            parser.error(f'{what} file not found: {path}')
    from mmtrack_kd.apis.quantize import add_accuracy_run, int8_accuracy
    run = int8_accuracy(args.config, args.checkpoint, args.fp32, args.int8,
                        split=args.split, cfg_options=args.cfg_options,
                        work_dir=args.work_dir)
    run.update(config=args.config, checkpoint=args.checkpoint,
               fp32_onnx=args.fp32, int8_onnx=args.int8, split=args.split,
               cfg_options=dict(args.cfg_options or {}))
    command = ['python', 'tools/deploy/int8_accuracy.py'] + list(
        sys.argv[1:] if argv is None else argv)
    doc = add_accuracy_run(args.out, args.name, run, command)
    print(f'{args.name}: IDF1 fp32 {run["fp32"]["IDF1"]:.2f}, int8 '
          f'{run["int8"]["IDF1"]:.2f} ({run["delta"]["IDF1"]:+.2f}); '
          f'written to {args.out}')
    for group, s in doc['summary'].items():
        print(f'  {group}: {s["runs"]} runs, IDF1 change '
              f'{s["delta_idf1"]:+.2f} (range {s["delta_idf1_min"]:+.2f} .. '
              f'{s["delta_idf1_max"]:+.2f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
