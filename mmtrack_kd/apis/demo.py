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
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = [
    'track_video', 'video_warnings', 'VideoTrackingWarning', 'run_demo',
    'measure_demo_fps', 'write_comparison_video', 'check_demo_targets',
    'format_demo_summary', 'demo_sentence', 'format_demo_table',
    'write_demo_plot', 'count_params', 'REPO_ROOT', 'TARGETS'
]

#: The repository root (the demo runs the tools and configs found there).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER_CFG = 'configs/demo/cstrack_demo_teacher.py'
STUDENT_CFG = 'configs/demo/cstrack_demo_student.py'
KD_CFG = 'configs/demo/cstrack_demo_kd.py'
#: The demo's data: SynthMOT's ``bench`` preset with these knobs.
DEMO_DATA = 'data/synthmot_demo'
DATA_PRESET = 'bench'
DATA_KNOBS = dict(num_seqs_train=6, num_seqs_val=1, num_seqs_test=5,
                  num_frames=60, width=320, height=192)
TEACHER_EPOCHS = 8
STUDENT_EPOCHS = 4
METRICS = (('MOTA', 'mot/MOTA'), ('IDF1', 'mot/IDF1'), ('MT%', 'mot/MT%'),
           ('HOTA', 'mot/HOTA'), ('IDs', 'mot/IDs'))
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
#: The demo's targets (issue: the demo tells the story): the teacher's MOTA
#: is positive, it leads the student by at least ``teacher_lead`` IDF1
#: points, the KD student recovers at least ``gap_recovered_pct`` % of that
#: lead, and the whole demo takes at most ``minutes`` on the 2-core machine.
TARGETS = dict(teacher_mota=0.0, teacher_lead=10.0, gap_recovered_pct=30.0,
               minutes=12.0)


class _Job:
    """One tool running as a subprocess, its output in a log file, with an
    optional tqdm bar that follows the training iterations in the log."""

    def __init__(self, name: str, cmd: List[str], log: str, env: dict,
                 total_iters: Optional[int], show_progress: bool,
                 position: int) -> None:
        self.name, self.log, self.total = name, log, total_iters
        self.bar = None
        if total_iters and show_progress:
            from tqdm import tqdm
            self.bar = tqdm(total=total_iters, desc=f'{name:>10}', unit='it',
                            position=position, leave=True)
        else:
            print(f'[demo] {name} ...', flush=True)
        self.t0 = time.time()
        self._file = open(log, 'w')
        self.proc = subprocess.Popen([sys.executable] + cmd, cwd=REPO_ROOT,
                                     env=env, stdout=self._file,
                                     stderr=subprocess.STDOUT)

    def poll(self) -> Optional[int]:
        """The exit code when finished, else None; moves the bar."""
        code = self.proc.poll()
        if self.bar is not None:
            done = self.total if code == 0 else _progress(self.log)
            self.bar.n = min(max(self.bar.n, done), self.total)
            self.bar.refresh()
        if code is not None:
            self.seconds = time.time() - self.t0
            self._file.close()
            if self.bar is not None:
                self.bar.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._file.close()
        if self.bar is not None:
            self.bar.close()


