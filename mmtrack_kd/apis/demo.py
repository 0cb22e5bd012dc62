"""The demos: tracking any video (``tools/demo/track_video.py``) and the
whole story on SynthMOT in one call (``tools/demo/run_demo.py``,
``make demo``)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
import warnings
from typing import Dict, List, Optional, Sequence

__all__ = [
    'track_video', 'run_demo', 'format_demo_table', 'write_demo_plot',
    'count_params', 'REPO_ROOT'
]

#: The repository root (the demo runs the tools and configs found there).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER_CFG = 'configs/cstrack/cstrack_yolov5s_synthmot.py'
STUDENT_CFG = 'configs/cstrack/cstrack_yolov5n_synthmot.py'
KD_CFG = 'configs/kd/cstrack_s2n_kd_synthmot.py'
METRICS = (('MOTA', 'mot/MOTA'), ('IDF1', 'mot/IDF1'), ('MT%', 'mot/MT%'),
           ('HOTA', 'mot/HOTA'), ('IDs', 'mot/IDs'), ('FPS', 'FPS'))
ITER_RE = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]')


# --------------------------------------------------------------------------
# tracking a video
# --------------------------------------------------------------------------
def track_video(video: str,
                config: str,
                checkpoint: Optional[str],
                out: str,
                txt: Optional[str] = None,
                device: str = 'cpu',
                score_thr: Optional[float] = None,
                backend: str = 'pytorch',
                onnx: Optional[str] = None,
                fps: Optional[float] = None,
                show_score: bool = False,
                cfg_options: Optional[dict] = None,
                show_progress: bool = True) -> dict:
    """Track the people in a video and write an annotated video and,
    optionally, a MOTChallenge result file.

    Args:
        video (str): Video file, or folder of images (sorted by name).
        config (str): Model config file (a KD config tracks with its
            student).
        checkpoint (str, optional): Plain model checkpoint; may be None
            with ``backend='onnx'``.
        out (str): Annotated video, ``.mp4`` (mp4v) or ``.gif``.
        txt (str, optional): MOTChallenge result file to write.
        device (str): torch device.
        score_thr (float, optional): Detection score threshold
            (``model.test_cfg.score_thr``).
        backend (str): Network runtime, ``'pytorch'`` or ``'onnx'``
            (post-processing and tracker stay PyTorch).
        onnx (str, optional): Exported model for ``backend='onnx'``.
        fps (float, optional): Output frame rate (default: the video's, or
            25 for a frame folder).
        show_score (bool): Write the score beside each id.
        cfg_options (dict, optional): Config overrides.
        show_progress (bool): Show a progress bar.

    Returns:
        dict: ``frames`` (frames tracked), ``num_ids`` (distinct track
        ids), ``out``, ``txt``, ``declared_frames`` (the video header's
        frame count, or None) and ``warnings`` (the messages of
        :func:`video_warnings`, each also issued as a
        :class:`VideoTrackingWarning`: no track in the whole video, or a
        video that ends before its declared frame count).

    Raises:
        VideoReadError: the video cannot be read.
        FileNotFoundError: a missing config or checkpoint.
        ValueError: a checkpoint that does not fit the config.
        ImportError: ``backend='onnx'`` without onnxruntime.
        ONNXInputError: frames the ONNX model cannot take.
    """
    from tqdm import tqdm

    from mmtrack_kd.datasets.mot_io import write_mot_txt

    from .inference import (
        draw_tracks,
        init_tracker,
        track_frames,
        tracks_to_mot_rows,
    )
    from .onnx_backend import ORTBackend
    from .video_io import FrameSource, VideoWriter
    source = FrameSource(video, fps=fps)
    cfg_options = dict(cfg_options or {})
    if score_thr is not None:
        cfg_options['model.test_cfg.score_thr'] = score_thr
    model = init_tracker(config, checkpoint, device, cfg_options)
    ort = ORTBackend(onnx) if backend == 'onnx' else None

    frames = []

    def remember(src):
        for img in src:
            frames.append(img)
            yield img

    results = []
    total = len(source) or None
    with VideoWriter(out, source.fps, source.frame_size) as writer:
        for tracks in tqdm(track_frames(model, remember(source), ort),
                           total=total, unit='frame',
                           disable=not show_progress):
            img = frames.pop()
            writer.write(draw_tracks(img, tracks, show_score))
            results.append(tracks)
    if txt:
        write_mot_txt(txt, tracks_to_mot_rows(results))
    num_ids = len({int(i) for r in results for i in r.ids})
    problems = video_warnings(
        video, len(results), num_ids, source.declared_frames,
        model.cfg.model.get('test_cfg', {}).get('score_thr'))
    for problem in problems:
        warnings.warn(problem, VideoTrackingWarning, stacklevel=2)
    return dict(frames=len(results), num_ids=num_ids, out=out, txt=txt,
                declared_frames=source.declared_frames, warnings=problems)


class VideoTrackingWarning(UserWarning):
    """A tracked video whose result is probably not what the user
    wanted: no track at all, or fewer frames than the video declares."""


def video_warnings(video: str, frames: int, num_ids: int,
                   declared_frames: Optional[int] = None,
                   score_thr: Optional[float] = None) -> List[str]:
    """The warnings of a finished :func:`track_video` call.

    Args:
        video (str): The video tracked (named in the messages).
        frames (int): Frames read and tracked.
        num_ids (int): Distinct track ids over the whole video.
        declared_frames (int, optional): Frame count the video's header
            declares (None for a folder of frames or when unknown).
        score_thr (float, optional): Detection score threshold used.

    Returns:
        list[str]: one message per problem; empty when none.
    """
    problems = []
    if declared_frames is not None and frames < declared_frames:
        problems.append(
            f'{video} ended after {frames} frames, but its header declares '
            f'{declared_frames}: {declared_frames - frames} frames could '
            'not be read; the file is probably truncated or damaged')
    if frames > 0 and num_ids == 0:
        thr = '' if score_thr is None else f' (score threshold {score_thr})'
        problems.append(
            f'no track in the whole of {video} ({frames} frames): the model '
            f'detected no one{thr}. Likely cause: it was trained on '
            'synthetic SynthMOT data only, as the demo\'s models are, and '
            'does not find real people; to track real people train on '
            'MOT17 or CrowdHuman with a configs/cstrack/*_mot17.py config '
            '(docs/mot17.md)')
    return problems


# --------------------------------------------------------------------------
# the SynthMOT demo
# --------------------------------------------------------------------------
class _Step:
    """Run one tool as a subprocess with its log in a file; a tqdm bar
    follows training iterations in the log."""

    def __init__(self, out: str, threads: int, show_progress: bool) -> None:
        self.show_progress = show_progress
        self.logs = osp.join(out, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                        MKL_NUM_THREADS=str(threads))

    def __call__(self, name: str, cmd: List[str],
                 total_iters: Optional[int] = None) -> float:
        log = osp.join(self.logs, f'{name}.log')
        t0 = time.time()
        bar = None
        if total_iters and self.show_progress:
            from tqdm import tqdm
            bar = tqdm(total=total_iters, desc=f'{name:>10}', unit='it')
        else:
            print(f'[demo] {name} ...', flush=True)
        with open(log, 'w') as f:
            proc = subprocess.Popen([sys.executable] + cmd, cwd=REPO_ROOT,
                                    env=self.env, stdout=f,
                                    stderr=subprocess.STDOUT)
            done = 0
            while proc.poll() is None:
                time.sleep(2)
                if bar is not None:
                    done = max(done, _progress(log))
                    bar.n = min(done, total_iters)
                    bar.refresh()
        if bar is not None:
            bar.n = total_iters if proc.returncode == 0 else bar.n
            bar.close()
        if proc.returncode != 0:
            tail = open(log).read()[-3000:]
            raise SystemExit(f'[demo] step {name!r} failed (exit '
                             f'{proc.returncode}); log: {log}\n{tail}')
        return time.time() - t0


def _progress(log: str) -> int:
    """Global training iteration reached, from the last mmengine line."""
    last = 0
    try:
        with open(log) as f:
            for m in ITER_RE.finditer(f.read()):
                epoch, it, per = map(int, m.groups())
                last = (epoch - 1) * per + it
    except OSError:
        pass
    return last


def _iters_per_epoch(data_root: str, batch_size: int = 4) -> int:
    with open(osp.join(data_root, 'annotations',
                       'train_cocoformat.json')) as f:
        n = len(json.load(f)['images'])
    return -(-n // batch_size)


def count_params(ckpt: str) -> int:
    """Learnable parameters of a plain model checkpoint (BN statistics and
    counters excluded)."""
    from .inference import read_state_dict
    state = read_state_dict(ckpt)
    return sum(v.numel() for k, v in state.items()
               if v.is_floating_point() and 'running_' not in k)


def run_demo(out: str = 'outputs/demo',
             data: str = 'data/synthmot_quick',
             epochs: int = 8,
             seed: int = 0,
             threads: int = 2,
             show_progress: bool = True,
             data_knobs: Sequence[str] = ()) -> Dict[str, dict]:
    """Teacher, student and KD student on SynthMOT, end to end.

    1. makes the SynthMOT ``quick`` data (if missing),
    2. trains a teacher (CSTrack-S), a student (CSTrack-N) and a KD student
       (CSTrack-N taught by the teacher with the three losses of this
       project), all with the same schedule and seed,
    3. tracks the test split with each and scores it (MOTA, IDF1, MT, HOTA,
       FPS, parameters),
    4. prints a table, writes it (``summary.md``, ``summary.json``), a plot
       and a tracking GIF of the KD student.

    Every step runs the project's own command-line tools in a subprocess,
    whose logs go to ``OUT/logs/``; a finished training is skipped when the
    demo is run again. Relative paths are relative to the repository root
    (:data:`REPO_ROOT`), which is the working directory during the call.

    Args:
        out (str): Output folder.
        data (str): SynthMOT root (made with the quick preset if absent).
        epochs (int): Training epochs of every model.
        seed (int): Training seed.
        threads (int): torch threads of every step.
        show_progress (bool): Progress bars for the trainings.
        data_knobs (Sequence[str]): SynthMOT knobs ``name=value`` for the
            generated data (e.g. ``num_frames=10``).

    Returns:
        dict: per model (``teacher``, ``student``, ``kd_student``) its
        ``cfg``, ``ckpt``, ``metrics``, ``params_M`` and, when trained in
        this call, ``train_s``.
    """
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        return _run_demo(out, data, epochs, seed, threads, show_progress,
                         data_knobs)
    finally:
        os.chdir(cwd)


def _run_demo(out, data_root, epochs, seed, threads, show_progress,
              data_knobs):
    os.makedirs(out, exist_ok=True)
    step = _Step(out, threads, show_progress)
    t_start = time.time()

    if not osp.isfile(osp.join(data_root, 'annotations',
                               'test_cocoformat.json')):
        knobs = []
        for kv in data_knobs:
            key, _, value = kv.partition('=')
            knobs += ['--' + key.replace('_', '-'), value]
        step('data', ['tools/data/make_synthmot.py', '--out', data_root,
                      '--preset', 'quick', '--seed', '0', '--no-progress'] +
             knobs)
    data = data_root.rstrip('/') + '/'
    data_opts = [f'{k}.dataset.data_root={data}' for k in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')]
    common = ['--epochs', str(epochs), '--cfg-options',
              f'randomness.seed={seed}',
              'train_cfg.val_interval=1000'] + data_opts
    total = epochs * _iters_per_epoch(data_root)
    ckpt_name = f'epoch_{epochs}.pth'

    runs = {}
    for name, cfg, extra in (
            ('teacher', TEACHER_CFG, []),
            ('student', STUDENT_CFG, []),
            ('kd_student', KD_CFG, None)):
        work = osp.join(out, name)
        ckpt = osp.join(work, ckpt_name)
        if extra is None:  # the KD student learns from the teacher
            extra = [f'model.teacher_ckpt={runs["teacher"]["ckpt"]}']
        if not osp.isfile(ckpt):
            runs.setdefault(name, {})['train_s'] = step(
                f'{name}', ['tools/train.py', cfg, '--work-dir', work] +
                common + extra, total_iters=total)
        runs.setdefault(name, {}).update(cfg=cfg, ckpt=ckpt)

    # the KD checkpoint holds the student and connectors: extract the student
    kd_plain = osp.join(out, 'kd_student', 'student_only.pth')
    step('extract', ['tools/extract_student.py', runs['kd_student']['ckpt'],
                     kd_plain])
    runs['kd_student'].update(cfg=STUDENT_CFG, ckpt=kd_plain)

    for name, run in runs.items():
        res = osp.join(out, name, 'test_metrics.json')
        step(f'test_{name}', ['tools/test.py', run['cfg'], run['ckpt'],
                              '--work-dir', osp.join(out, name, 'test'),
                              '--out', res, '--results-dir',
                              osp.join(out, name, 'results'),
                              '--cfg-options'] + data_opts)
        with open(res) as f:
            run['metrics'] = json.load(f)
        run['params_M'] = count_params(run['ckpt']) / 1e6

    table = format_demo_table(runs)
    print('\n' + table)
    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(osp.join(out, 'summary.md')) as f:
        f.write(table + '\n')
    with atomic_write(osp.join(out, 'summary.json')) as f:
        json.dump(runs, f, indent=2, default=float)
    plot = write_demo_plot(runs, osp.join(out, 'demo_metrics.png'))

    seq_dir = osp.join(data_root, 'test')
    seq = sorted(os.listdir(seq_dir))[0]
    gif = osp.join(out, 'kd_student_tracks.gif')
    step('video', ['tools/demo/track_video.py',
                   osp.join(seq_dir, seq, 'img1'), STUDENT_CFG, kd_plain,
                   '--out', gif, '--no-progress', '--fps', '10'])
    print(f'\n[demo] done in {(time.time() - t_start) / 60:.1f} min')
    print(f'[demo] table: {osp.join(out, "summary.md")}')
    print(f'[demo] plot:  {plot}')
    print(f'[demo] video: {gif}')
    print(f'[demo] logs:  {osp.join(out, "logs")}')
    return runs


def format_demo_table(runs: Dict[str, dict]) -> str:
    """A markdown table: one row per model, its parameters (M) and the
    test metrics of :data:`METRICS`."""
    head = ['model', 'params (M)'] + [m for m, _ in METRICS]
    rows = ['| ' + ' | '.join(head) + ' |',
            '|' + '---|' * len(head)]
    for name, run in runs.items():
        m = run['metrics']
        cells = [name, f'{run["params_M"]:.2f}']
        for _, key in METRICS:
            v = m.get(key)
            cells.append('-' if v is None else (
                f'{v:.1f}' if isinstance(v, float) else str(v)))
        rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def write_demo_plot(runs: Dict[str, dict], path: str) -> str:
    """Bars of MOTA, IDF1, HOTA, MT% per model and IDF1 against FPS, as a
    PNG at ``path``; returns ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(runs)
    keys = [('MOTA', 'mot/MOTA'), ('IDF1', 'mot/IDF1'), ('HOTA', 'mot/HOTA'),
            ('MT%', 'mot/MT%')]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        vals = [runs[name]['metrics'].get(k) or 0.0 for _, k in keys]
        axes[0].bar([j + i * width for j in range(len(keys))], vals, width,
                    label=name)
    axes[0].set_xticks([j + width * (len(names) - 1) / 2
                        for j in range(len(keys))])
    axes[0].set_xticklabels([k for k, _ in keys])
    axes[0].set_ylabel('score (test split)')
    axes[0].legend()
    for name in names:
        axes[1].scatter(runs[name]['metrics'].get('FPS', 0),
                        runs[name]['metrics'].get('mot/IDF1', 0), s=60)
        axes[1].annotate(name, (runs[name]['metrics'].get('FPS', 0),
                                runs[name]['metrics'].get('mot/IDF1', 0)))
    axes[1].set_xlabel('tracking FPS (CPU, batch 1)')
    axes[1].set_ylabel('IDF1')
    fig.suptitle('SynthMOT quick: teacher, student, KD student')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
