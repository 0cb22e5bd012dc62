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
``tools/demo/track_video.py --backend onnx --onnx FILE``.
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


def default_input_size(cfg):
    """(W, H) of the first Resize of the test pipeline, rounded up to 32."""
    def find(steps):
        for step in steps or []:
            if step.get('type') in ('Resize', 'mmdet.Resize') and \
                    step.get('scale') is not None:
                return step['scale']
            found = find(step.get('transforms'))
            if found is not None:
                return found
        return None
    try:
        steps = cfg.get('test_pipeline') or \
            cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        steps = None
    scale = find(steps)
    if scale is None:
        return 320, 192
    if isinstance(scale, int):
        scale = (scale, scale)
    return tuple(-(-int(s) // 32) * 32 for s in scale)


def verify(model, onnx_file, input_size):
    """Largest |ORT - PyTorch| per output, and the output's max |value|."""
    import torch

    from mmtrack_kd.apis import ORTBackend
    w, h = input_size
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=gen)
    with torch.no_grad():
        ref = model._forward(x)
    got = ORTBackend(onnx_file)(x)
    pairs = list(zip(ref['det_preds'] + [ref['id_map']],
                     got['det_preds'] + [got['id_map']]))
    return [(float((a - b).abs().max()), float(a.abs().max()))
            for a, b in pairs]


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
    from mmtrack_kd.apis import export_onnx, init_tracker, load_config
    try:
        cfg = load_config(args.config, args.cfg_options)
        # the tracker is not exported, but init_tracker needs one
        model = init_tracker(cfg, args.checkpoint, 'cpu')
    except (FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    size = tuple(args.input_size) if args.input_size else \
        default_input_size(cfg)
    names = export_onnx(model, args.out, size, args.opset,
                        dynamic=not args.static)
    print(f'exported {args.out}: input (N, 3, H, W), example '
          f'{size[0]}x{size[1]}, outputs {names}, opset {args.opset}, '
          f'{"static" if args.static else "dynamic"} shapes')
    if not args.no_verify:
        try:
            diffs = verify(model, args.out, size)
        except ImportError:
            print('onnxruntime not installed: not verified')
        else:
            for name, (diff, scale) in zip(names, diffs):
                print(f'  {name}: max |onnxruntime - pytorch| = {diff:.3g} '
                      f'(max |output| {scale:.3g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
