"""JDE-family online tracker (JDE, FairMOT, CSTrack) in mmdet's registry."""
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmdet.models.task_modules import KalmanFilter
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from .jde_track import (
    LOST,
    TENTATIVE,
    TRACKED,
    JDETrack,
    as_numpy,
    normalize_rows,
    smooth_embeds,
)
from .kalman import (
    batch_gating_distance,
    batch_initiate,
    batch_predict,
    batch_project_factor,
    batch_update,
)

try:
    import lap
except ImportError:  # checked in JDETracker.__init__
    lap = None

# states as small ints, for masks over the stacked tracks
_TENTATIVE, _TRACKED, _LOST = 0, 1, 2
_STATE_CODE = {TENTATIVE: _TENTATIVE, TRACKED: _TRACKED, LOST: _LOST}


def _check_unit(name: str, value: float) -> float:
    """Return ``float(value)`` or raise naming the config key."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0.0 <= value <= 1.0):
        raise ValueError(f'JDETracker: config key `{name}` must be a number '
                         f'in [0, 1], got {value!r}')
    return float(value)


def _tensor(values: np.ndarray, like: torch.Tensor,
            dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``values`` as a tensor on the device of ``like``, of ``dtype`` (by
    default ``like``'s)."""
    out = torch.from_numpy(np.ascontiguousarray(values))
    dtype = like.dtype if dtype is None else dtype
    if out.dtype != dtype or like.device.type != 'cpu':
        out = out.to(device=like.device, dtype=dtype)
    return out


def _assign(cost: np.ndarray, thr: float, finite: bool = False
            ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`linear_assignment` as four int arrays: matched rows, their
    columns (in increasing row order), unmatched rows, unmatched
    columns. ``finite``: the caller's costs are all finite (forbidden
    pairs above ``thr``), so they are not checked."""
    num_rows, num_cols = cost.shape
    if num_rows == 0 or num_cols == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.arange(num_rows), np.arange(num_cols)
    # Any value above ``thr`` is equivalent to "forbidden" under cost_limit;
    # a finite one keeps the solver away from inf arithmetic.
    if not finite:
        cost = np.where(np.isfinite(cost), cost, thr + 1.0)
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    _, row_to_col, col_to_row = lap.lapjv(cost, extend_cost=True,
                                          cost_limit=thr)
    rows = np.flatnonzero(row_to_col >= 0)
    cols = row_to_col[rows].astype(np.int64)
    keep = cost[rows, cols] <= thr
    if keep.all():  # the solver's own unmatched rows and columns
        return (rows, cols, np.flatnonzero(row_to_col < 0),
                np.flatnonzero(col_to_row < 0))
    rows, cols = rows[keep], cols[keep]
    free_rows = np.ones(num_rows, dtype=bool)
    free_rows[rows] = False
    free_cols = np.ones(num_cols, dtype=bool)
    free_cols[cols] = False
    return rows, cols, np.flatnonzero(free_rows), np.flatnonzero(free_cols)


def _take_rows(projected: Optional[tuple],
               rows: np.ndarray) -> Optional[tuple]:
    """Rows of a :func:`~.kalman.batch_project_factor` result (or None)."""
    if projected is None:
        return None
    proj_mean, proj_cov, diag = projected
    return (proj_mean[rows], proj_cov[rows],
            None if diag is None else diag[rows])


def linear_assignment(cost: np.ndarray,
                      thr: float) -> Tuple[List[Tuple[int, int]], np.ndarray,
                                           np.ndarray]:
    """Minimum-cost matching of rows to columns with a per-pair cost limit.

    Solved with ``lap.lapjv`` on the matrix extended by ``cost_limit``, so a
    pair is matched only when its cost is at most ``thr``; non-finite costs
    (gated pairs) are never matched.

    Args:
        cost (np.ndarray): Cost matrix (M, N); ``inf``/``nan`` forbid a pair.
        thr (float): Largest cost of an accepted pair.

    Returns:
        tuple: ``(matches, unmatched_rows, unmatched_cols)``: a list of
        ``(row, col)`` pairs and two int arrays of unmatched indices.
    """
    rows, cols, free_rows, free_cols = _assign(cost, thr)
    return list(zip(rows.tolist(), cols.tolist())), free_rows, free_cols


def iou_matrix(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU (M, N) of x1y1x2y2 boxes as mmdet's ``bbox_overlaps`` computes
    it (union at least 1e-6), in numpy."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    overlap = wh[..., 0] * wh[..., 1]
    union = np.maximum(area1[:, None] + area2[None, :] - overlap, 1e-6)
    return overlap / union


def cxcyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """``(cx, cy, a, h)`` (N, 4) to x1y1x2y2, as mmdet's
    ``bbox_cxcyah_to_xyxy``."""
    cx, cy, ratio, h = xyah[:, 0], xyah[:, 1], xyah[:, 2], xyah[:, 3]
    w = ratio * h
    return np.stack([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                    1)


def xyxy_to_cxcyah(boxes: np.ndarray) -> np.ndarray:
    """x1y1x2y2 (N, 4) to ``(cx, cy, a, h)``, as mmdet's
    ``bbox_xyxy_to_cxcyah``."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    w, h = x2 - x1, y2 - y1
    return np.stack([(x2 + x1) / 2, (y2 + y1) / 2, w / h, h], 1)


