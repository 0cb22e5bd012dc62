"""Speed measurements: end-to-end tracking FPS and the cost of a KD
training step.

Tracking FPS (``tools/benchmark/fps.py``): the clip is one SynthMOT sequence
rendered at the input size (seed 0), so every model sees identical frames with
people in them. Each frame is timed in two parts: the model (tensor forward +
decoding/NMS/embedding gathering, ``CSTrack._forward`` +
``CSTrack._postprocess``) and the tracker (``tracker.track``). Several models
run interleaved frame by frame in the same process, so machine load hits them
alike. On a GPU (``device='cuda'``) the frames are normalised and uploaded once
before timing, every timer is closed by ``torch.cuda.synchronize()``,
``cudnn.benchmark`` is on (the warm-up frames absorb its tuning), and ``fp16``
runs the network in half precision (its outputs are cast back to float32 for
the post-processing, which is timed with the model); the tracker runs on the
CPU as always (its time includes copying the detections back). With
``cuda_graph`` the network's tensor forward (``_forward``, plus the cast back
to float32 in fp16) is captured once per model in a CUDA graph on a static
input of the clip's size (:class:`GraphedForward`) and replayed for every
frame, which removes the per-kernel launch cost of Python at batch 1;
``cuda_graph='both'`` times every model twice in the same run, plain and
graphed, interleaved (the second named ``NAME [cuda graph]``).
``tracker_threads`` sets torch's threads while the tracker runs (restored
after it; the switch is left out of the timers). A model may also
run with its network in ONNX Runtime on the CPU (:class:`ORTBackend`, swapped
in by :func:`forward_backend`); decoding, NMS, embedding gathering and the
tracker are the same PyTorch code, so the ratio ONNX / PyTorch is that of the
network.

KD step overhead (``tools/benchmark/kd_step_overhead.py``): on one training
batch of a ``MOTDistiller`` config, interleaved (the order flips every
iteration), after one untimed warm-up of each:

- ``student``: ``student.loss`` + backward (training without KD);
- ``kd``: ``MOTDistiller.loss`` + backward (student, teacher forward,
  recorders, connectors, distillation losses);
- ``teacher``: the teacher's tensor forward under ``no_grad`` alone.

The steps are those of training after the connectors' warm-up
(``detach_iters``), which :func:`build_distiller_batch` ends: during it a
feature loss's gradient stops at its connectors and the step costs less
(the JSON's ``steady_state``).
The optimizer update is left out (equal for both, apart from the connector
parameters). The overhead beyond the teacher is ``(kd - teacher - student)
/ student``. :func:`time_components` then times the parts of the KD step
beyond the student and the teacher, each alone on the recorded tensors:
the recorders' hooks, the batch data, every connector and every loss,
forward and backward.

Both tools print their report and, with ``--out FILE``, write it as JSON
(:func:`step_overhead_json`, :func:`fps_json`), atomically, with the date
(UTC), the command line and the torch threads.
"""
import contextlib
import copy
import os
import os.path as osp
import statistics
import tempfile
import time
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import torch

__all__ = [
    'render_clip', 'build_model', 'Timed', 'measure', 'ort_backend',
    'measure_tracking_fps', 'format_fps_report', 'GraphedForward',
    'build_distiller_batch',
    'time_steps', 'time_components', 'measure_kd_step_overhead',
    'format_step_overhead', 'step_overhead_json', 'fps_json', 'write_json',
    'report_kd_step_overhead', 'report_tracking_fps'
]


# --------------------------------------------------------------------------
# tracking FPS
# --------------------------------------------------------------------------
def render_clip(width: int, height: int, frames: int, seed: int = 0,
                people: Optional[Tuple[int, int]] = None
                ) -> List[np.ndarray]:
    """``frames`` BGR uint8 (H, W, 3) SynthMOT frames of one sequence
    (the ``quick`` preset's knobs; ``people``: ``(min, max)`` people in
    view instead of the preset's)."""
    import cv2

    from mmtrack_kd.datasets.synthmot import (
        generate_sequence,
        resolve_knobs,
        sequence_rng,
    )
    crowd = {}
    if people is not None:
        crowd = dict(min_people=int(people[0]), max_people=int(people[1]))
    knobs = resolve_knobs('quick', width=width, height=height,
                          num_frames=frames, **crowd)
    with tempfile.TemporaryDirectory() as tmp:
        seq = osp.join(tmp, 'CLIP')
        generate_sequence(seq, 'CLIP', sequence_rng(seed, 'test', 0), knobs)
        return [
            cv2.imread(osp.join(seq, 'img1', f'{i:06d}.jpg'))
            for i in range(1, frames + 1)
        ]


def build_model(config: str, checkpoint: str, device: str = 'cpu',
                fp16: bool = False) -> torch.nn.Module:
    """The tracker of ``config`` with ``checkpoint`` loaded, in eval mode,
    on ``device`` (in half precision with ``fp16``).

    A KD config's student is not unwrapped: pass the student config.
    ``checkpoint`` may be ``'none'`` (random weights: only for testing;
    untrained heads give unusual box counts).
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import mmtrack_kd  # noqa: F401  (registers everything)
    from mmtrack_kd.utils.config import (
        ckpt_num_ids,
        load_config,
        resolve_num_ids,
    )
    cfg = load_config(config)
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
    model = model.to(device)
    if fp16:
        model = model.half()
    return model.eval()


def _synchronizer(device: str) -> Callable[[], None]:
    """What closes a timer on ``device``: ``torch.cuda.synchronize`` on a
    CUDA device (kernels run asynchronously), nothing on the CPU."""
    if torch.device(device).type == 'cuda':
        return torch.cuda.synchronize
    return lambda: None


def check_device(device: str) -> Optional[str]:
    """The problem with ``device`` for the FPS tool, or None."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        return f'--device {device}: not a torch device (cpu, cuda, cuda:N)'
    if kind not in ('cpu', 'cuda'):
        return f'--device {device}: only cpu and cuda are supported'
    if kind == 'cuda' and not torch.cuda.is_available():
        return (f'--device {device}: this torch ({torch.__version__}) sees '
                'no CUDA device')
    return None


