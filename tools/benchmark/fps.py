"""End-to-end tracking speed (model + tracker, batch 1) on a fixed clip.

Example:
    python tools/benchmark/fps.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/n/epoch_12.pth --input-size 320 192 --frames 100 \
        --compare configs/cstrack/cstrack_yolov5s_synthmot.py \
        work_dirs/s/epoch_12.pth
    python tools/benchmark/fps.py configs/cstrack/cstrack_yolov5n_synthmot.py \
        work_dirs/n/epoch_12.pth --input-size 320 192 --onnx [n.onnx]

The clip is one SynthMOT sequence rendered at the input size (seed 0), so
every model sees identical frames with people in them. Each frame is timed
in two parts: the model (tensor forward + decoding/NMS/embedding
gathering, ``CSTrack._forward`` + ``CSTrack._postprocess``) and the tracker
(``tracker.track``). With ``--compare`` the two models run interleaved
frame by frame in the same process, so machine load hits both alike, and
the speed ratio is printed. ``CHECKPOINT`` may be ``none`` (random
weights: only for testing the tool; untrained heads give unusual box
counts).

With ``--onnx`` the first model also runs with its network
(``_forward``) in ONNX Runtime on the CPU (:class:`ORTBackend`, swapped in
by :func:`forward_backend`), interleaved with the PyTorch run; decoding,
NMS, embedding gathering and the tracker are the same PyTorch code, so the
ratio ONNX / PyTorch is that of the network. Without a path the model is
first exported (``export_onnx``, at ``--input-size``) to a temporary file.
ONNX Runtime gets as many intra-op threads as torch has.
"""
import argparse
import contextlib
import copy
import os.path as osp
import sys
import tempfile
import time
from typing import Dict, List, Sequence

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def render_clip(width: int, height: int, frames: int,
                seed: int = 0) -> List[np.ndarray]:
    """``frames`` BGR uint8 (H, W, 3) SynthMOT frames of one sequence."""
    import cv2

    from mmtrack_kd.datasets.synthmot import (generate_sequence,
                                              resolve_knobs, sequence_rng)
    knobs = resolve_knobs('quick', width=width, height=height,
                          num_frames=frames)
    with tempfile.TemporaryDirectory() as tmp:
        seq = osp.join(tmp, 'CLIP')
        generate_sequence(seq, 'CLIP', sequence_rng(seed, 'test', 0), knobs)
        return [
            cv2.imread(osp.join(seq, 'img1', f'{i:06d}.jpg'))
            for i in range(1, frames + 1)
        ]