class _Step:
    """Runs the demo's steps: the project's tools as subprocesses, logs in
    ``OUT/logs/NAME.log``, several lanes of steps side by side.

    Args:
        out (str): The demo's output folder.
        threads (int): CPU threads for the whole demo; lanes that run side
            by side share them (each gets ``threads // lanes``, at least 1).
        show_progress (bool): tqdm bars for the trainings.
    """

    def __init__(self, out: str, threads: int, show_progress: bool) -> None:
        self.threads = max(int(threads), 1)
        self.show_progress = show_progress
        self.logs = osp.join(out, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.seconds: Dict[str, float] = {}

    def _env(self, threads: int) -> dict:
        return dict(os.environ, OMP_NUM_THREADS=str(threads),
                    MKL_NUM_THREADS=str(threads))

    def __call__(self, name: str, cmd: List[str],
                 total_iters: Optional[int] = None) -> float:
        """Run one step with every thread; returns its seconds."""
        self.lanes([[(name, cmd, total_iters)]])
        return self.seconds[name]

    def lanes(self, lanes: Sequence[Sequence[tuple]]) -> None:
        """Run lanes of steps ``(name, cmd, total_iters)``: the steps of a
        lane one after the other, the lanes side by side when there are
        threads for more than one (else one lane after the other). A failed
        step stops the others and raises ``SystemExit`` with its log's
        tail."""
        lanes = [list(lane) for lane in lanes if lane]
        if len(lanes) > self.threads:
            lanes = [[s for lane in lanes for s in lane]]
        each = max(self.threads // max(len(lanes), 1), 1)
        active: Dict[int, _Job] = {}
        try:
            while active or any(lanes):
                for i, lane in enumerate(lanes):
                    if i not in active and lane:
                        name, cmd, total = lane.pop(0)
                        active[i] = _Job(
                            name, cmd, osp.join(self.logs, f'{name}.log'),
                            self._env(each), total, self.show_progress, i)
                time.sleep(1)
                for i, job in list(active.items()):
                    code = job.poll()
                    if code is None:
                        continue
                    del active[i]
                    if code != 0:
                        with open(job.log) as f:
                            tail = f.read()[-3000:]
                        raise SystemExit(
                            f'[demo] step {job.name!r} failed (exit {code}); '
                            f'log: {job.log}\n{tail}')
                    self.seconds[job.name] = job.seconds
        finally:
            for job in active.values():
                job.kill()


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


def _split_size(data_root: str, split: str) -> Tuple[int, int]:
    """(sequences, frames) of a split's CocoVID annotation file."""
    with open(osp.join(data_root, 'annotations',
                       f'{split}_cocoformat.json')) as f:
        ann = json.load(f)
    return len(ann['videos']), len(ann['images'])


def count_params(ckpt: str) -> int:
    """Learnable parameters of a plain model checkpoint (BN statistics and
    counters excluded)."""
    from .inference import read_state_dict
    state = read_state_dict(ckpt)
    return sum(v.numel() for k, v in state.items()
               if v.is_floating_point() and 'running_' not in k)


def run_demo(out: str = 'outputs/demo',
             data: str = DEMO_DATA,
             epochs: int = STUDENT_EPOCHS,
             teacher_epochs: int = TEACHER_EPOCHS,
             seed: int = 0,
             threads: int = 2,
             show_progress: bool = True,
             data_knobs: Sequence[str] = (),
             fps_frames: int = 100) -> Dict[str, dict]:
    """Teacher, student and KD student on SynthMOT, end to end.

    1. makes the demo's SynthMOT data (if missing): the ``bench`` preset
       with :data:`DATA_KNOBS` (``data_knobs`` override them),
    2. trains a teacher (``configs/demo/cstrack_demo_teacher.py``), a
       student at half its width (``cstrack_demo_student.py``) and the
       same student taught by the teacher (``cstrack_demo_kd.py``); the
       students get the same seed and schedule, the teacher a longer one,
    3. tracks the test split with each and scores it (MOTA, IDF1, MT, HOTA,
       IDs, parameters),
    4. measures the three models' tracking FPS in one interleaved run on a
       fixed clip (:func:`measure_demo_fps`), with nothing else running,
    5. writes ``summary.md`` (table, targets, a closing sentence with the
       numbers), ``summary.json``, ``fps.json``, a plot and the student and
       the KD student side by side on a test sequence
       (``student_vs_kd.gif`` and ``.mp4``, ids drawn).

    Training and testing run the project's own command-line tools in
    subprocesses, whose logs go to ``OUT/logs/``; with ``threads >= 2`` the
    teacher trains beside the student, and the KD student beside the
    teacher's test. A finished training is skipped when the demo is run
    again (the summary then says that the time is not that of a full
    run). Relative paths are relative to the repository root
    (:data:`REPO_ROOT`), which is the working directory during the call.

    Args:
        out (str): Output folder.
        data (str): SynthMOT root (made if absent).
        epochs (int): Training epochs of the student and the KD student.
        teacher_epochs (int): Training epochs of the teacher.
        seed (int): Training seed.
        threads (int): CPU threads for the demo (steps side by side share
            them; the FPS run uses one).
        show_progress (bool): Progress bars for the trainings.
        data_knobs (Sequence[str]): SynthMOT knobs ``name=value`` over
            :data:`DATA_KNOBS` (e.g. ``num_frames=10``).
        fps_frames (int): Length of the FPS clip (5 warm-up frames).

    Returns:
        dict: per model (``teacher``, ``student``, ``kd_student``) its
        ``cfg``, ``ckpt``, ``metrics``, ``params_M``, ``fps`` (the
        interleaved measurement) and, when trained in this call,
        ``train_s``.
    """
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        return _run_demo(out, data, epochs, teacher_epochs, seed, threads,
                         show_progress, data_knobs, fps_frames)
    finally:
        os.chdir(cwd)


def _run_demo(out, data_root, epochs, teacher_epochs, seed, threads,
              show_progress, data_knobs, fps_frames):
    os.makedirs(out, exist_ok=True)
    step = _Step(out, threads, show_progress)
    t_start = time.time()
    cpu_start = _children_cpu_s()

    if not osp.isfile(osp.join(data_root, 'annotations',
                               'test_cocoformat.json')):
        knobs = dict(DATA_KNOBS)
        for kv in data_knobs:
            key, _, value = kv.partition('=')
            knobs[key] = value
        args = []
        for key, value in knobs.items():
            args += ['--' + key.replace('_', '-'), str(value)]
        step('data', ['tools/data/make_synthmot.py', '--out', data_root,
                      '--preset', DATA_PRESET, '--seed', '0',
                      '--no-progress'] + args)
    data = data_root.rstrip('/') + '/'
    data_opts = [f'{k}.dataset.data_root={data}' for k in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')]
    batch = 4
    per_epoch = -(-_split_size(data_root, 'train')[1] // batch)

    runs: Dict[str, dict] = {}
    plan = (('teacher', TEACHER_CFG, teacher_epochs),
            ('student', STUDENT_CFG, epochs),
            ('kd_student', KD_CFG, epochs))
    for name, cfg, n in plan:
        work = osp.join(out, name)
        runs[name] = dict(cfg=cfg, ckpt=osp.join(work, f'epoch_{n}.pth'),
                          epochs=n)

    def train(name):
        run = runs[name]
        if osp.isfile(run['ckpt']):
            return []
        run['trained'] = True
        extra = []
        if name == 'kd_student':  # taught by the teacher just trained
            extra = [f'model.teacher_ckpt={runs["teacher"]["ckpt"]}']
        return [(name, ['tools/train.py', run['cfg'], '--work-dir',
                        osp.join(out, name), '--epochs', str(run['epochs']),
                        '--cfg-options', f'randomness.seed={seed}',
                        f'train_dataloader.batch_size={batch}'] +
                 data_opts + extra, run['epochs'] * per_epoch)]

    def test(name, cfg, ckpt):
        res = osp.join(out, name, 'test_metrics.json')
        runs[name]['metrics_file'] = res
        return [(f'test_{name}', [
            'tools/test.py', cfg, ckpt, '--work-dir',
            osp.join(out, name, 'test'), '--out', res, '--results-dir',
            osp.join(out, name, 'results'), '--cfg-options'] + data_opts,
            None)]

    # the KD checkpoint holds the student and connectors: extract the student
    kd_plain = osp.join(out, 'kd_student', 'student_only.pth')
    # 1. teacher beside student (+ its test); 2. KD student beside the
    # teacher's test; 3. the KD student's test
    step.lanes([train('teacher'),
                train('student') + test('student', STUDENT_CFG,
                                        runs['student']['ckpt'])])
    step.lanes([train('kd_student'),
                test('teacher', TEACHER_CFG, runs['teacher']['ckpt'])])
    step.lanes([[('extract', ['tools/extract_student.py',
                              runs['kd_student']['ckpt'], kd_plain], None)] +
                test('kd_student', STUDENT_CFG, kd_plain)])
    runs['kd_student'].update(cfg=STUDENT_CFG, ckpt=kd_plain)
    for name, run in runs.items():
        with open(run.pop('metrics_file')) as f:
            run['metrics'] = json.load(f)
        run['params_M'] = count_params(run['ckpt']) / 1e6
        if run.pop('trained', False):
            run['train_s'] = step.seconds[name]

    # 4. speed: the three models interleaved on one clip, nothing else
    # running
    print('[demo] fps ...', flush=True)
    fps = measure_demo_fps({n: (r['cfg'], r['ckpt']) for n, r in runs.items()},
                           frames=fps_frames,
                           out=osp.join(out, 'fps.json'))
    for name, stats in fps.items():
        runs[name]['fps'] = stats['fps']

    # 5. the student and the KD student side by side on a test sequence
    seq_dir = osp.join(data_root, 'test')
    seq = sorted(os.listdir(seq_dir))[0]
    print('[demo] video ...', flush=True)
    videos = write_comparison_video(
        osp.join(seq_dir, seq, 'img1'),
        [(_label('student (no KD)', runs['student']), STUDENT_CFG,
          runs['student']['ckpt']),
         (_label('KD student', runs['kd_student']), STUDENT_CFG, kd_plain)],
        [osp.join(out, 'student_vs_kd.gif'),
         osp.join(out, 'student_vs_kd.mp4')])

    elapsed = time.time() - t_start
    timing = dict(wall_s=elapsed, cpu_s=_children_cpu_s() - cpu_start,
                  full_run=all('train_s' in r for r in runs.values()),
                  threads=step.threads)
    seqs, frames = _split_size(data_root, 'test')
    checks = check_demo_targets(runs, timing)
    text = format_demo_summary(runs, checks, timing, seqs, frames)
    print('\n' + text)
    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(osp.join(out, 'summary.md')) as f:
        f.write(text + '\n')
    with atomic_write(osp.join(out, 'summary.json')) as f:
        json.dump(dict(models=runs, targets=checks, timing=timing,
                       test_split=dict(sequences=seqs, frames=frames)),
                  f, indent=2, default=float)
    plot = write_demo_plot(runs, osp.join(out, 'demo_metrics.png'))
    print(f'\n[demo] table: {osp.join(out, "summary.md")}')
    print(f'[demo] plot:  {plot}')
    print(f'[demo] video: {", ".join(videos)}')
    print(f'[demo] logs:  {osp.join(out, "logs")}')
    return runs


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes."""
    t = os.times()
    return t.children_user + t.children_system


def _label(title: str, run: dict) -> str:
    m = run['metrics']
    return (f'{title}: IDF1 {m.get("mot/IDF1", 0.0):.1f}, '
            f'MOTA {m.get("mot/MOTA", 0.0):.1f}')


def measure_demo_fps(models: Dict[str, Tuple[str, str]],
                     input_size: Tuple[int, int] = (320, 192),
                     frames: int = 100,
                     warmup: int = 5,
                     threads: int = 1,
                     out: Optional[str] = None) -> Dict[str, dict]:
    """Tracking FPS of several models (model + tracker, batch 1, CPU) in
    one run, interleaved frame by frame on one fixed SynthMOT clip
    (:func:`mmtrack_kd.apis.speed.render_clip` and
    :func:`~mmtrack_kd.apis.speed.measure`), so machine load hits them
    alike and the speeds follow the model sizes.

    Args:
        models (dict): name -> ``(config, checkpoint)``.
        input_size (tuple[int, int]): (W, H) of the clip.
        frames (int): Clip length, ``warmup`` included.
        warmup (int): Untimed first frames.
        threads (int): torch threads during the run (restored after).
        out (str, optional): JSON file to write
            (:func:`mmtrack_kd.apis.speed.fps_json`).

    Returns:
        dict: name -> ``dict(frames, fps, model_ms, tracker_ms,
        model_fps)``.
    """
    import torch

    from .speed import build_model, fps_json, measure, render_clip, write_json
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        built = [build_model(cfg, ckpt) for cfg, ckpt in models.values()]
        stats = measure(built, render_clip(*input_size, frames), warmup)
    finally:
        torch.set_num_threads(before)
    if out:
        names = [f'{n} ({osp.basename(c)})' for n, (c, _) in models.items()]
        write_json(fps_json(dict(names=names, stats=stats, threads=threads,
                                 input_size=input_size, warmup=warmup,
                                 onnx=None),
                            ['mmtrack_kd.apis.demo.measure_demo_fps']), out)
    return dict(zip(models, stats))


def write_comparison_video(frames: str,
                           panels: Sequence[Tuple[str, str, str]],
                           outs: Sequence[str],
                           fps: float = 10.0) -> List[str]:
    """Track the same frames with several models and write them side by
    side, one panel per model with its boxes and ids, a title and the
    number of ids it has used so far.

    Args:
        frames (str): Video file or folder of frames.
        panels (Sequence[tuple]): ``(title, config, checkpoint)`` per
            panel, left to right.
        outs (Sequence[str]): Files to write (``.gif`` and/or ``.mp4``).
        fps (float): Output frame rate.

    Returns:
        list[str]: ``outs``.
    """
    import cv2
    import numpy as np

    from .inference import draw_tracks, init_tracker, track_frames
    from .video_io import FrameSource, VideoWriter
    images = list(FrameSource(frames))
    streams = [track_frames(init_tracker(cfg, ckpt), images)
               for _, cfg, ckpt in panels]
    h, w = images[0].shape[:2]
    head, gap = 36, 4
    size = (len(panels) * w + (len(panels) - 1) * gap, h + head)
    seen = [set() for _ in panels]
    writers = [VideoWriter(o, fps, size) for o in outs]
    try:
        for i, img in enumerate(images):
            canvas = np.full((size[1], size[0], 3), 255, np.uint8)
            for p, ((title, _, _), stream) in enumerate(zip(panels,
                                                            streams)):
                tracks = next(stream)
                seen[p].update(int(t) for t in tracks.ids)
                x = p * (w + gap)
                canvas[head:, x:x + w] = draw_tracks(img, tracks,
                                                     thickness=1)
                for line, text in enumerate((
                        title, f'frame {i + 1}: {len(tracks)} tracks, '
                        f'{len(seen[p])} ids so far')):
                    cv2.putText(canvas, text, (x + 4, 14 + 16 * line),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0),
                                1, cv2.LINE_AA)
            for writer in writers:
                writer.write(canvas)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.close()
    return list(outs)


def check_demo_targets(runs: Dict[str, dict], timing: dict) -> List[dict]:
    """The demo's targets (:data:`TARGETS`) checked on a run.

    Args:
        runs (dict): ``teacher``, ``student``, ``kd_student``, each with
            ``metrics`` (``mot/MOTA``, ``mot/IDF1``).
        timing (dict): ``wall_s`` and ``full_run`` (every model trained in
            this run; else the time is not checked).

    Returns:
        list[dict]: per target ``name``, ``value`` (None when it cannot be
        computed), ``goal`` (text) and ``met`` (bool, None when not
        checked).
    """
    t, s, k = (runs[n]['metrics'] for n in ('teacher', 'student',
                                            'kd_student'))
    lead = t['mot/IDF1'] - s['mot/IDF1']
    recovered = 100 * (k['mot/IDF1'] - s['mot/IDF1']) / lead \
        if lead > 0 else None
    minutes = timing['wall_s'] / 60
    return [
        dict(name='teacher MOTA', value=t['mot/MOTA'],
             goal=f'> {TARGETS["teacher_mota"]:g}',
             met=t['mot/MOTA'] > TARGETS['teacher_mota']),
        dict(name='teacher IDF1 - student IDF1', value=lead,
             goal=f'>= {TARGETS["teacher_lead"]:g}',
             met=lead >= TARGETS['teacher_lead']),
        dict(name='IDF1 gap recovered by KD (%)', value=recovered,
             goal=f'>= {TARGETS["gap_recovered_pct"]:g}',
             met=recovered is not None and
             recovered >= TARGETS['gap_recovered_pct']),
        dict(name='demo time (min)', value=minutes,
             goal=f'<= {TARGETS["minutes"]:g}',
             met=minutes <= TARGETS['minutes'] if timing['full_run']
             else None),
    ]


def format_demo_summary(runs: Dict[str, dict], checks: List[dict],
                        timing: dict, seqs: int, frames: int) -> str:
    """The demo's summary (markdown): the table, the targets and one
    closing sentence with the numbers that says plainly which targets were
    missed."""
    lines = [format_demo_table(runs), '',
             f'Test split: {_plural(seqs, "sequence")}, '
             f'{_plural(frames, "frame")}. FPS: model + '
             'tracker, batch 1, CPU, one thread, the three models '
             'interleaved on one fixed clip.', '',
             '| target | value | goal | met |', '|---|---|---|---|']
    for c in checks:
        value = '-' if c['value'] is None else f'{c["value"]:.1f}'
        met = {True: 'yes', False: '**no**', None: 'not checked'}[c['met']]
        lines.append(f'| {c["name"]} | {value} | {c["goal"]} | {met} |')
    lines += ['', demo_sentence(runs, checks, timing, seqs)]
    return '\n'.join(lines)


def _plural(n: int, noun: str) -> str:
    return f'{n} {noun}' + ('' if n == 1 else 's')


def demo_sentence(runs: Dict[str, dict], checks: List[dict], timing: dict,
                  seqs: int) -> str:
    """One plain sentence: what the demo showed, with the numbers, and
    every missed target."""
    t, s, k = (runs[n] for n in ('teacher', 'student', 'kd_student'))
    idf1 = {n: runs[n]['metrics']['mot/IDF1'] for n in runs}
    mota = {n: runs[n]['metrics']['mot/MOTA'] for n in runs}
    lead, recovered = checks[1]['value'], checks[2]['value']
    share = '' if recovered is None else f', {recovered:.0f} % of the lead'
    text = (
        f'On {_plural(seqs, "synthetic test sequence")} the teacher '
        f'({t["params_M"]:.2f} M parameters) reaches IDF1 '
        f'{idf1["teacher"]:.1f} and MOTA {mota["teacher"]:.1f} and leads '
        f'the student ({s["params_M"]:.2f} M) by {lead:.1f} IDF1 points; '
        f'distillation takes the same student from IDF1 '
        f'{idf1["student"]:.1f} to {idf1["kd_student"]:.1f} '
        f'({idf1["kd_student"] - idf1["student"]:+.1f}{share}) and from '
        f'MOTA {mota["student"]:.1f} to {mota["kd_student"]:.1f}, at '
        f'{k["fps"] / t["fps"]:.1f}x the teacher\'s speed '
        f'({k["fps"]:.1f} against {t["fps"]:.1f} FPS)')
    minutes = timing['wall_s'] / 60
    if timing['full_run']:
        text += f'; the demo took {minutes:.1f} min'
    else:
        text += (f'; this run reused earlier trainings, so its '
                 f'{minutes:.1f} min are not the time of a full demo')
    missed = [c for c in checks if c['met'] is False]
    if missed:
        text += ' and MISSED ' + ('its target' if len(missed) == 1
                                  else 'these targets') + ': ' + '; '.join(
            f'{c["name"]} is '
            + ('undefined' if c['value'] is None else f'{c["value"]:.1f}')
            + f' (goal {c["goal"]})' for c in missed)
    elif any(c['met'] is None for c in checks):
        text += ' and met every target it checks'
    else:
        text += ' and met every target'
    return text + '.'


def format_demo_table(runs: Dict[str, dict]) -> str:
    """A markdown table: one row per model, its parameters (M), the test
    metrics of :data:`METRICS` and the interleaved FPS."""
    head = ['model', 'params (M)'] + [m for m, _ in METRICS] + ['FPS']
    rows = ['| ' + ' | '.join(head) + ' |',
            '|' + '---|' * len(head)]
    for name, run in runs.items():
        m = run['metrics']
        cells = [name, f'{run["params_M"]:.2f}']
        for _, key in METRICS:
            v = m.get(key)
            cells.append('-' if v is None else (
                f'{v:.1f}' if isinstance(v, float) else str(v)))
        fps = run.get('fps')
        cells.append('-' if fps is None else f'{fps:.1f}')
        rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def write_demo_plot(runs: Dict[str, dict], path: str) -> str:
    """Bars of MOTA, IDF1, HOTA, MT% per model and IDF1 against the
    interleaved tracking FPS, as a PNG at ``path``; returns ``path``."""
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
    axes[0].axhline(0, color='black', linewidth=0.5)
    axes[0].legend()
    for name in names:
        x = runs[name].get('fps', 0.0)
        y = runs[name]['metrics'].get('mot/IDF1', 0.0)
        axes[1].scatter(x, y, s=60)
        axes[1].annotate(f'{name} ({runs[name]["params_M"]:.2f} M)', (x, y))
    axes[1].set_xlabel('tracking FPS (CPU, 1 thread, batch 1; one '
                       'interleaved run)')
    axes[1].set_ylabel('IDF1')
    fig.suptitle('SynthMOT demo: teacher, student, KD student')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