def device_info(device: str, fp16: bool) -> dict:
    """``device``, ``fp16`` and, on a GPU, its name, torch's CUDA and
    cuDNN versions and ``cudnn_benchmark``."""
    info = dict(device=str(device), fp16=bool(fp16))
    if torch.device(device).type == 'cuda':
        info.update(gpu=torch.cuda.get_device_name(torch.device(device)),
                    cuda_version=torch.version.cuda,
                    cudnn_version=torch.backends.cudnn.version(),
                    cudnn_benchmark=bool(torch.backends.cudnn.benchmark))
    return info


class GraphedForward:
    """A tensor forward captured once in a CUDA graph and replayed.

    As PyTorch's documentation of whole-network capture shows: a static
    input (a copy of ``example``), ``warmup`` calls on a side stream (they
    also absorb ``cudnn.benchmark``'s tuning), then one capture under
    ``torch.cuda.graph``. Calling the object copies the frame into the
    static input, replays the graph and returns the static outputs, which
    the next call overwrites (use them before that).

    Args:
        forward (callable): Tensor -> tensors (a dict/list of tensors);
            must not synchronise with the host (no ``.item()``, no shapes
            that depend on values).
        example (Tensor): A CUDA tensor of the fixed input shape and dtype.
        warmup (int): Side-stream calls before the capture.
        cuda: The CUDA API (``torch.cuda``; another object with
            ``Stream``, ``current_stream``, ``stream``, ``CUDAGraph`` and
            ``graph`` only for tests).
    """

    def __init__(self, forward: Callable, example: torch.Tensor,
                 warmup: int = 3, cuda=None) -> None:
        if cuda is None:
            cuda = torch.cuda
            if not example.is_cuda:
                raise ValueError('cuda_graph: CUDA graphs need a CUDA device; '
                                 f'the input is on {example.device}')
        if warmup < 1:
            raise ValueError(f'cuda_graph: warmup must be >= 1, got {warmup}')
        self.static_input = example.clone()
        with torch.no_grad():
            side = cuda.Stream()
            side.wait_stream(cuda.current_stream())
            with cuda.stream(side):
                for _ in range(warmup):
                    forward(self.static_input)
            cuda.current_stream().wait_stream(side)
            self.graph = cuda.CUDAGraph()
            with cuda.graph(self.graph):
                self.static_output = forward(self.static_input)

    def __call__(self, x: torch.Tensor):
        if x.shape != self.static_input.shape or \
                x.dtype != self.static_input.dtype:
            raise ValueError(
                f'cuda_graph: captured for {tuple(self.static_input.shape)} '
                f'{self.static_input.dtype}, got {tuple(x.shape)} {x.dtype}')
        self.static_input.copy_(x)
        self.graph.replay()
        return self.static_output


def _to_float(outs: Any) -> Any:
    """``outs`` (tensors in dicts, lists and tuples) with every floating
    tensor cast to float32."""
    if isinstance(outs, torch.Tensor):
        return outs.float() if outs.is_floating_point() else outs
    if isinstance(outs, dict):
        return {k: _to_float(v) for k, v in outs.items()}
    if isinstance(outs, (list, tuple)):
        return type(outs)(_to_float(v) for v in outs)
    return outs


