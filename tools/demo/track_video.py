"""Track the people in any video and write an annotated video and a
MOTChallenge result file.

Examples:
    python tools/demo/track_video.py clip.mp4 \
        configs/cstrack/cstrack_yolov5n_synthmot.py epoch_12.pth \
        --out tracked.mp4 --txt tracked.txt
    # a folder of frames (sorted by name), written as a gif
    python tools/demo/track_video.py data/seq/img1 CONFIG CKPT --out seq.gif
    # the exported network in ONNX Runtime (post-processing and tracker are
    # the same as with PyTorch; CHECKPOINT may then be left out)
    python tools/demo/track_video.py clip.mp4 CONFIG --backend onnx \
        --onnx cstrack.onnx --out tracked.mp4

For a distillation checkpoint, run tools/extract_student.py first. A
warning (on stderr) says when the whole video yields no track (the demo's
models know only synthetic SynthMOT people; real video needs a model
trained on MOT17 or CrowdHuman, docs/mot17.md) and when the video ends
before the frame count its header declares (a truncated file). See
:func:`mmtrack_kd.apis.demo.track_video`.
"""
import argparse
import os.path as osp
import sys
import warnings

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Track a video (file or folder of frames)')
    parser.add_argument('video', help='video file, or folder of images')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint', nargs='?', default=None,
        help='model checkpoint (optional with --backend onnx)')
    parser.add_argument('--out', required=True,
                        help='annotated video: .mp4 (mp4v) or .gif')
    parser.add_argument('--txt', help='MOTChallenge result file to write')
    parser.add_argument('--device', default='cpu', help='torch device')
    parser.add_argument(
        '--score-thr', type=float,
        help='detection score threshold (model.test_cfg.score_thr)')
    parser.add_argument('--backend', choices=['pytorch', 'onnx'],
                        default='pytorch', help='network runtime')
    parser.add_argument('--onnx', help='exported model for --backend onnx')
    parser.add_argument('--fps', type=float,
                        help='output frame rate (default: the video\'s, or '
                        '25 for a frame folder)')
    parser.add_argument('--show-score', action='store_true',
                        help='write the score beside each id')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar')
    args = parser.parse_args(argv)
    return parser, args


def check_args(parser, args):
    """Fail early, argparse-style, on every path that cannot be used."""
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    if args.backend == 'onnx':
        if not args.onnx:
            parser.error('--backend onnx needs --onnx FILE')
        if not osp.isfile(args.onnx):
            parser.error(f'ONNX file not found: {args.onnx}')
    elif args.checkpoint is None:
        parser.error('the checkpoint is required with --backend pytorch')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint file not found: {args.checkpoint}')
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            parser.error(f'--device {args.device}: CUDA is not available')
    if args.score_thr is not None and not 0 <= args.score_thr <= 1:
        parser.error(f'--score-thr must lie in [0, 1], got {args.score_thr}')


def main(argv=None):
    parser, args = parse_args(argv)
    check_args(parser, args)
    from mmtrack_kd.apis import ONNXInputError, VideoReadError
    from mmtrack_kd.apis.demo import VideoTrackingWarning, track_video
    try:
        with warnings.catch_warnings():
            # printed below, once, without Python's warning prefix
            warnings.simplefilter('ignore', VideoTrackingWarning)
            result = track_video(
                args.video, args.config, args.checkpoint, args.out,
                txt=args.txt, device=args.device, score_thr=args.score_thr,
                backend=args.backend, onnx=args.onnx, fps=args.fps,
                show_score=args.show_score, cfg_options=args.cfg_options,
                show_progress=not args.no_progress)
    except (VideoReadError, ONNXInputError, FileNotFoundError,
            ValueError) as e:
        parser.error(str(e))
    except ImportError as e:
        if args.backend != 'onnx':
            raise
        parser.error(f'--backend onnx needs onnxruntime ({e}): pip install '
                     'onnxruntime')
    print(f'{result["frames"]} frames, {result["num_ids"]} track ids -> '
          f'{args.out}' + (f', {args.txt}' if args.txt else ''))
    for problem in result['warnings']:
        print(f'warning: {problem}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
