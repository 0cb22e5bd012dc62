"""Export the network of a tracking model (CSTrack) to ONNX.

Example:
    python tools/deploy/export_onnx.py \
        configs/cstrack/cstrack_yolov5n_synthmot.py epoch_12.pth \
        --out cstrack_n.onnx

The graph maps ``input`` (N, 3, H, W) - the frames as the model's data
preprocessor leaves them (RGB, normalised, padded to 32) - to ``det_p3``,
``det_p4``, ``det_p5`` (raw YOLOv5 head maps) and ``id_map`` (raw
embeddings). Batch, height and width are dynamic unless ``--static``. The
file is checked with ``onnx.checker``, compared with PyTorch on one random
input, and written atomically. For a distillation checkpoint, run
``tools/extract_student.py`` first. Track with it through
``tools/demo/track_video.py --backend onnx --onnx FILE``. See
:mod:`mmtrack_kd.apis.export`.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a model to ONNX')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='model checkpoint (plain, not a '
                        'distillation checkpoint)')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument(
        '--input-size', type=int, nargs=2, metavar=('W', 'H'),
        help='example input size, multiples of 32 (default: the config '
        "test pipeline's Resize scale, else 320 192)")
    parser.add_argument('--opset', type=int, default=17,
                        help='ONNX opset (default 17)')
    parser.add_argument('--static', action='store_true',
                        help='fixed input size instead of dynamic axes')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the ONNX Runtime vs PyTorch comparison')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    for what, path in (('config', args.config), ('checkpoint',
                                                 args.checkpoint)):
        if not osp.isfile(path):
            parser.error(f'{what} file not found: {path}')
    if args.input_size is not None and (min(args.input_size) < 32 or any(
            s % 32 for s in args.input_size)):
        parser.error('--input-size W H must be positive multiples of 32, '
                     f'got {args.input_size}')
    try:
        import onnx  # noqa: F401
    except ImportError:
        parser.error('the onnx package is needed: pip install onnx '
                     'onnxruntime')
    from mmtrack_kd.apis.export import (
        export_tracker_onnx,
        format_export_report,
    )
    try:
        result = export_tracker_onnx(
            args.config, args.checkpoint, args.out, args.input_size,
            args.opset, dynamic=not args.static, verify=not args.no_verify,
            cfg_options=args.cfg_options)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    print(format_export_report(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