class Timed:
    """One model, timed frame by frame on a clip.

    Args:
        model (nn.Module): a tracker with ``tracker``,
            ``data_preprocessor`` and a frame split
            (:func:`mmtrack_kd.models.mot.split.frame_split`: CSTrack,
            FairMOT, mmdet's ByteTrack), whose ``network`` and ``detect``
            are the timed model part.
        frames (Sequence[np.ndarray]): BGR uint8 (H, W, 3) images; H, W
            multiples of 32.
        device (str): where the model is; the frames are normalised on the
            CPU and moved there once, before any timing.
        fp16 (bool): the model is in half precision: its inputs are made
            half too, and its outputs are cast back to float32 before the
            post-processing (timed with the model).
        cuda_graph (bool): run the network (``_forward`` and, in fp16, the
            cast back) as a :class:`GraphedForward` captured on the first
            frame (needs a CUDA device).
        tracker_threads (int, optional): torch threads while the tracker
            runs (the previous count is restored after it).
        graph_api: passed to :class:`GraphedForward` as ``cuda`` (tests).
    """

    def __init__(self, model: torch.nn.Module,
                 frames: Sequence[np.ndarray], device: str = 'cpu',
                 fp16: bool = False, cuda_graph: bool = False,
                 tracker_threads: Optional[int] = None,
                 graph_api=None) -> None:
        if tracker_threads is not None and tracker_threads < 1:
            raise ValueError('tracker_threads must be >= 1, got '
                             f'{tracker_threads}')
        from mmtrack_kd.models.mot.split import frame_split
        self.split = frame_split(model)
        self.test_cfg = self.split.model_test_cfg()
        self.model = model
        self.fp16 = bool(fp16)
        self.tracker_threads = tracker_threads
        self.sync = _synchronizer(device)
        dp = model.data_preprocessor
        mean = getattr(dp, 'mean', torch.zeros(3, 1, 1)).view(
            1, 3, 1, 1).float().cpu()
        std = getattr(dp, 'std', torch.ones(3, 1, 1)).view(
            1, 3, 1, 1).float().cpu()
        rgb = bool(getattr(dp, '_channel_conversion', False))
        self.inputs = []
        for img in frames:
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(
                2, 0, 1)[None].float()
            if rgb:
                x = x[:, [2, 1, 0]]
            x = ((x - mean) / std).to(device)
            self.inputs.append(x.half() if self.fp16 else x)
        self.network = self._network
        if cuda_graph:
            self.network = GraphedForward(self._network, self.inputs[0],
                                          cuda=graph_api)
        self.model_s: List[float] = []
        self.network_s: List[float] = []
        self.tracker_s: List[float] = []
        self.dets: List[int] = []
        self.tracks: List[int] = []

    def _network(self, x: torch.Tensor) -> Any:
        """The network forward of the model's frame split; in fp16 its
        outputs cast back to float32."""
        outs = self.split.network(x)
        if self.fp16:
            outs = _to_float(outs)
        return outs

    @torch.no_grad()
    def step(self, index: int, record: bool) -> None:
        """Track frame ``index`` (0 resets the tracker)."""
        from mmdet.structures import DetDataSample
        x = self.inputs[index]
        h, w = x.shape[-2:]
        sample = DetDataSample(metainfo=dict(
            frame_id=index, img_shape=(h, w), ori_shape=(h, w),
            pad_shape=(h, w), batch_input_shape=(h, w),
            scale_factor=(1., 1.)))
        sync = self.sync
        sync()
        t0 = time.perf_counter()
        outs = self.network(x)
        sync()
        t_net = time.perf_counter()
        self.split.detect(outs, x, sample, self.test_cfg, rescale=False)
        pred = sample.pred_instances
        sync()
        t1 = time.perf_counter()
        threads = torch.get_num_threads()
        t_track = t1
        if self.tracker_threads is not None:
            torch.set_num_threads(self.tracker_threads)
            t_track = time.perf_counter()  # the switch is not timed
        try:
            tracks = self.model.tracker.track(sample)
            sync()
            t2 = time.perf_counter()
        finally:
            if self.tracker_threads is not None:
                torch.set_num_threads(threads)
        if record:
            self.model_s.append(t1 - t0)
            self.network_s.append(t_net - t0)
            self.tracker_s.append(t2 - t_track)
            self.dets.append(len(pred))
            self.tracks.append(len(tracks))

    def report(self) -> Dict[str, float]:
        """``dict(frames, fps, model_ms, tracker_ms, model_fps,
        network_ms, postprocess_ms, tracker_share, dets_per_frame,
        tracks_per_frame)`` of the recorded frames (``model_ms`` =
        ``network_ms`` (the network forward) + ``postprocess_ms``
        (decoding, NMS, embedding gathering); ``tracker_share``: tracker
        time / frame time; detections in, tracks out of the tracker)."""
        model = float(np.sum(self.model_s))
        tracker = float(np.sum(self.tracker_s))
        n = len(self.model_s)
        return dict(frames=n, fps=n / max(model + tracker, 1e-9),
                    model_ms=1e3 * model / max(n, 1),
                    tracker_ms=1e3 * tracker / max(n, 1),
                    model_fps=n / max(model, 1e-9),
                    network_ms=1e3 * float(np.sum(self.network_s)) /
                    max(n, 1),
                    postprocess_ms=1e3 * (model - float(
                        np.sum(self.network_s))) / max(n, 1),
                    tracker_share=tracker / max(model + tracker, 1e-9),
                    dets_per_frame=float(np.mean(self.dets or [0])),
                    tracks_per_frame=float(np.mean(self.tracks or [0])))


def measure(models: Sequence[torch.nn.Module], frames: Sequence[np.ndarray],
            warmup: int = 5, device: str = 'cpu',
            fp16: bool = False,
            cuda_graph: Union[bool, Sequence[bool]] = False,
            tracker_threads: Optional[int] = None,
            graph_api=None) -> List[Dict[str, float]]:
    """Time every model on ``frames``, interleaved frame by frame.

    The first ``warmup`` frames of the clip are run but not timed (the
    tracker still sees them, so its state is that of a real clip).
    ``device`` and ``fp16``: where the models are and whether they are in
    half precision; ``cuda_graph`` (one flag, or one per model),
    ``tracker_threads`` and ``graph_api``: see :class:`Timed`.

    Returns:
        list[dict]: per model ``dict(frames, fps, model_ms, tracker_ms,
        model_fps)``.
    """
    if warmup >= len(frames):
        raise ValueError(f'--frames ({len(frames)}) must exceed the warm-up '
                         f'({warmup})')
    graphs = [bool(cuda_graph)] * len(models) \
        if isinstance(cuda_graph, bool) else [bool(g) for g in cuda_graph]
    if len(graphs) != len(models):
        raise ValueError(f'cuda_graph: {len(graphs)} flags for '
                         f'{len(models)} models')
    timed = [Timed(m, frames, device, fp16, cuda_graph=g,
                   tracker_threads=tracker_threads, graph_api=graph_api)
             for m, g in zip(models, graphs)]
    for i in range(len(frames)):
        order = timed if i % 2 == 0 else timed[::-1]
        for t in order:
            t.step(i, record=i >= warmup)
    return [t.report() for t in timed]


def ort_backend(onnx_file: str, threads: int, spinning: bool = False):
    """An :class:`ORTBackend` of ``onnx_file`` on the CPU whose session
    uses ``threads`` intra-op threads (ONNX Runtime's default is every
    physical core, torch's may differ; the comparison needs both alike),
    spinning while idle only when ``spinning``."""
    from mmtrack_kd.apis.onnx_backend import ORTBackend
    return ORTBackend(onnx_file, providers=('CPUExecutionProvider', ),
                      threads=threads, spinning=spinning)


