"""int8 post-training quantization of an exported tracking network.

Example:
    python tools/deploy/export_onnx.py CONFIG student.pth --out fp32.onnx
    python tools/deploy/quantize_int8.py CONFIG student.pth \
        --onnx fp32.onnx --calib-data data/synthmot_quick \
        --calib-frames 300 --out int8.onnx

ONNX Runtime static quantization, QDQ format: int8 weights (per output
channel unless ``--per-tensor``), uint8 activations whose ranges are
calibrated on ``--calib-frames`` frames spread over the ``train`` split of
``--calib-data`` (default: the config's training data root), each read
through the config's test pipeline and the model's data preprocessor.
Without ``--onnx`` the model is exported first. The int8 graph keeps the
fp32 graph's input and output names, so it runs wherever the fp32 one does:
``tools/demo/track_video.py --backend onnx --onnx int8.onnx``,
``tools/benchmark/fps.py --onnx fp32.onnx int8.onnx``, ``tools/test.py
--onnx int8.onnx``. The output is checked with ``onnx.checker`` and written
atomically. See :mod:`mmtrack_kd.apis.quantize`.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

CALIB_METHODS = ('minmax', 'entropy', 'percentile')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='int8 post-training quantization (ONNX Runtime)')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='model checkpoint (plain, not a '
                        'distillation checkpoint)')
    parser.add_argument('--out', required=True, help='output int8 .onnx')
    parser.add_argument('--onnx', metavar='FP32.onnx',
                        help='the fp32 export of the same model (default: '
                        'export it first)')
    parser.add_argument('--calib-data', metavar='DATA_ROOT',
                        help='dataset root (SPLIT/SEQ/img1/*.jpg) or image '
                        "folder (default: the config's training data root)")
    parser.add_argument('--calib-split', default='train',
                        help='split folder under --calib-data (default '
                        'train)')
    parser.add_argument('--calib-frames', type=int, default=300,
                        help='calibration frames (default 300)')
    parser.add_argument('--calib-method', default='minmax',
                        choices=CALIB_METHODS,
                        help='activation range calibration (default minmax)')
    parser.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per tensor instead of per '
                        'output channel')
    parser.add_argument('--exclude-nodes', nargs='+', default=None,
                        metavar='NODE', help='graph node names kept fp32')
    parser.add_argument('--no-verify', action='store_true',
                        help='skip the int8 vs fp32 output comparison')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    for what, path in (('config', args.config), ('checkpoint',
                                                 args.checkpoint)):
        if not osp.isfile(path):
            parser.error(f'{what} file not found: {path}')
    if args.onnx is not None and not osp.isfile(args.onnx):
        parser.error(f'--onnx: file not found: {args.onnx}')
    if args.calib_data is not None and not osp.isdir(args.calib_data):
        parser.error(f'--calib-data: folder not found: {args.calib_data}')
    if args.calib_frames < 1:
        parser.error(f'--calib-frames must be >= 1, got {args.calib_frames}')
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        parser.error('the onnx and onnxruntime packages are needed: pip '
                     'install onnx onnxruntime')
    from mmtrack_kd.apis.quantize import (
        format_quantize_report,
        quantize_tracker_int8,
    )
    try:
        result = quantize_tracker_int8(
            args.config, args.checkpoint, args.out, onnx=args.onnx,
            calib_data=args.calib_data, calib_frames=args.calib_frames,
            calib_split=args.calib_split, per_channel=not args.per_tensor,
            calib_method=args.calib_method,
            nodes_to_exclude=args.exclude_nodes,
            verify=not args.no_verify, cfg_options=args.cfg_options)
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    print(format_quantize_report(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