@MODELS.register_module()
class JDETracker:
    """Online tracker of the JDE family (JDE, FairMOT, CSTrack).

    A standalone tracker, not an mmdet ``BaseTracker``: its tracks are
    :class:`JDETrack` objects with a life-cycle state, not the per-item
    memo of ``BaseTracker`` (whose ``update``, ``memo``, ``get`` and
    ``init_track`` would not work on them). What mmdet's MOT models use of a
    tracker is here: ``track(data_sample)``, ``reset()``, ``tracks``,
    ``num_tracks`` and ``num_frames_retain``.

    Each frame, detections scoring at least ``obj_score_thr`` are associated
    with the existing tracks in three cascaded steps:

    1. confirmed tracks (tracked and lost) vs all detections: cosine distance
       between the track's smoothed embedding and the detection's embedding,
       pairs outside the Kalman gate (squared Mahalanobis distance above the
       chi-square 95% quantile of the filter's dof) forbidden, cost
       ``embed_weight * cos_dist + (1 - embed_weight) * maha``; Hungarian
       (``lap.lapjv``) with threshold ``embed_match_thr``. As in JDE, ``maha``
       is the raw squared Mahalanobis distance (not rescaled), so with the
       defaults the motion term alone rejects pairs with ``maha > 20``.
    2. tracks of step 1 left unmatched that were tracked on the previous
       frame vs the remaining detections: cost ``1 - IoU`` between the
       Kalman-predicted box and the detection; matched when IoU >=
       ``iou_match_thr``. Tracks still unmatched become lost.
    3. tentative tracks vs the remaining detections by IoU, matched when IoU
       >= ``tentative_match_thr``; unmatched tentative tracks are removed.

    Remaining detections scoring at least ``init_track_thr`` start new
    tracks: tentative, except on frame 0 where they are confirmed at once. A
    tentative track is confirmed when matched on a later frame, and only then
    receives its identity, so identities are consecutive integers from 0.
    Lost tracks missed for more than ``num_frames_retain`` frames are
    dropped. Matched tracks update their Kalman state and their embedding by
    an EMA (``embed <- norm(embed_alpha * embed + (1 - embed_alpha) *
    new)``). Detections and tracks of different labels are never matched.

    Speed: the tracks' states are stacked and every step runs on the
    stacks (mmdet's ``KalmanFilter`` through :mod:`.kalman`, batched;
    another filter one track at a time through its own methods). After a
    frame each track's ``mean``, ``covariance`` and ``embed`` are its rows
    of the stacks, which the next frame reuses while every track still
    holds them; a caller that sets a new array on a track is read from it.

    Args:
        motion (dict | KalmanFilter): Config of the Kalman filter built by
            ``TASK_UTILS`` (mmdet's ``KalmanFilter``, xyah state). Its
            ``center_only`` selects 2-dof gating on centres instead of 4-dof.
            None means ``dict(type='KalmanFilter')``.
        obj_score_thr (float): Detections scoring below it are ignored.
            Defaults to 0.5.
        init_track_thr (float): Least score of a detection that starts a
            track. Defaults to 0.5.
        embed_weight (float): Weight lambda of the embedding distance in the
            fused cost of step 1; the squared Mahalanobis distance has
            ``1 - lambda``. Defaults to 0.98.
        embed_match_thr (float): Largest fused cost matched in step 1.
            Defaults to 0.4.
        iou_match_thr (float): Least IoU matched in step 2. Defaults to 0.5.
        tentative_match_thr (float): Least IoU matched in step 3 (tentative
            tracks). Defaults to 0.7.
        embed_alpha (float): EMA weight of a track's running embedding.
            Defaults to 0.9.
        num_frames_retain (int): Lost tracks missed for more than this many
            frames are dropped. Defaults to 30.

    Example:
        >>> import mmtrack_kd  # registers JDETracker
        >>> from mmdet.registry import MODELS
        >>> tracker = MODELS.build(dict(type='JDETracker', obj_score_thr=0.4))
        >>> # per frame: out = tracker.track(det_data_sample)
        >>> # out.bboxes (M, 4), out.scores (M,), out.labels (M,),
        >>> # out.instances_id (M,)
    """

    def __init__(self,
                 motion: Optional[Union[dict, object]] = None,
                 obj_score_thr: float = 0.5,
                 init_track_thr: float = 0.5,
                 embed_weight: float = 0.98,
                 embed_match_thr: float = 0.4,
                 iou_match_thr: float = 0.5,
                 tentative_match_thr: float = 0.7,
                 embed_alpha: float = 0.9,
                 num_frames_retain: int = 30) -> None:
        if lap is None:
            raise RuntimeError('JDETracker needs the `lap` package '
                               '(pip install "lap>=0.5")')
        if (isinstance(num_frames_retain, bool)
                or not isinstance(num_frames_retain, int)
                or num_frames_retain < 0):
            raise ValueError('JDETracker: config key `num_frames_retain` must '
                             'be a non-negative int, got '
                             f'{num_frames_retain!r}')
        self.num_frames_retain = num_frames_retain
        if motion is None:
            motion = dict(type='KalmanFilter')
        if isinstance(motion, dict):
            motion = TASK_UTILS.build(motion)
        for attr in ('initiate', 'predict', 'update', 'gating_distance'):
            if not callable(getattr(motion, attr, None)):
                raise TypeError('JDETracker: config key `motion` must build '
                                f'a Kalman filter with `{attr}()`, got '
                                f'{type(motion).__name__}')
        self.motion = motion
        # mmdet's own filter is run on all tracks at once (same numbers);
        # any other filter one track at a time, through its methods
        self.batch_kalman = type(motion) is KalmanFilter and not getattr(
            motion, 'use_nsa', False)
        self.obj_score_thr = _check_unit('obj_score_thr', obj_score_thr)
        self.init_track_thr = _check_unit('init_track_thr', init_track_thr)
        self.embed_weight = _check_unit('embed_weight', embed_weight)
        if not isinstance(embed_match_thr, (int, float)) \
                or embed_match_thr < 0:
            raise ValueError('JDETracker: config key `embed_match_thr` must '
                             f'be a non-negative number, got '
                             f'{embed_match_thr!r}')
        self.embed_match_thr = float(embed_match_thr)
        self.iou_match_thr = _check_unit('iou_match_thr', iou_match_thr)
        self.tentative_match_thr = _check_unit('tentative_match_thr',
                                               tentative_match_thr)
        self.embed_alpha = _check_unit('embed_alpha', embed_alpha)

        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every track; identities restart from 0."""
        self.tracks: Dict[int, JDETrack] = {}  # internal key -> track
        self.num_tracks = 0  # identities given so far
        self._num_keys = 0  # internal keys, tentative tracks included
        self._labels_seen = set()  # detection labels since the reset
        # (means, covariances, embeddings, per-track rows) of the last frame
        self._stacks = None

    def _keys(self, *states: str) -> List[int]:
        """Internal keys of the tracks in any of ``states``."""
        return [k for k, t in self.tracks.items() if t.state in states]

    @property
    def _gating_threshold(self) -> float:
        """Chi-square 95% quantile for the filter's measurement dof."""
        dof = 2 if getattr(self.motion, 'center_only', False) else 4
        return float(self.motion.chi2inv95[dof])

    # ------------------------------------------------------------ life cycle
    def _confirm(self, track: JDETrack) -> None:
        """Give ``track`` the next identity."""
        track.instance_id = self.num_tracks
        self.num_tracks += 1

    # ---------------------------------------------------------------- kalman
    def _kf_predict(self, mean: np.ndarray,
                    cov: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Predict the stacked states (T, 8), (T, 8, 8) of every track."""
        if self.batch_kalman:
            return batch_predict(self.motion, mean, cov)
        out = [self.motion.predict(m, c) for m, c in zip(mean, cov)]
        return (np.stack([m for m, _ in out]).reshape(mean.shape),
                np.stack([c for _, c in out]).reshape(cov.shape))

    def _kf_update(self, mean: np.ndarray, cov: np.ndarray,
                   meas: np.ndarray,
                   projected: Optional[tuple] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
        """Correct the stacked states with one measurement (T, 4) each
        (``projected``: their rows of :meth:`_kf_project`, if made)."""
        if self.batch_kalman:
            return batch_update(self.motion, mean, cov, meas, projected)
        out = [self.motion.update(m, c, z)
               for m, c, z in zip(mean, cov, meas)]
        return (np.stack([m for m, _ in out]).reshape(mean.shape),
                np.stack([c for _, c in out]).reshape(cov.shape))

    def _kf_initiate(self, xyah: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Initial states of tracks started from measurements (N, 4)."""
        if self.batch_kalman:
            return batch_initiate(self.motion, xyah)
        out = [self.motion.initiate(z) for z in xyah]
        return (np.stack([m for m, _ in out]).reshape(-1, 8),
                np.stack([c for _, c in out]).reshape(-1, 8, 8))

    def _kf_project(self, mean: np.ndarray,
                    cov: np.ndarray) -> Optional[tuple]:
        """The predicted states projected to the measurement space and
        the factors of their covariances (made once a frame for the
        gating and the correction, batched filter only, else None)."""
        if self.batch_kalman:
            return batch_project_factor(self.motion, mean, cov)
        return None

    def _gating_distances(self, mean: np.ndarray, cov: np.ndarray,
                          xyah: np.ndarray, rows: np.ndarray,
                          projected: Optional[tuple] = None) -> np.ndarray:
        """Squared Mahalanobis distances (R, K) of the detections ``xyah``
        (K, 4) to the track states ``rows`` of the stacks ``mean`` and
        ``cov``, as ``motion.gating_distance`` (``projected``:
        :meth:`_kf_project` of the stacks, if made)."""
        center_only = bool(getattr(self.motion, 'center_only', False))
        if self.batch_kalman:
            if projected is not None:  # the states themselves not needed
                return batch_gating_distance(
                    self.motion, None, None, xyah, center_only,
                    _take_rows(projected, rows))
            return batch_gating_distance(self.motion, mean[rows],
                                         cov[rows], xyah, center_only)
        mean, cov = mean[rows], cov[rows]
        return np.stack([
            self.motion.gating_distance(m, c, xyah, center_only)
            for m, c in zip(mean, cov)
        ]).reshape(len(mean), len(xyah))

    def _stacked(self, tracks: List[JDETrack]
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Means (T, 8), covariances (T, 8, 8) and embeddings (T, D,
        float32) of ``tracks`` stacked: the stacks written by
        :meth:`_write_back` when every track still holds its rows of them
        (one identity check per track), else new stacks of what the tracks
        hold."""
        stacks = self._stacks
        if stacks is not None and len(stacks[3]) == len(tracks) and all(
                t._rows is r for t, r in zip(tracks, stacks[3])):
            return stacks[0], stacks[1], stacks[2]
        return (np.stack([t.mean for t in tracks]),
                np.stack([t.covariance for t in tracks]),
                np.stack([t.embed_values() for t in tracks]))

    def _write_back(self, mean: np.ndarray, cov: np.ndarray,
                    embeds: np.ndarray) -> None:
        """Give every track (in ``self.tracks`` order) its row of the new
        stacks and keep the stacks for the next frame. A track's row is a
        ``(stacks, i)`` pair that its ``mean``, ``covariance`` and
        ``embed`` read from (no array views made per track)."""
        tracks = list(self.tracks.values())
        if not tracks:
            self._stacks = None
            return
        stacks = (mean, cov, embeds)
        rows = [(stacks, i) for i in range(len(tracks))]
        for track, row in zip(tracks, rows):
            track._rows = row
        self._stacks = (mean, cov, embeds, rows)

    def _smooth_embeds(self, old: np.ndarray,
                       new: np.ndarray) -> np.ndarray:
        """:meth:`JDETrack.update_embed` of M tracks at once: their running
        embeddings ``old`` (M, D) with their detections' ``new`` (M, D)."""
        return smooth_embeds(old, new, self.embed_alpha)

    # ------------------------------------------------------------------ costs
    def _embed_motion_cost(self, track_embeds: np.ndarray,
                           embeds: np.ndarray, maha: np.ndarray,
                           label_mask: Optional[np.ndarray],
                           forbid: float = np.inf) -> np.ndarray:
        """Fused embedding + motion cost (P, K) of step 1, from the
        tracks' embeddings (P, D), the detections' (K, D), the squared
        Mahalanobis distances (P, K) and the label mismatches (P, K);
        gated and mismatched pairs cost ``forbid``."""
        cos_dist = np.maximum(1.0 - track_embeds @ embeds.T, 0.0)
        cost = cos_dist.astype(np.float64)
        cost = self.embed_weight * cost + (1.0 - self.embed_weight) * maha
        cost[maha > self._gating_threshold] = forbid
        if label_mask is not None:
            cost[label_mask] = forbid
        return cost

    @staticmethod
    def _iou_cost(track_boxes: np.ndarray, det_boxes: np.ndarray,
                  label_mask: Optional[np.ndarray]) -> np.ndarray:
        """``1 - IoU`` (P, K), predicted track boxes (P, 4) vs detections
        (K, 4), both x1y1x2y2 float64; label mismatches forbidden."""
        if len(track_boxes) == 0 or len(det_boxes) == 0:
            return np.zeros((len(track_boxes), len(det_boxes)))
        cost = 1.0 - iou_matrix(track_boxes, det_boxes)
        if label_mask is not None:
            cost[label_mask] = np.inf
        return cost

    # ------------------------------------------------------------------ track
    def track(self, data_sample: DetDataSample, **kwargs) -> InstanceData:
        """Associate one frame's detections with the tracks.

        The tracks' Kalman states, embeddings, labels and states are
        stacked once per frame; prediction, gating, the cost matrices and
        the Kalman correction run on the stacks (:mod:`.kalman`), and the
        new states are written back to the :class:`JDETrack` objects at
        the end of the frame.

        Args:
            data_sample (DetDataSample): ``pred_instances`` with ``bboxes``
                (K, 4) x1y1x2y2 in original image pixels, ``scores`` (K,),
                ``labels`` (K,) and ``embeds`` (K, D); ``metainfo`` with
                ``frame_id`` (0-based; 0 resets the tracker).
            **kwargs: Ignored (mmdet's MOT models may pass extra inputs).

        Returns:
            InstanceData: The confirmed tracks matched on this frame, sorted
            by identity: ``bboxes`` (M, 4) (the matched detections),
            ``scores`` (M,), ``labels`` (M,), ``instances_id`` (M,) int64,
            on the device of the input boxes.
        """
        if 'frame_id' not in data_sample.metainfo:
            raise KeyError('JDETracker.track: data_sample.metainfo has no '
                           '`frame_id`')
        frame_id = int(data_sample.metainfo['frame_id'])
        if frame_id == 0:
            self.reset()
        pred = data_sample.pred_instances
        for key in ('bboxes', 'scores', 'labels', 'embeds'):
            if key not in pred:
                raise KeyError('JDETracker.track: data_sample.pred_instances '
                               f'has no `{key}`')
        # the frame's work is in numpy, tensors made only for the output:
        # on the CPU, right after the network, each small torch operation
        # costs several times a numpy one (cold caches), and together they
        # took about a fifth of the tracker's time
        bboxes = as_numpy(pred.bboxes, np.float32).reshape(-1, 4)
        embeds = as_numpy(pred.embeds, np.float32)
        if embeds.ndim != 2 or embeds.shape[0] != bboxes.shape[0]:
            if embeds.size == 0 and bboxes.shape[0] == 0:
                embeds = embeds.reshape(0, 0)
            else:
                raise ValueError(
                    'JDETracker.track: pred_instances.embeds must be (K, D) '
                    f'with K={bboxes.shape[0]} boxes, got '
                    f'{tuple(embeds.shape)}')
        # Score filter; degenerate boxes would break the xyah Kalman state.
        scores = as_numpy(pred.scores)
        labels = as_numpy(pred.labels)
        keep = ((scores >= self.obj_score_thr)
                & (bboxes[:, 2] > bboxes[:, 0])
                & (bboxes[:, 3] > bboxes[:, 1]))
        if not keep.all():
            bboxes, scores, embeds = bboxes[keep], scores[keep], embeds[keep]
            labels = labels[keep]
        embeds = normalize_rows(embeds)
        boxes_np = bboxes.astype(np.float64)  # (K, 4) x1y1x2y2
        xyah = xyxy_to_cxcyah(boxes_np)
        det_labels = labels

        # every track's state, stacked (or the stacks of the last frame,
        # whose rows the tracks still hold)
        tracks = list(self.tracks.values())
        num = len(tracks)
        code = np.array([_STATE_CODE[t.state] for t in tracks],
                        dtype=np.int8)
        if num:
            mean, cov, track_embeds = self._stacked(tracks)
            # a lost track keeps its position velocity, not its height's
            mean[code == _LOST, 7] = 0.0
            mean, cov = self._kf_predict(mean, cov)
        else:
            mean, cov = np.zeros((0, 8)), np.zeros((0, 8, 8))
            track_embeds = np.zeros((0, embeds.shape[1]), np.float32)
        # projected once for the gating of step 1 and the correction
        projected = self._kf_project(mean, cov) if num else None

        # label mismatches exist only once several classes were seen (a
        # track's label is that of a detection of this or an earlier frame)
        seen = self._labels_seen
        if len(seen) < 2 and len(det_labels) and not (
                seen and (det_labels == next(iter(seen))).all()):
            seen.update(np.unique(det_labels).tolist())
        mixed = len(seen) > 1
        if mixed:
            track_labels = np.array([int(t._label) for t in tracks],
                                    dtype=np.int64)

        def label_mask(rows, dets):
            return (track_labels[rows][:, None] != det_labels[dets][None]
                    if mixed else None)

        # a matched track's Kalman state and embedding are not read again on
        # this frame: they are corrected together after the 3 steps
        m_rows: List[np.ndarray] = []
        m_dets: List[np.ndarray] = []

        # 1. confirmed tracks vs detections: embedding + Kalman gating.
        pool = np.flatnonzero(code != _TENTATIVE)
        all_dets = np.arange(len(xyah))
        if len(pool) and len(all_dets):
            maha = self._gating_distances(mean, cov, xyah, pool, projected)
            # forbidden pairs cost more than the threshold (finite)
            cost = self._embed_motion_cost(
                track_embeds[pool], embeds, maha,
                label_mask(pool, all_dets), self.embed_match_thr + 1.0)
        else:
            cost = np.zeros((len(pool), len(all_dets)))
        rows, cols, left_rows, left_dets = _assign(
            cost, self.embed_match_thr, finite=True)
        m_rows.append(pool[rows])
        m_dets.append(cols)

        def by_iou(pool, dets, thr):
            """Match the tracks ``pool`` to the detections ``dets`` by
            IoU >= ``thr``: matched tracks, their detections, the
            unmatched tracks and detections (no work when either is
            empty)."""
            if not len(pool) or not len(dets):
                return pool[:0], dets[:0], pool, dets
            rows, cols, left_rows, left = _assign(
                self._iou_cost(cxcyah_to_xyxy(mean[pool, :4]),
                               boxes_np[dets], label_mask(pool, dets)),
                1.0 - thr, finite=not mixed)
            return pool[rows], dets[cols], pool[left_rows], dets[left]

        # 2. still-tracked tracks vs remaining detections by IoU.
        pool = pool[left_rows]
        pool = pool[code[pool] == _TRACKED]
        rows, dets, lost, left_dets = by_iou(pool, left_dets,
                                             self.iou_match_thr)
        m_rows.append(rows)
        m_dets.append(dets)

        # 3. tentative tracks vs remaining detections by IoU; confirmed
        # when matched, in the order of their rows.
        pool = np.flatnonzero(code == _TENTATIVE)
        rows, dets, removed, left_dets = by_iou(pool, left_dets,
                                                self.tentative_match_thr)
        m_rows.append(rows)
        m_dets.append(dets)

        # Kalman correction and embedding EMA of the matched tracks
        m_rows_all = np.concatenate(m_rows)
        m_dets_all = np.concatenate(m_dets)
        if len(m_rows_all):
            mean[m_rows_all], cov[m_rows_all] = self._kf_update(
                mean[m_rows_all], cov[m_rows_all], xyah[m_dets_all],
                _take_rows(projected, m_rows_all))
        rows_l, dets_l = m_rows_all.tolist(), m_dets_all.tolist()
        if rows_l:
            track_embeds = track_embeds.copy()
            track_embeds[m_rows_all] = self._smooth_embeds(
                track_embeds[m_rows_all], embeds[m_dets_all])
        matched = []
        for i, d in zip(rows_l, dets_l):
            track = tracks[i]
            if track.state == TENTATIVE:
                self._confirm(track)
            track.record(bboxes[d], scores[d], labels[d], frame_id,
                         TRACKED)
            matched.append((track, d))
        for i in lost.tolist():
            tracks[i].state = LOST

        # drop unmatched tentative tracks and lost tracks missed for more
        # than num_frames_retain frames (only lost tracks are looked at)
        code[m_rows_all] = _TRACKED
        code[lost] = _LOST
        retain = self.num_frames_retain
        dead = removed.tolist() + [
            i for i in np.flatnonzero(code == _LOST).tolist()
            if frame_id - tracks[i].frame_id > retain
        ]
        if dead:
            keys = list(self.tracks)
            for i in dead:
                del self.tracks[keys[i]]
            alive = np.ones(num, dtype=bool)
            alive[dead] = False
            mean, cov = mean[alive], cov[alive]
            track_embeds = track_embeds[alive]

        # 4. new tracks.
        new = left_dets[scores[left_dets] >= self.init_track_thr]
        if len(new):
            new_mean, new_cov = self._kf_initiate(xyah[new])
            for d in new.tolist():
                track = JDETrack(bboxes[d], scores[d], labels[d],
                                 None, frame_id, None, None,
                                 confirmed=frame_id == 0)
                if track.confirmed:
                    self._confirm(track)
                    matched.append((track, d))
                self.tracks[self._num_keys] = track
                self._num_keys += 1
            mean = np.concatenate([mean, new_mean])
            cov = np.concatenate([cov, new_cov])
            track_embeds = np.concatenate([track_embeds, embeds[new]])
        self._write_back(mean, cov, track_embeds)
        return self._outputs(matched, bboxes, scores, labels, pred)

    def pop_invalid_tracks(self, frame_id: int) -> None:
        """Drop lost tracks missed for more than ``num_frames_retain``
        (:meth:`track` does it at the end of every frame)."""
        for key in [
                k for k, t in self.tracks.items() if t.state == LOST
                and frame_id - t.frame_id > self.num_frames_retain
        ]:
            self.tracks.pop(key)

    @staticmethod
    def _outputs(matched: List[Tuple[JDETrack, int]], bboxes: np.ndarray,
                 scores: np.ndarray, labels: np.ndarray,
                 pred: InstanceData) -> InstanceData:
        """Pack the confirmed tracks matched on this frame (``matched``:
        track and detection index), sorted by identity, as tensors of the
        input's device and dtypes."""
        ids = np.array([t.instance_id for t, _ in matched], dtype=np.int64)
        order = np.argsort(ids, kind='stable')
        dets = np.array([d for _, d in matched], dtype=np.int64)[order]
        out = InstanceData()
        # set_field: the fields have one length by construction, so
        # InstanceData's per-assignment checks (a third of this method's
        # time after the network) are skipped
        for name, value in (
                ('bboxes', _tensor(bboxes[dets], pred.bboxes)),
                ('scores', _tensor(scores[dets], pred.scores)),
                ('labels', _tensor(labels[dets], pred.labels)),
                ('instances_id', _tensor(ids[order], pred.labels,
                                         torch.long))):
            out.set_field(value, name)
        return out

    def state_counts(self) -> Dict[str, int]:
        """Counts of tracks per state, for logging and tests."""
        counts = {TENTATIVE: 0, TRACKED: 0, LOST: 0}
        for track in self.tracks.values():
            counts[track.state] += 1
        return counts