def measure_tracking_fps(config: str,
                         checkpoint: str,
                         input_size: Tuple[int, int],
                         frames: int = 60,
                         warmup: int = 5,
                         compare: Optional[Union[Tuple[str, str], Sequence[
                             Tuple[str, str]]]] = None,
                         onnx: Optional[Union[str, Sequence[str]]] = None,
                         threads: Optional[int] = None,
                         people: Optional[Tuple[int, int]] = None,
                         device: str = 'cpu',
                         fp16: bool = False,
                         cuda_graph: Union[bool, str] = False,
                         tracker_threads: Optional[int] = None,
                         ort_spinning: bool = False) -> dict:
    """Tracking FPS (model + tracker, batch 1) of one or two models, and
    optionally of the first one's network in ONNX Runtime.

    Args:
        config (str): Tracker config.
        checkpoint (str): Its checkpoint, or ``'none'`` (random weights).
        input_size (tuple[int, int]): ``(W, H)`` of the clip, multiples
            of 32.
        frames (int): Clip length, warm-up included.
        warmup (int): Untimed first frames.
        compare (tuple[str, str] | list, optional): ``(config,
            checkpoint)`` of a second model timed in the same run,
            interleaved, or a list of such pairs (several models).
        onnx (str | Sequence[str], optional): Also time the first model
            with its network in ONNX Runtime (CPU, as many intra-op threads
            as torch has): the path of its ``.onnx`` file, several paths
            (e.g. its fp32 and int8 graphs, each timed, interleaved), or
            ``''`` / ``[]`` to export it at ``input_size`` to a temporary
            file first.
        threads (int, optional): torch threads (default: torch's own).
        people (tuple[int, int], optional): ``(min, max)`` people in view
            in the clip (default: the ``quick`` preset's).
        device (str): ``'cpu'`` or a CUDA device (``cudnn.benchmark`` is
            turned on there); ONNX Runtime runs on the CPU only.
        fp16 (bool): run the networks in half precision (meant for GPUs).
        cuda_graph (bool | str): replay each network's forward from a CUDA
            graph (:class:`GraphedForward`; CUDA devices only); ``'both'``:
            time every model plain and graphed, interleaved (a copy of
            the model, with its own tracker, named ``NAME [cuda graph]``).
        tracker_threads (int, optional): torch threads while the tracker
            runs (default: as during the rest of the frame).
        ort_spinning (bool): let ONNX Runtime's idle threads spin (its own
            default; :class:`~mmtrack_kd.apis.onnx_backend.ORTBackend`
            turns it off).

    Returns:
        dict: ``names`` (one per timed model: the config file names, then
        ``'NAME (onnxruntime)'``, or ``'NAME (onnxruntime: FILE)'`` with
        several files), ``stats`` (per model :meth:`Timed.report`),
        ``threads``, ``input_size``, ``warmup``, ``compare`` (bool),
        ``onnx`` (as given), ``onnx_files`` (the timed files), ``people``
        ``cuda_graph``, ``tracker_threads`` and :func:`device_info`.
    """
    w, h = input_size
    problem = check_device(device)
    if problem:
        raise ValueError(problem)
    if cuda_graph not in (False, True, 'both'):
        raise ValueError(f"cuda_graph must be True, False or 'both', got "
                         f'{cuda_graph!r}')
    if cuda_graph and torch.device(device).type != 'cuda':
        raise ValueError(f'cuda_graph: CUDA graphs need a CUDA device, got '
                         f'device={device!r}')
    if tracker_threads is not None and tracker_threads < 1:
        raise ValueError(f'tracker_threads must be >= 1, got '
                         f'{tracker_threads}')
    if onnx is not None and torch.device(device).type != 'cpu':
        raise ValueError('onnx: ONNX Runtime runs on the CPU here; time it '
                         "with device='cpu'")
    if threads:
        torch.set_num_threads(threads)
    if torch.device(device).type == 'cuda':
        torch.backends.cudnn.benchmark = True
    pairs = []
    if compare:
        pairs = [tuple(compare)] if isinstance(compare[0], str) else [
            tuple(c) for c in compare]
    models = [build_model(config, checkpoint, device, fp16)]
    names = [osp.basename(config)]
    for pair in pairs:
        models.append(build_model(*pair, device=device, fp16=fp16))
        names.append(osp.basename(pair[0]))
    clip = render_clip(w, h, frames, people=people)
    files: List[str] = []
    with contextlib.ExitStack() as stack:
        if onnx is not None:
            from mmtrack_kd.apis.inference import forward_backend
            files = [onnx] if isinstance(onnx, str) else list(onnx)
            files = [f for f in files if f]
            if not files:
                from mmtrack_kd.apis.onnx_backend import export_onnx
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                files = [osp.join(tmp, 'model.onnx')]
                export_onnx(models[0], files[0], input_size=(w, h))
            for onnx_file in files:
                backend = ort_backend(onnx_file, torch.get_num_threads(),
                                      spinning=ort_spinning)
                # a copy: its own tracker state, its _forward swapped
                onnx_model = copy.deepcopy(models[0])
                stack.enter_context(forward_backend(onnx_model, backend))
                models.append(onnx_model)
                names.append(f'{names[0]} (onnxruntime)' if len(files) == 1
                             else f'{names[0]} (onnxruntime: '
                             f'{osp.basename(onnx_file)})')
        graphs: Union[bool, List[bool]] = bool(cuda_graph)
        if cuda_graph == 'both':
            n = len(models)
            models += [copy.deepcopy(m) for m in models]  # own trackers
            names += [f'{name} [cuda graph]' for name in names]
            graphs = [False] * n + [True] * n
        stats = measure(models, clip, warmup, device, fp16, graphs,
                        tracker_threads)
    return dict(names=names, stats=stats, threads=torch.get_num_threads(),
                cuda_graph=cuda_graph, tracker_threads=tracker_threads,
                ort_spinning=bool(ort_spinning) if onnx is not None else None,
                input_size=(w, h), warmup=warmup, compare=bool(pairs),
                n_compare=len(pairs), onnx=onnx,
                onnx_files=files if onnx else [],
                people=list(people) if people else None,
                **device_info(device, fp16))