def build_model(config: str, checkpoint: str) -> torch.nn.Module:
    """The tracker of ``config`` (a KD config's student is not unwrapped:
    pass the student config) with ``checkpoint`` loaded, in eval mode."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmtrack_kd  # noqa: F401  (registers everything)
    from mmtrack_kd.utils.config import ckpt_num_ids, resolve_num_ids
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    head = cfg.model.get('id_head', {})
    if head.get('num_ids', 'auto') in (None, 'auto'):
        n = ckpt_num_ids(checkpoint) if checkpoint != 'none' else None
        if n is not None:
            head['num_ids'] = n
        else:
            try:
                resolve_num_ids(cfg)
            except (ValueError, OSError):
                head['num_ids'] = 16  # no data, random weights
    model = MODELS.build(cfg.model)
    if checkpoint != 'none':
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    if not hasattr(model, 'tracker'):
        raise ValueError(f'{config}: model.tracker is missing; pass a '
                         'tracker config (a KD config: its student config)')
    return model.eval()


class Timed:
    """One model, timed frame by frame on a clip.

    Args:
        model: a CSTrack-like model (``_forward``, ``_postprocess``,
            ``tracker``, ``data_preprocessor``).
        frames: BGR uint8 (H, W, 3) images; H, W multiples of 32.
    """

    def __init__(self, model: torch.nn.Module,
                 frames: Sequence[np.ndarray]) -> None:
        self.model = model
        dp = model.data_preprocessor
        mean = getattr(dp, 'mean', torch.zeros(3, 1, 1)).view(1, 3, 1, 1)
        std = getattr(dp, 'std', torch.ones(3, 1, 1)).view(1, 3, 1, 1)
        rgb = bool(getattr(dp, '_channel_conversion', False))
        self.inputs = []
        for img in frames:
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(
                2, 0, 1)[None].float()
            if rgb:
                x = x[:, [2, 1, 0]]
            self.inputs.append((x - mean) / std)
        self.model_s: List[float] = []
        self.tracker_s: List[float] = []

    @torch.no_grad()
    def step(self, index: int, record: bool) -> None:
        """Track frame ``index`` (0 resets the tracker)."""
        from mmdet.structures import DetDataSample
        x = self.inputs[index]
        h, w = x.shape[-2:]
        t0 = time.perf_counter()
        outs = self.model._forward(x)
        pred = self.model._postprocess(outs['det_preds'], outs['id_map'],
                                       (h, w))
        t1 = time.perf_counter()
        sample = DetDataSample(metainfo=dict(
            frame_id=index, img_shape=(h, w), ori_shape=(h, w),
            scale_factor=(1., 1.)))
        sample.pred_instances = pred
        self.model.tracker.track(sample)
        t2 = time.perf_counter()
        if record:
            self.model_s.append(t1 - t0)
            self.tracker_s.append(t2 - t1)

    def report(self) -> Dict[str, float]:
        model = float(np.sum(self.model_s))
        tracker = float(np.sum(self.tracker_s))
        n = len(self.model_s)
        return dict(frames=n, fps=n / max(model + tracker, 1e-9),
                    model_ms=1e3 * model / max(n, 1),
                    tracker_ms=1e3 * tracker / max(n, 1),
                    model_fps=n / max(model, 1e-9))


def measure(models: Sequence[torch.nn.Module], frames: Sequence[np.ndarray],
            warmup: int = 5) -> List[Dict[str, float]]:
    """Time every model on ``frames``, interleaved frame by frame.

    The first ``warmup`` frames of the clip are run but not timed (the
    tracker still sees them, so its state is that of a real clip).

    Returns:
        list: per model ``dict(frames, fps, model_ms, tracker_ms,
        model_fps)``.
    """
    if warmup >= len(frames):
        raise ValueError(f'--frames ({len(frames)}) must exceed the warm-up '
                         f'({warmup})')
    timed = [Timed(m, frames) for m in models]
    for i in range(len(frames)):
        order = timed if i % 2 == 0 else timed[::-1]
        for t in order:
            t.step(i, record=i >= warmup)
    return [t.report() for t in timed]


def ort_backend(onnx_file: str, threads: int):
    """An :class:`ORTBackend` of ``onnx_file`` on the CPU whose session
    uses ``threads`` intra-op threads (ONNX Runtime's default is every
    physical core, torch's may differ; the comparison needs both alike)."""
    import onnxruntime as ort

    from mmtrack_kd.apis.onnx_backend import ORTBackend
    backend = ORTBackend(onnx_file, providers=('CPUExecutionProvider', ))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    backend.session = ort.InferenceSession(
        onnx_file, sess_options=opts, providers=['CPUExecutionProvider'])
    return backend


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
                        help='a second model timed in the same run')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s own)')
    parser.add_argument('--onnx', nargs='?', const='', default=None,
                        metavar='MODEL.onnx',
                        help='also time the first model in ONNX Runtime '
                        '(CPU); without a path it is exported to a '
                        'temporary file first')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    w, h = args.input_size
    if w % 32 or h % 32 or w <= 0 or h <= 0:
        print(f'fps: --input-size {w} {h}: both must be positive multiples '
              'of 32', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    for path in [args.config] + ([args.compare[0]] if args.compare else []):
        if not osp.isfile(path):
            print(f'fps: config file not found: {path}', file=sys.stderr)
            return 2
    if args.onnx and not osp.isfile(args.onnx):
        print(f'fps: --onnx file not found: {args.onnx}', file=sys.stderr)
        return 2
    models = [build_model(args.config, args.checkpoint)]
    names = [osp.basename(args.config)]
    if args.compare:
        models.append(build_model(*args.compare))
        names.append(osp.basename(args.compare[0]))
    frames = render_clip(w, h, args.frames)
    with contextlib.ExitStack() as stack:
        if args.onnx is not None:
            from mmtrack_kd.apis.inference import forward_backend
            onnx_file = args.onnx
            if not onnx_file:
                from mmtrack_kd.apis.onnx_backend import export_onnx
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                onnx_file = osp.join(tmp, 'model.onnx')
                export_onnx(models[0], onnx_file, input_size=(w, h))
            backend = ort_backend(onnx_file, torch.get_num_threads())
            # a copy: its own tracker state, its _forward swapped for ORT
            onnx_model = copy.deepcopy(models[0])
            stack.enter_context(forward_backend(onnx_model, backend))
            models.append(onnx_model)
            names.append(f'{names[0]} (onnxruntime)')
        stats = measure(models, frames, args.warmup)
    print(f'torch threads: {torch.get_num_threads()}; input {w}x{h}; '
          f'{stats[0]["frames"]} timed frames after {args.warmup} warm-up')
    if args.onnx is not None:
        where = args.onnx or 'exported to a temporary file'
        print(f'onnxruntime: {where}, CPUExecutionProvider, '
              f'{torch.get_num_threads()} intra-op threads')
    for name, s in zip(names, stats):
        print(f'{name}: FPS {s["fps"]:.2f} (model {s["model_ms"]:.1f} ms + '
              f'tracker {s["tracker_ms"]:.1f} ms per frame; model alone '
              f'{s["model_fps"]:.2f} FPS)')
    if args.compare:
        print(f'ratio FPS {names[0]} / {names[1]}: '
              f'{stats[0]["fps"] / stats[1]["fps"]:.3f} (model alone '
              f'{stats[0]["model_fps"] / stats[1]["model_fps"]:.3f})')
    if args.onnx is not None:
        ort_s, pt_s = stats[-1], stats[0]
        print(f'ratio FPS ONNX / PyTorch ({names[0]}): '
              f'{ort_s["fps"] / pt_s["fps"]:.3f} (model alone '
              f'{ort_s["model_fps"] / pt_s["model_fps"]:.3f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
