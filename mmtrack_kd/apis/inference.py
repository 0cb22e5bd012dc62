"""Track any sequence of frames with a trained CSTrack-style model.

``init_tracker`` builds the model of a config and loads a plain checkpoint;
``track_frames`` runs it frame by frame through the config's test pipeline,
the model's data preprocessor and ``model.predict`` (so the tracker sees
exactly what ``tools/test.py`` gives it); ``draw_tracks`` draws the result.
A different network runtime (ONNX Runtime) plugs in as ``backend``: it
replaces only the network forward, the post-processing and the tracker stay
the model's own.
"""
import colorsys
import contextlib
import copy
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

import cv2
import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from ..utils import resolve_num_ids
from ..utils.checkpoint import (
    checkpoint_error,
    is_distiller_state,
    model_state_from_checkpoint,
    read_checkpoint,
)
from ..utils.config import load_config as read_config

# transforms of a test pipeline that read files; frames come from memory
_FILE_LOADERS = ('LoadImageFromFile', 'mmdet.LoadImageFromFile')
_ANN_LOADERS = ('LoadTrackAnnotations', 'LoadAnnotations',
                'mmdet.LoadTrackAnnotations', 'mmdet.LoadAnnotations')
CLASSIFIER_KEY = 'id_head.classifier.weight'