def _graph_pairs(result: dict) -> List[Tuple[int, int]]:
    """With ``cuda_graph='both'``: (plain, graphed) indices of each model
    in ``result['stats']``."""
    if result.get('cuda_graph') != 'both':
        return []
    n = len(result['stats']) // 2
    return [(i, n + i) for i in range(n)]


def format_fps_report(result: dict) -> str:
    """The printed report of :func:`measure_tracking_fps`: one line per
    model, then the speed ratios."""
    names, stats = result['names'], result['stats']
    w, h = result['input_size']
    threads, onnx = result['threads'], result['onnx']
    lines = [f'torch threads: {threads}; input {w}x{h}; '
             f'{stats[0]["frames"]} timed frames after {result["warmup"]} '
             'warm-up']
    if result.get('people'):
        lines.append('clip: {} to {} people in view'.format(
            *result['people']))
    if result.get('device', 'cpu') != 'cpu' or result.get('fp16'):
        gpu = f' ({result["gpu"]})' if result.get('gpu') else ''
        graph = {True: ', CUDA graph', 'both': ', plain and CUDA graph'}.get(
            result.get('cuda_graph', False), '')
        lines.append(f'device: {result["device"]}{gpu}, '
                     f'{"fp16" if result.get("fp16") else "fp32"}{graph}')
    if result.get('tracker_threads') is not None:
        lines.append(f'torch threads during the tracker: '
                     f'{result["tracker_threads"]}')
    if onnx is not None:
        where = (', '.join(onnx) if not isinstance(onnx, str) else onnx) \
            or 'exported to a temporary file'
        spin = 'spinning' if result.get('ort_spinning') else 'not spinning'
        lines.append(f'onnxruntime: {where}, CPUExecutionProvider, '
                     f'{threads} intra-op threads ({spin} while idle)')
    for name, s in zip(names, stats):
        extra = ''
        if 'tracker_share' in s:
            extra = (f'; network {s["network_ms"]:.1f} ms + post-processing '
                     f'{s["postprocess_ms"]:.1f} ms; tracker '
                     f'{100 * s["tracker_share"]:.1f} % of the frame, '
                     f'{s["dets_per_frame"]:.1f} detections and '
                     f'{s["tracks_per_frame"]:.1f} tracks per frame')
        lines.append(
            f'{name}: FPS {s["fps"]:.2f} (model {s["model_ms"]:.1f} ms + '
            f'tracker {s["tracker_ms"]:.1f} ms per frame; model alone '
            f'{s["model_fps"]:.2f} FPS{extra})')
    if result['compare']:
        for i in range(1, 1 + result.get('n_compare', 1)):
            lines.append(
                f'ratio FPS {names[0]} / {names[i]}: '
                f'{stats[0]["fps"] / stats[i]["fps"]:.3f} (model alone '
                f'{stats[0]["model_fps"] / stats[i]["model_fps"]:.3f})')
    for plain, graphed in _graph_pairs(result):
        lines.append(
            f'ratio FPS {names[graphed]} / {names[plain]}: '
            f'{stats[graphed]["fps"] / stats[plain]["fps"]:.3f} (model alone '
            f'{stats[graphed]["model_fps"] / stats[plain]["model_fps"]:.3f}; '
            f'network {stats[graphed]["network_ms"]:.1f} against '
            f'{stats[plain]["network_ms"]:.1f} ms)')
    n_onnx = len(result.get('onnx_files') or [None]) if onnx is not None \
        else 0
    pt_s = stats[0]
    for i in range(len(stats) - n_onnx, len(stats)):
        ort_s = stats[i]
        label = names[0] if n_onnx == 1 else names[i]
        lines.append(
            f'ratio FPS ONNX / PyTorch ({label}): '
            f'{ort_s["fps"] / pt_s["fps"]:.3f} (model alone '
            f'{ort_s["model_fps"] / pt_s["model_fps"]:.3f})')
    first = len(stats) - n_onnx
    for i in range(first + 1, len(stats)):
        lines.append(
            f'ratio FPS {names[i]} / {names[first]}: '
            f'{stats[i]["fps"] / stats[first]["fps"]:.3f} (model alone '
            f'{stats[i]["model_fps"] / stats[first]["model_fps"]:.3f})')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# KD training-step overhead
# --------------------------------------------------------------------------
#: ``wall``: elapsed time; ``cpu``: CPU time of the process (all its threads),
#: which leaves out the time other processes hold the cores: steadier on a
#: shared machine, and equal to the wall time with one torch thread on an
#: idle core.
CLOCKS: Dict[str, Callable[[], float]] = dict(wall=time.perf_counter,
                                              cpu=time.process_time)


def _loss_step(fn: Callable[[], Dict[str, torch.Tensor]],
               params: List[torch.nn.Parameter]) -> None:
    losses = fn()
    total = sum(v.sum() for k, v in losses.items()
                if k.startswith('loss') and isinstance(v, torch.Tensor))
    total.backward()
    for p in params:
        p.grad = None


def time_steps(model, inputs: torch.Tensor, data_samples, iters: int,
               clock: str = 'wall') -> Dict[str, List[float]]:
    """Seconds per call of the ``student``, ``kd`` and ``teacher`` steps
    (see the module docstring), ``iters`` times each, interleaved, after
    one untimed warm-up of each.

    Args:
        model (MOTDistiller): The distiller.
        inputs (Tensor): (N, 3, H, W) pre-processed batch.
        data_samples (list): Its data samples.
        iters (int): Timed calls of each step.
        clock (str): A key of :data:`CLOCKS`.

    Returns:
        dict[str, list[float]]: seconds per call of each step.
    """
    now = CLOCKS[clock]
    from mmtrack_kd.models.distill.distiller import tensor_forward
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()

    def student():
        _loss_step(lambda: model.student.loss(inputs, data_samples), params)

    def kd():
        _loss_step(lambda: model.loss(inputs, data_samples), params)

    def teacher():
        with torch.no_grad():
            tensor_forward(model.teacher, model._teacher_inputs(inputs))

    steps = dict(student=student, kd=kd, teacher=teacher)
    for fn in steps.values():  # warm-up
        fn()
    times = {k: [] for k in steps}
    for i in range(iters):
        # the order flips every iteration, so no step always follows the
        # same one
        order = list(steps.items())
        for name, fn in (order if i % 2 == 0 else order[::-1]):
            t0 = now()
            fn()
            times[name].append(now() - t0)
    return times


