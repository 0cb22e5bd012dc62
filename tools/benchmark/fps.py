"""End-to-end tracking speed (model + tracker, batch 1) on a fixed clip.

Example:
    python tools/benchmark/fps.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/n/epoch_12.pth --input-size 320 192 --frames 100 \
        --compare configs/cstrack/cstrack_yolov5s_synthmot.py \
        work_dirs/s/epoch_12.pth
    python tools/benchmark/fps.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/n/epoch_12.pth --input-size 320 192 --onnx [n.onnx]
    python tools/benchmark/fps.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/n/epoch_12.pth --input-size 576 320 --threads 1 \
        --onnx n.onnx n_int8.onnx --people 30 30 --out fps_int8.json
    python tools/benchmark/fps.py configs/cstrack/cstrack_yolov5l_mot17.py \
        none --input-size 1088 608 --device cuda --fp16 --warmup 30 \
        --compare configs/cstrack/cstrack_yolov5s_mot17.py none \
        --compare kd_student.py kd_student.pth --out fps_gpu.json
    python tools/benchmark/fps.py configs/cstrack/cstrack_yolov5l_mot17.py \
        none --input-size 1088 608 --device cuda --fp16 --cuda-graph both \
        --tracker-threads 1 --out fps_gpu_graph.json

The clip is one SynthMOT sequence rendered at the input size (seed 0); each
frame is timed as model + tracker. With ``--compare`` the two models run
interleaved frame by frame in the same process and the speed ratio is printed
(``--compare`` may be given several times: every model is compared with the
first); ``--out FILE`` also writes the figures as JSON (per model FPS, model
and tracker ms; ``speedup``: the compared model's FPS over the first's).
``CHECKPOINT`` may be ``none`` (random weights: only for testing the tool).
With ``--onnx`` the first model also runs with its network in ONNX Runtime on
the CPU, interleaved with the PyTorch run; without a path the model is first
exported (at ``--input-size``) to a temporary file; with several paths (an fp32
and an int8 graph of the same model, ``tools/deploy/``) each runs interleaved
and the ratios of the later ones over the first are printed (``onnx_speedup``
in the JSON). ``--people MIN MAX`` sets how many people are in view; each
model's line gives the tracker's share of the frame time and the detections and
tracks per frame. ``--device cuda`` runs the models on a GPU (timers closed by
``torch.cuda.synchronize()``, ``cudnn.benchmark`` on: give enough ``--warmup``
frames for its tuning) and ``--fp16`` in half precision; the tracker stays on
the CPU (``tools/benchmark/gpu_fps.sh``). ``--cuda-graph`` captures each
network's forward once in a CUDA graph on a static input and replays it per
frame (decoding, NMS, embedding gathering and the tracker unchanged);
``--cuda-graph both`` times every model plain and graphed in the same run.
``--tracker-threads N`` sets torch's threads while the tracker runs.
``--ort-spinning`` lets ONNX Runtime's idle threads spin (its default; off
here and in every ONNX Runtime session of the plugin, as spinning threads slow
the post-processing, the tracker and other sessions down).
See :mod:`mmtrack_kd.apis.speed`.
"""
import argparse
import os.path as osp
import sys

from mmtrack_kd.apis.speed import report_tracking_fps


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Tracking FPS (model + tracker, batch 1)')
    parser.add_argument('config', help='tracker config')
    parser.add_argument('checkpoint', help='checkpoint, or "none"')
    parser.add_argument('--input-size', nargs=2, type=int, metavar=('W', 'H'),
                        required=True, help='frame size (multiples of 32)')
    parser.add_argument('--frames', type=int, default=60,
                        help='clip length, warm-up included (default 60)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed first frames (default 5)')
    parser.add_argument('--compare', nargs=2, metavar=('CONFIG2', 'CKPT2'),
                        action='append',
                        help='a second model timed in the same run (may be '
                        'given several times)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s own)')
    parser.add_argument('--onnx', nargs='*', default=None,
                        metavar='MODEL.onnx',
                        help='also time the first model in ONNX Runtime '
                        '(CPU), from each file given (e.g. fp32 and int8); '
                        'without a path it is exported to a temporary file '
                        'first')
    parser.add_argument('--people', nargs=2, type=int, metavar=('MIN',
                                                                'MAX'),
                        help='people in view in the clip (default: the '
                        'quick preset\'s 4 to 9)')
    parser.add_argument('--device', default='cpu',
                        help='cpu (default) or cuda[:N]')
    parser.add_argument('--fp16', action='store_true',
                        help='run the networks in half precision (GPU)')
    parser.add_argument('--cuda-graph', nargs='?', const='on',
                        choices=('on', 'both'), default=None,
                        help='replay each network forward from a CUDA graph '
                        '(needs --device cuda); "both": time every model '
                        'plain and graphed, interleaved')
    parser.add_argument('--tracker-threads', type=int, default=None,
                        metavar='N', help='torch threads while the tracker '
                        'runs (default: as for the rest of the frame)')
    parser.add_argument('--ort-spinning', action='store_true',
                        help="let ONNX Runtime's idle threads spin (its "
                        'default; off unless given)')
    parser.add_argument('--out', metavar='FILE.json',
                        help='also write the figures as JSON')
    return parser.parse_args(argv)


def check_args(args):
    """The first problem with the arguments, or None."""
    w, h = args.input_size
    if w % 32 or h % 32 or w <= 0 or h <= 0:
        return f'--input-size {w} {h}: both must be positive multiples of 32'
    for path in [args.config] + [c[0] for c in args.compare or []]:
        if not osp.isfile(path):
            return f'config file not found: {path}'
    for path in [args.checkpoint] + [c[1] for c in args.compare or []]:
        if path != 'none' and not osp.isfile(path):
            return f'checkpoint not found: {path}'
    for path in args.onnx or []:
        if not osp.isfile(path):
            return f'--onnx file not found: {path}'
    from mmtrack_kd.apis.speed import check_device
    problem = check_device(args.device)
    if problem:
        return problem
    if args.onnx is not None and args.device != 'cpu':
        return '--onnx runs ONNX Runtime on the CPU: use it with --device cpu'
    if args.cuda_graph and not args.device.startswith('cuda'):
        return ('--cuda-graph needs --device cuda (CUDA graphs do not run '
                'on the CPU)')
    for flag, value in (('--threads', args.threads),
                        ('--tracker-threads', args.tracker_threads)):
        if value is not None and value < 1:
            return f'{flag} {value}: expected a positive count'
    if args.people is not None and not 0 <= args.people[0] <= \
            args.people[1]:
        return (f'--people {args.people[0]} {args.people[1]}: expected '
                '0 <= MIN <= MAX')
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    problem = check_args(args)
    if problem:
        print(f'fps: {problem}', file=sys.stderr)
        return 2
    command = ['python', 'tools/benchmark/fps.py'] + list(
        sys.argv[1:] if argv is None else argv)
    print(report_tracking_fps(
        args.config, args.checkpoint, tuple(args.input_size), out=args.out,
        command=command, frames=args.frames, warmup=args.warmup,
        compare=[tuple(c) for c in args.compare] if args.compare else None,
        onnx=args.onnx, threads=args.threads,
        people=tuple(args.people) if args.people else None,
        device=args.device, fp16=args.fp16,
        cuda_graph={None: False, 'on': True}.get(args.cuda_graph,
                                                 args.cuda_graph),
        tracker_threads=args.tracker_threads,
        ort_spinning=args.ort_spinning))
    return 0


if __name__ == '__main__':
    sys.exit(main())