@dataclass
class FrameTracks:
    """Tracks of one frame, in original image pixels.

    Attributes:
        frame_id (int): 0-based frame index.
        ids (np.ndarray): (K,) int64 track ids.
        bboxes (np.ndarray): (K, 4) float32 x1y1x2y2.
        scores (np.ndarray): (K,) float32.
        labels (np.ndarray): (K,) int64 class labels.
    """
    frame_id: int
    ids: np.ndarray
    bboxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def read_state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The model weights of a plain checkpoint (``dict(state_dict=...)``, a
    runner checkpoint, or a bare state dict), ``module.`` prefixes removed.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: a MOTDistiller checkpoint (``student.`` keys), which
            ``tools/extract_student.py`` must convert first.
    """
    state = model_state_from_checkpoint(
        read_checkpoint(checkpoint), student=False, filename=checkpoint)
    if is_distiller_state(state):
        raise checkpoint_error(
            checkpoint, 'is a distillation (MOTDistiller) checkpoint; '
            'extract the student first: python tools/extract_student.py '
            f'{checkpoint} student.pth')
    return dict(state)


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """The deployable model's config: :func:`mmtrack_kd.utils.config.
    load_config` with ``student=True`` (the ``student`` of a distillation
    config becomes ``model`` before ``cfg_options`` are merged)."""
    return read_config(config, cfg_options, student=True)


def _fill_num_ids(cfg: Config, state: Optional[dict]) -> None:
    """Resolve ``id_head.num_ids = 'auto'``: from the checkpoint's identity
    classifier when there is one (it must load strictly), else from the
    training annotations, else 1 (the classifier is unused when tracking)."""
    head = cfg.model.get('id_head')
    if not isinstance(head, (dict, ConfigDict)) or \
            head.get('num_ids', 'auto') not in (None, 'auto'):
        return
    if state is not None and CLASSIFIER_KEY in state:
        head['num_ids'] = int(state[CLASSIFIER_KEY].shape[0])
        return
    try:
        resolve_num_ids(cfg)
    except (FileNotFoundError, ValueError):
        head['num_ids'] = 1


def init_tracker(config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a tracking model from a config and load its weights strictly.

    Args:
        config: config file or Config (a distillation config's student is
            used).
        checkpoint: plain model checkpoint; None keeps the random init.
        device: torch device.
        cfg_options: overrides merged into the config, e.g.
            ``{'model.test_cfg.score_thr': 0.3}``.

    Returns:
        nn.Module: the model in eval mode, with ``model.cfg`` (the Config)
        and ``model.frame_pipeline`` (see :func:`build_frame_pipeline`).

    Raises:
        FileNotFoundError: the config or checkpoint file is missing.
        ValueError: the model has no tracker or the checkpoint does not fit.
    """
    from mmdet.registry import MODELS
    cfg = load_config(config, cfg_options)
    state = read_state_dict(checkpoint) if checkpoint is not None else None
    _fill_num_ids(cfg, state)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if state is not None:
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise ValueError(f'checkpoint {checkpoint} does not fit the '
                             f'model of the config: {e}') from None
        if missing or unexpected:
            raise ValueError(
                f'checkpoint {checkpoint} does not fit the model of the '
                f'config: missing keys {missing[:5]}, unexpected keys '
                f'{unexpected[:5]}')
    if not getattr(model, 'with_tracker', False):
        raise ValueError('the config has no model.tracker; cannot track')
    model.cfg = cfg
    model.frame_pipeline = build_frame_pipeline(cfg)
    return model.to(device).eval()


def build_frame_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline, fed from memory: ``LoadImageFromFile``
    becomes ``LoadImageFromNDArray``, annotation loaders are dropped.

    The pipeline is ``cfg.test_pipeline`` when the config defines it, else
    ``cfg.test_dataloader.dataset.pipeline``. It takes
    ``dict(img=[BGR uint8 (H, W, 3)], frame_id=[i], img_id=[i + 1])`` and
    returns ``dict(inputs, data_samples)`` as the test dataloader does.
    """
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        try:
            pipeline = cfg.test_dataloader.dataset.pipeline
        except AttributeError:
            raise ValueError('the config has neither test_pipeline nor '
                             'test_dataloader.dataset.pipeline') from None

    def convert(steps):
        out = []
        for step in steps:
            step = copy.deepcopy(dict(step))
            kind = step.get('type')
            if kind in _ANN_LOADERS:
                continue
            if kind in _FILE_LOADERS:
                step['type'] = 'mmdet.LoadImageFromNDArray'
            if 'transforms' in step:
                step['transforms'] = convert(step['transforms'])
            out.append(step)
        return out

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return Compose(convert(pipeline))


@contextlib.contextmanager
def forward_backend(model: nn.Module,
                    backend: Optional[Callable[[torch.Tensor], dict]]):
    """Within the block, ``model._forward`` (the network, without
    post-processing) is ``backend`` (inputs (N, 3, H, W) -> ``dict(det_preds,
    id_map)``); None leaves the model alone. Restored on exit."""
    if backend is None:
        yield model
        return
    had_own = '_forward' in vars(model)
    previous = vars(model).get('_forward')

    def run(inputs, data_samples=None, **kwargs):
        return backend(model._fold(inputs) if hasattr(model, '_fold')
                       else inputs)

    model._forward = run
    try:
        yield model
    finally:
        if had_own:
            model._forward = previous
        else:
            del model._forward


def _to_numpy(x, dtype) -> np.ndarray:
    x = x.tensor if hasattr(x, 'tensor') else x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def track_frames(model: nn.Module,
                 frames: Iterable[np.ndarray],
                 backend: Optional[Callable[[torch.Tensor], dict]] = None
                 ) -> Iterator[FrameTracks]:
    """Track a sequence of frames, one ``model.test_step`` per frame.

    Frame ids start at 0, so the tracker resets at the first frame.

    Args:
        model: from :func:`init_tracker` (needs ``frame_pipeline``; built
            from ``model.cfg`` otherwise).
        frames: BGR uint8 images (H, W, 3), e.g. a :class:`FrameSource`.
        backend: optional network runtime replacing ``model._forward``
            (e.g. :class:`~mmtrack_kd.apis.ORTBackend`).

    Yields:
        FrameTracks: the tracks of each frame, in original image pixels.
    """
    pipeline = getattr(model, 'frame_pipeline', None)
    if pipeline is None:
        pipeline = model.frame_pipeline = build_frame_pipeline(model.cfg)
    with forward_backend(model, backend):
        for frame_id, img in enumerate(frames):
            data = pipeline(
                dict(img=[img], frame_id=[frame_id], img_id=[frame_id + 1],
                     ori_shape=[img.shape[:2]]))
            batch = dict(inputs=[data['inputs']],
                         data_samples=[data['data_samples']])
            # no_grad around the step only: held across the yield, it
            # would switch gradients off in the caller's code between
            # frames, and for good if the caller stopped early
            with torch.no_grad():
                sample = model.test_step(batch)[0][0]
            tracks = sample.pred_track_instances
            yield FrameTracks(
                frame_id=frame_id,
                ids=_to_numpy(tracks.instances_id, np.int64).reshape(-1),
                bboxes=_to_numpy(tracks.bboxes, np.float32).reshape(-1, 4),
                scores=_to_numpy(tracks.scores, np.float32).reshape(-1),
                labels=_to_numpy(tracks.labels, np.int64).reshape(-1))


def tracks_to_mot_rows(results: Iterable[FrameTracks]) -> np.ndarray:
    """MOTChallenge result rows ``frame (1-based), id, x, y, w, h, score``
    (R, 7) for :func:`mmtrack_kd.datasets.mot_io.write_mot_txt`."""
    rows: List[np.ndarray] = []
    for r in results:
        if not len(r):
            continue
        xywh = r.bboxes.astype(np.float64).copy()
        xywh[:, 2:] -= xywh[:, :2]
        rows.append(
            np.concatenate([
                np.full((len(r), 1), r.frame_id + 1, np.float64),
                r.ids[:, None].astype(np.float64), xywh,
                r.scores[:, None].astype(np.float64)
            ], axis=1))
    return np.concatenate(rows) if rows else np.zeros((0, 7))


def id_colour(track_id: int) -> tuple:
    """A BGR colour that is fixed for an id and far from its neighbours'
    (hues spread by the golden ratio)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_tracks(frame: np.ndarray, tracks: FrameTracks,
                show_score: bool = False, thickness: int = 2) -> np.ndarray:
    """Draw each track's box and id (one colour per id) on a copy of
    ``frame`` (BGR uint8 (H, W, 3)).

    Returns:
        np.ndarray: the annotated copy.
    """
    out = frame.copy()
    scale = max(min(frame.shape[:2]) / 600.0, 0.35)
    for tid, box, score in zip(tracks.ids, tracks.bboxes, tracks.scores):
        colour = id_colour(tid)
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        text = f'{int(tid)}' + (f' {float(score):.2f}' if show_score else '')
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX,
                                         scale, 1)
        ty = max(y1, th + base)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), colour, -1)
        cv2.putText(out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