def _grad_leaf(value: Any) -> Any:
    """``value`` detached as a leaf that requires grad (Tensors inside
    lists/tuples too)."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            return value.detach().requires_grad_()
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_grad_leaf(v) for v in value)
    return value


def _loss_sum(out: Any) -> torch.Tensor:
    if isinstance(out, dict):
        return sum(v.sum() for v in out.values())
    return out.sum()


def _timed_hook(hook: Callable, acc: List[float],
                now: Callable[[], float]) -> Callable:
    def timed(*args):
        t0 = now()
        hook(*args)
        acc[0] += now() - t0
    return timed


def time_components(model, inputs: torch.Tensor, data_samples, iters: int,
                    clock: str = 'wall') -> Dict[str, List[float]]:
    """Seconds per call of each part of a KD step beyond the student step,
    ``iters`` times, after one untimed warm-up.

    Each iteration runs the teacher's forward under its recorders and the
    student's loss forward under its own (as :meth:`MOTDistiller.loss`
    does), then times every part of the distillation on the recorded
    tensors, in isolation: a connector or a
    loss gets its inputs detached (student side: leaves that require grad),
    so its backward is its own. ``clock`` is a key of :data:`CLOCKS`.

    Returns:
        dict[str, list[float]]: ``teacher_forward`` (the teacher forward
        inside the KD step, recorders on), ``recorders.student`` /
        ``recorders.teacher`` (time spent in the recorders' hooks),
        ``batch_data`` (the ``from_data`` values), ``connector.NAME.forward``
        / ``.backward`` and ``loss.NAME.forward`` / ``.backward``.
    """
    from mmtrack_kd.models.distill.distiller import tensor_forward
    from mmtrack_kd.models.distill.mappings import collect_batch_data
    now = CLOCKS[clock]
    model.train()
    hook_time = {}
    saved = []
    for side in ('student', 'teacher'):
        acc = hook_time[side] = [0.0]
        for rec in getattr(model, f'{side}_recorders').recorders.values():
            saved.append(rec)
            rec._hook = _timed_hook(rec._hook, acc, now)
    times: Dict[str, List[float]] = {}

    def add(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)

    try:
        for it in range(iters + 1):
            step: Dict[str, float] = {}

            def tick(key, seconds, step=step):
                step[key] = step.get(key, 0.0) + seconds

            for acc in hook_time.values():
                acc[0] = 0.0
            try:
                # in the order of MOTDistiller.loss
                t0 = now()
                with torch.no_grad(), model.teacher_recorders:
                    tensor_forward(model.teacher,
                                   model._teacher_inputs(inputs))
                tick('teacher_forward', now() - t0)
                with model.student_recorders:
                    model.student.loss(inputs, data_samples)
                for side, acc in hook_time.items():
                    tick(f'recorders.{side}', acc[0])
                t0 = now()
                data = collect_batch_data(inputs, data_samples,
                                          model._data_keys)
                tick('batch_data', now() - t0)
                for name, specs in model.loss_specs.items():
                    kwargs = {}
                    for arg, spec in specs.items():
                        if spec.from_data:
                            kwargs[arg] = data[spec.from_data]
                            continue
                        value = model._recorded(spec)
                        if not spec.from_student:
                            kwargs[arg] = value
                            continue
                        if not spec.connectors:
                            kwargs[arg] = _grad_leaf(value)
                            continue
                        single = len(spec.connectors) == 1
                        values = [value] if single else list(value)
                        mapped = []
                        for c, v in zip(spec.connectors, values):
                            x = _grad_leaf(v)
                            t0 = now()
                            y = model.connectors[c](x)
                            tick(f'connector.{c}.forward',
                                 now() - t0)
                            t0 = now()
                            y.backward(torch.ones_like(y))
                            tick(f'connector.{c}.backward',
                                 now() - t0)
                            mapped.append(_grad_leaf(y))
                        kwargs[arg] = mapped[0] if single else mapped
                    t0 = now()
                    out = _loss_sum(model.distill_losses[name](**kwargs))
                    tick(f'loss.{name}.forward', now() - t0)
                    t0 = now()
                    if out.requires_grad:
                        out.backward()
                    tick(f'loss.{name}.backward', now() - t0)
            finally:
                model.student_recorders.reset_data()
                model.teacher_recorders.reset_data()
                for p in model.parameters():
                    p.grad = None
            if it > 0:  # the first one is the warm-up
                for key, seconds in step.items():
                    add(key, seconds)
    finally:
        for rec in saved:
            del rec._hook  # back to the class's method
    return times


def build_distiller_loader(config: str, cfg_options: Optional[dict] = None):
    """The distiller of ``config`` (built with seed 0) and its training
    loader (seed 0, no workers): the same weights and batches on every
    call."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, set_random_seed

    import mmtrack_kd  # noqa: F401
    from mmtrack_kd.utils import load_config, resolve_num_ids
    cfg = load_config(config, cfg_options)
    if cfg.model.get('type') != 'MOTDistiller':
        raise ValueError(f'{config}: model.type must be MOTDistiller, got '
                         f'{cfg.model.get("type")!r}')
    resolve_num_ids(cfg)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    set_random_seed(0)  # the same weights and batch on every run
    model = MODELS.build(cfg.model)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    return model, Runner.build_dataloader(loader_cfg, seed=0)


def build_distiller_batch(config: str, cfg_options: Optional[dict] = None,
                          steady: bool = True):
    """The distiller of ``config`` and one pre-processed training batch.

    With ``steady`` the connectors' warm-up (``detach_iters``) is ended
    (:func:`~mmtrack_kd.models.distill.end_warmups`): the steps then do
    what a training step does after it, the feature losses' gradients
    reaching the student through the connectors (during the warm-up they
    stop at the connectors, and a step costs less).

    Returns:
        tuple: ``(model, inputs, data_samples)``; ``inputs`` is (N, 3, H, W).
    """
    model, loader = build_distiller_loader(config, cfg_options)
    if steady:
        from mmtrack_kd.models.distill import end_warmups
        end_warmups(model)
    batch = next(iter(loader))
    data = model.data_preprocessor(batch, True)
    return model, data['inputs'], data['data_samples']


def measure_kd_step_overhead(config: str,
                             iters: int = 10,
                             cfg_options: Optional[dict] = None,
                             threads: Optional[int] = None,
                             components: bool = True,
                             clock: str = 'wall',
                             steady: bool = True) -> dict:
    """Median times of the student, KD and teacher steps of a
    ``MOTDistiller`` config on one of its training batches, and of the
    parts of the KD step beyond the student and the teacher.

    Args:
        config (str): A ``MOTDistiller`` config.
        iters (int): Timed calls of each step.
        cfg_options (dict, optional): Config overrides.
        threads (int, optional): torch threads (default: torch's own).
        components (bool): Also time the parts (:func:`time_components`).
        clock (str): ``'wall'`` or ``'cpu'`` (see :data:`CLOCKS`).
        steady (bool): Time the steps after the connectors' warm-up
            (:func:`build_distiller_batch`); False: those of the warm-up.

    Returns:
        dict: ``config``, ``times`` (seconds per call of each step),
        ``median`` (their medians), ``overhead_beyond_teacher``
        (``(kd - teacher - student) / student``), ``overhead_paired``
        (:func:`paired_overhead`), ``components`` (part ->
        seconds per call; empty without ``components``), ``threads``,
        ``batch_shape``, ``iters``, ``clock`` and ``steady``.
    """
    if clock not in CLOCKS:
        raise ValueError(f'clock must be one of {sorted(CLOCKS)}, got '
                         f'{clock!r}')
    if threads:
        torch.set_num_threads(threads)
    model, inputs, samples = build_distiller_batch(config, cfg_options,
                                                   steady)
    times = time_steps(model, inputs, samples, iters, clock)
    parts = time_components(model, inputs, samples, iters, clock) \
        if components else {}
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(config=config, times=times, median=med,
                overhead_beyond_teacher=(med['kd'] - med['teacher'] -
                                         med['student']) / med['student'],
                overhead_paired=paired_overhead(times),
                components=parts, threads=torch.get_num_threads(),
                batch_shape=tuple(inputs.shape), iters=iters, clock=clock,
                steady=steady)


def paired_overhead(times: Dict[str, List[float]]) -> float:
    """The median over the iterations of ``(kd - teacher - student) /
    student`` within each iteration (:func:`time_steps` runs the three
    steps of an iteration back to back): a slow spell of the machine then
    moves the three times of an iteration together instead of one step's
    median more than another's."""
    return statistics.median(
        (k - t - s) / s
        for s, k, t in zip(times['student'], times['kd'], times['teacher']))


def format_step_overhead(result: dict) -> str:
    """The printed report of :func:`measure_kd_step_overhead`: the medians,
    the ratios ``kd / student``, ``teacher / student`` and
    ``(kd - teacher) / student``, then the parts of the KD step beyond the
    student and the teacher, each as a share of the student step."""
    med = result['median']
    lines = [f'torch threads: {result["threads"]}; batch '
             f'{result["batch_shape"]}; {result["iters"]} iterations, '
             f'medians of {result.get("clock", "wall")} time']
    for k in ('student', 'kd', 'teacher'):
        lines.append(f'{k:>8}: {1e3 * med[k]:.1f} ms')
    lines.append(f'ratio kd / student: {med["kd"] / med["student"]:.3f}')
    lines.append(f'ratio teacher forward / student: '
                 f'{med["teacher"] / med["student"]:.3f}')
    beyond = med['kd'] - med['teacher']
    lines.append(f'ratio (kd - teacher) / student: '
                 f'{beyond / med["student"]:.3f} '
                 f'(overhead beyond the teacher forward: '
                 f'{result["overhead_beyond_teacher"]:+.3f})')
    if 'overhead_paired' in result:
        lines.append(f'median of the iterations\' own overheads: '
                     f'{result["overhead_paired"]:+.3f}')
    if result.get('components'):
        lines.append('parts of the KD step, each timed alone (medians; '
                     'share of the student step):')
        total = 0.0
        for name, seconds in result['components'].items():
            m = statistics.median(seconds)
            if name != 'teacher_forward':
                total += m
            lines.append(f'  {name:<32} {1e3 * m:8.2f} ms '
                         f'{100 * m / med["student"]:6.2f} %')
        lines.append(f'  {"sum beyond the teacher forward":<32} '
                     f'{1e3 * total:8.2f} ms '
                     f'{100 * total / med["student"]:6.2f} %')
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# JSON reports
# --------------------------------------------------------------------------
def _run_info(command: Optional[Sequence[str]]) -> dict:
    import datetime
    import platform
    import shlex
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        command=shlex.join(command) if command else None,
        torch_version=torch.__version__, machine=platform.machine(),
        processor=platform.processor() or None,
        cpu_count=os.cpu_count(), load_average=_load_average())


def _load_average() -> Optional[List[float]]:
    """The 1, 5 and 15 minute load averages when the system has them (how
    busy a shared machine was during a measurement)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def step_overhead_json(result: dict,
                       command: Optional[Sequence[str]] = None) -> dict:
    """The JSON document of a :func:`measure_kd_step_overhead` result.

    Returns:
        dict: ``overhead_beyond_teacher`` (a fraction of a student step),
        ``median_ms`` (student, kd, teacher), ``ratios``, ``components``
        (part -> ``dict(median_ms, share_of_student)``), ``torch_threads``,
        ``batch_shape``, ``iters``, ``config``, ``date`` (UTC, ISO 8601),
        ``command`` and the torch version.
    """
    med = result['median']
    parts = {
        name: dict(median_ms=1e3 * statistics.median(v),
                   share_of_student=statistics.median(v) / med['student'])
        for name, v in result.get('components', {}).items()}
    return dict(
        overhead_beyond_teacher=result['overhead_beyond_teacher'],
        overhead_paired=result.get('overhead_paired'),
        times_ms={k: [round(1e3 * t, 3) for t in v]
                  for k, v in result.get('times', {}).items()},
        median_ms={k: 1e3 * v for k, v in med.items()},
        ratios=dict(kd_over_student=med['kd'] / med['student'],
                    teacher_over_student=med['teacher'] / med['student']),
        components=parts,
        components_note='each part timed alone on the recorded tensors '
        '(inputs detached); recorders: time inside their hooks',
        steady_state=result.get('steady', False),
        torch_threads=result['threads'], clock=result.get('clock', 'wall'),
        batch_shape=list(result['batch_shape']), iters=result['iters'],
        config=result.get('config'), **_run_info(command))


def fps_json(result: dict, command: Optional[Sequence[str]] = None) -> dict:
    """The JSON document of a :func:`measure_tracking_fps` result.

    Returns:
        dict: ``models`` (per model ``dict(name, fps, model_ms, tracker_ms,
        model_fps, frames)``), ``speedup`` (each later model's FPS over the
        first's; absent with one model), ``model_speedup`` (same, model
        alone), ``onnx_speedup`` and ``onnx_model_speedup`` (with several
        ONNX files: each later file's FPS over the first file's, e.g. int8
        over fp32), ``input_size``, ``warmup``, ``torch_threads``,
        ``onnx``, ``people``, ``device``, ``fp16``, ``cuda_graph``,
        ``tracker_threads``, ``ort_spinning`` (None without ONNX
        Runtime; on a GPU also ``gpu``, ``cuda_version``,
        ``cudnn_version``, ``cudnn_benchmark``), with ``cuda_graph='both'``
        ``graph_speedup`` and ``graph_model_speedup`` (per model: graphed
        FPS over plain FPS), ``date``, ``command`` and the torch version.
    """
    stats = result['stats']
    models = [dict(name=n, **s) for n, s in zip(result['names'], stats)]
    doc = dict(models=models, input_size=list(result['input_size']),
               warmup=result['warmup'], torch_threads=result['threads'],
               onnx=result['onnx'], people=result.get('people'),
               device=result.get('device', 'cpu'),
               fp16=bool(result.get('fp16', False)),
               cuda_graph=result.get('cuda_graph', False),
               tracker_threads=result.get('tracker_threads'),
               ort_spinning=result.get('ort_spinning'))
    pairs = _graph_pairs(result)
    if pairs:
        doc['graph_speedup'] = {
            result['names'][p]: stats[g]['fps'] / stats[p]['fps']
            for p, g in pairs}
        doc['graph_model_speedup'] = {
            result['names'][p]: stats[g]['model_fps'] / stats[p]['model_fps']
            for p, g in pairs}
    for key in ('gpu', 'cuda_version', 'cudnn_version', 'cudnn_benchmark'):
        if key in result:
            doc[key] = result[key]
    files = result.get('onnx_files') or []
    if len(files) > 1:
        first = stats[len(stats) - len(files)]
        later = list(zip(result['names'], stats))[len(stats) -
                                                  len(files) + 1:]
        doc['onnx_speedup'] = {n: s['fps'] / first['fps'] for n, s in later}
        doc['onnx_model_speedup'] = {
            n: s['model_fps'] / first['model_fps'] for n, s in later}
    if len(stats) > 1:
        first = stats[0]
        speedup = {n: s['fps'] / first['fps']
                   for n, s in zip(result['names'][1:], stats[1:])}
        model_speedup = {n: s['model_fps'] / first['model_fps']
                         for n, s in zip(result['names'][1:], stats[1:])}
        # one compared model: plain numbers
        doc['speedup'] = next(iter(speedup.values())) \
            if len(speedup) == 1 else speedup
        doc['model_speedup'] = next(iter(model_speedup.values())) \
            if len(model_speedup) == 1 else model_speedup
    doc.update(_run_info(command))
    return doc


def write_json(doc: dict, path: str) -> None:
    """Write ``doc`` to ``path`` atomically (indented, keys in order)."""
    import json

    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(path) as f:
        json.dump(doc, f, indent=2)
        f.write('\n')


def report_kd_step_overhead(config: str, iters: int = 10,
                            cfg_options: Optional[dict] = None,
                            threads: Optional[int] = None,
                            out: Optional[str] = None,
                            command: Optional[Sequence[str]] = None,
                            clock: str = 'wall') -> str:
    """Measure (:func:`measure_kd_step_overhead`), write the JSON to
    ``out`` when given, and return the printed report."""
    result = measure_kd_step_overhead(config, iters, cfg_options, threads,
                                      clock=clock)
    if out:
        write_json(step_overhead_json(result, command), out)
    return format_step_overhead(result)


def report_tracking_fps(config: str, checkpoint: str,
                        input_size: Tuple[int, int],
                        out: Optional[str] = None,
                        command: Optional[Sequence[str]] = None,
                        **kwargs) -> str:
    """Measure (:func:`measure_tracking_fps`, ``kwargs`` passed on), write
    the JSON to ``out`` when given, and return the printed report."""
    result = measure_tracking_fps(config, checkpoint, input_size, **kwargs)
    if out:
        write_json(fps_json(result, command), out)
    return format_fps_report(result)
