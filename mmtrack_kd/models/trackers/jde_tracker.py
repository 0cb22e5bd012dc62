"""JDE-family online tracker (JDE, FairMOT, CSTrack) in mmdet's registry."""
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from mmdet.models.task_modules import KalmanFilter
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import (
    bbox_cxcyah_to_xyxy,
    bbox_overlaps,
    bbox_xyxy_to_cxcyah,
)
from mmengine.structures import InstanceData

from .jde_track import LOST, TENTATIVE, TRACKED, JDETrack

try:
    import lap
except ImportError:  # checked in JDETracker.__init__
    lap = None


def _check_unit(name: str, value: float) -> float:
    """Return ``float(value)`` or raise naming the config key."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0.0 <= value <= 1.0):
        raise ValueError(f'JDETracker: config key `{name}` must be a number '
                         f'in [0, 1], got {value!r}')
    return float(value)


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
    num_rows, num_cols = cost.shape
    if num_rows == 0 or num_cols == 0:
        return [], np.arange(num_rows), np.arange(num_cols)
    # Any value above ``thr`` is equivalent to "forbidden" under cost_limit;
    # a finite one keeps the solver away from inf arithmetic.
    cost = np.where(np.isfinite(cost), cost, thr + 1.0)
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    _, row_to_col, _ = lap.lapjv(cost, extend_cost=True, cost_limit=thr)
    matches = [(r, int(c)) for r, c in enumerate(row_to_col)
               if c >= 0 and cost[r, c] <= thr]
    matched_rows = {r for r, _ in matches}
    matched_cols = {c for _, c in matches}
    unmatched_rows = np.array(
        [r for r in range(num_rows) if r not in matched_rows], dtype=np.int64)
    unmatched_cols = np.array(
        [c for c in range(num_cols) if c not in matched_cols], dtype=np.int64)
    return matches, unmatched_rows, unmatched_cols


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

    def _new_track(self, bbox: torch.Tensor, score: torch.Tensor,
                   label: torch.Tensor, embed: torch.Tensor, xyah: np.ndarray,
                   frame_id: int) -> None:
        """Start a track from an unmatched detection."""
        mean, covariance = self.motion.initiate(xyah)
        track = JDETrack(bbox, score, label, embed, frame_id, mean,
                         covariance, confirmed=frame_id == 0)
        if track.confirmed:
            self._confirm(track)
        self.tracks[self._num_keys] = track
        self._num_keys += 1

    def _correct(self, matched: List[Tuple[JDETrack, int]], xyah: np.ndarray,
                 embeds: torch.Tensor) -> None:
        """Correct the Kalman state of every matched track with its
        detection ``xyah[det]`` (all at once for mmdet's filter: the same
        products in the same order as ``KalmanFilter.update``), then update
        their embeddings (:meth:`_update_embeds`)."""
        if not matched:
            return
        if not self.batch_kalman:
            for track, det in matched:
                track.mean, track.covariance = self.motion.update(
                    track.mean, track.covariance, xyah[det])
        else:
            kf = self.motion
            mean = np.stack([t.mean for t, _ in matched])  # (T, 8)
            cov = np.stack([t.covariance for t, _ in matched])
            meas = xyah[[d for _, d in matched]]  # (T, 4)
            h = mean[:, 3]
            wp = kf._std_weight_position
            std = np.stack([wp * h, wp * h, np.full_like(h, 1e-1), wp * h],
                           1)
            proj_mean = mean[:, :4]
            proj_cov = cov[:, :4, :4].copy()
            diag = np.arange(4)
            proj_cov[:, diag, diag] += np.square(std)
            chol = scipy.linalg.cho_factor(proj_cov, lower=True,
                                           check_finite=False)
            gain = scipy.linalg.cho_solve(
                chol, cov[:, :, :4].transpose(0, 2, 1),
                check_finite=False).transpose(0, 2, 1)  # (T, 8, 4)
            innovation = (meas - proj_mean)[:, None]  # (T, 1, 4)
            mean = mean + (innovation @ gain.transpose(0, 2, 1))[:, 0]
            # multi_dot's order for (8, 4) x (4, 4) x (4, 8)
            cov = cov - gain @ (proj_cov @ gain.transpose(0, 2, 1))
            for i, (track, _) in enumerate(matched):
                track.mean, track.covariance = mean[i], cov[i]
        self._update_embeds(matched, embeds)

    # ---------------------------------------------------------------- kalman
    def _predict_all(self) -> None:
        """Predict every track to this frame; a lost track keeps its
        position velocity but not its height velocity."""
        tracks = list(self.tracks.values())
        for track in tracks:
            if track.state == LOST:
                track.mean[7] = 0.0
        if not self.batch_kalman or not tracks:
            for track in tracks:
                track.mean, track.covariance = self.motion.predict(
                    track.mean, track.covariance)
            return
        # KalmanFilter.predict on the stacked states: every entry is the
        # same sum of the same two terms, so the numbers are identical
        kf = self.motion
        mean = np.stack([t.mean for t in tracks])  # (T, 8)
        cov = np.stack([t.covariance for t in tracks])  # (T, 8, 8)
        h = mean[:, 3]
        wp, wv = kf._std_weight_position, kf._std_weight_velocity
        std = np.stack([
            wp * h, wp * h, np.full_like(h, 1e-2), wp * h, wv * h, wv * h,
            np.full_like(h, 1e-5), wv * h
        ], 1)
        motion = kf._motion_mat
        mean = mean @ motion.T
        cov = motion @ (cov @ motion.T)  # multi_dot's order for 8x8x8
        diag = np.arange(8)
        cov[:, diag, diag] += np.square(std)
        for i, track in enumerate(tracks):
            track.mean, track.covariance = mean[i], cov[i]

    def _gating_distances(self, keys: List[int],
                          xyah: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances (len(keys), K) of the detections
        ``xyah`` (K, 4) to the tracks, as ``motion.gating_distance``."""
        center_only = bool(getattr(self.motion, 'center_only', False))
        if not self.batch_kalman:
            return np.stack([
                self.motion.gating_distance(self.tracks[k].mean,
                                            self.tracks[k].covariance, xyah,
                                            center_only) for k in keys
            ])
        kf = self.motion
        mean = np.stack([self.tracks[k].mean for k in keys])  # (P, 8)
        cov = np.stack([self.tracks[k].covariance for k in keys])
        # KalmanFilter.project (the update matrix picks the first 4 rows)
        h = mean[:, 3]
        wp = kf._std_weight_position
        std = np.stack([wp * h, wp * h, np.full_like(h, 1e-1), wp * h], 1)
        proj_mean = mean[:, :4]
        proj_cov = cov[:, :4, :4].copy()
        diag = np.arange(4)
        proj_cov[:, diag, diag] += np.square(std)
        meas = xyah
        if center_only:
            proj_mean, proj_cov = proj_mean[:, :2], proj_cov[:, :2, :2]
            meas = xyah[:, :2]
        chol = np.linalg.cholesky(proj_cov)
        d = meas[None] - proj_mean[:, None]  # (P, K, dim)
        z = scipy.linalg.solve_triangular(
            chol, d.transpose(0, 2, 1), lower=True, check_finite=False)
        return np.sum(z * z, axis=1)

    def _update_embeds(self, matched: List[Tuple[JDETrack, int]],
                       embeds: torch.Tensor) -> None:
        """:meth:`JDETrack.update_embed` of every matched track with its
        detection's embedding, all in one go."""
        if not matched:
            return
        old = torch.stack([t.embed for t, _ in matched])
        new = embeds[torch.tensor([d for _, d in matched])]
        alpha = self.embed_alpha
        smoothed = F.normalize(alpha * old + (1.0 - alpha) * new, dim=1)
        for (track, _), embed in zip(matched, smoothed):
            track.embed = embed

    # ------------------------------------------------------------------ costs
    def _predicted_bboxes(self, keys: List[int]) -> torch.Tensor:
        """Kalman-predicted boxes (len(keys), 4) x1y1x2y2, float64 CPU."""
        if not keys:
            return torch.zeros((0, 4), dtype=torch.float64)
        xyah = np.stack([self.tracks[k].mean[:4] for k in keys])
        return bbox_cxcyah_to_xyxy(torch.from_numpy(xyah))

    def _label_mask(self, keys: List[int], labels: torch.Tensor) -> np.ndarray:
        """Bool mask (len(keys), K): True where the labels differ."""
        track_labels = torch.stack([self.tracks[k].label for k in keys])
        return (track_labels[:, None] != labels[None, :]).numpy()

    def _embed_motion_cost(self, keys: List[int], embeds: torch.Tensor,
                           xyah: np.ndarray,
                           labels: torch.Tensor) -> np.ndarray:
        """Fused embedding + motion cost (len(keys), K) of step 1."""
        if not keys or embeds.size(0) == 0:
            return np.zeros((len(keys), embeds.size(0)))
        track_embeds = torch.stack([self.tracks[k].embed for k in keys])
        cos_dist = (1.0 - track_embeds @ embeds.t()).clamp(min=0.0)
        cost = cos_dist.double().numpy()
        maha = self._gating_distances(keys, xyah)
        cost = self.embed_weight * cost + (1.0 - self.embed_weight) * maha
        cost[maha > self._gating_threshold] = np.inf
        cost[self._label_mask(keys, labels)] = np.inf
        return cost

    def _iou_cost(self, keys: List[int], bboxes: torch.Tensor,
                  labels: torch.Tensor) -> np.ndarray:
        """``1 - IoU`` (len(keys), K), predicted track boxes vs detections."""
        if not keys or bboxes.size(0) == 0:
            return np.zeros((len(keys), bboxes.size(0)))
        ious = bbox_overlaps(self._predicted_bboxes(keys), bboxes.double())
        cost = 1.0 - ious.numpy()
        cost[self._label_mask(keys, labels)] = np.inf
        return cost

    # ------------------------------------------------------------------ track
    def track(self, data_sample: DetDataSample, **kwargs) -> InstanceData:
        """Associate one frame's detections with the tracks.

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
        device = pred.bboxes.device
        bboxes = pred.bboxes.detach().cpu().float().reshape(-1, 4)
        embeds = pred.embeds.detach().cpu().float()
        if embeds.dim() != 2 or embeds.size(0) != bboxes.size(0):
            if embeds.numel() == 0 and bboxes.size(0) == 0:
                embeds = embeds.reshape(0, 0)
            else:
                raise ValueError(
                    'JDETracker.track: pred_instances.embeds must be (K, D) '
                    f'with K={bboxes.size(0)} boxes, got '
                    f'{tuple(embeds.shape)}')
        # Score filter; degenerate boxes would break the xyah Kalman state.
        keep = ((pred.scores.detach().cpu() >= self.obj_score_thr)
                & (bboxes[:, 2] > bboxes[:, 0])
                & (bboxes[:, 3] > bboxes[:, 1]))
        bboxes = bboxes[keep]
        scores = pred.scores.detach().cpu()[keep]
        labels = pred.labels.detach().cpu()[keep]
        embeds = F.normalize(embeds[keep], dim=1)
        xyah = bbox_xyxy_to_cxcyah(bboxes.double()).numpy()

        self._predict_all()
        # a matched track's Kalman state and embedding are not read again on
        # this frame: they are corrected together after the 3 steps
        matched: List[Tuple[JDETrack, int]] = []

        def update(key: int, det: int) -> None:
            track = self.tracks[key]
            if not track.confirmed:
                self._confirm(track)
            track.record(bboxes[det], scores[det], labels[det], frame_id,
                         TRACKED)
            matched.append((track, det))

        # 1. confirmed tracks vs detections: embedding + Kalman gating.
        pool = self._keys(TRACKED, LOST)
        matches, left_tracks, left_dets = linear_assignment(
            self._embed_motion_cost(pool, embeds, xyah, labels),
            self.embed_match_thr)
        for t, d in matches:
            update(pool[t], d)

        # 2. still-tracked tracks vs remaining detections by IoU.
        pool = [pool[t] for t in left_tracks
                if self.tracks[pool[t]].state == TRACKED]
        matches, left_tracks, left = linear_assignment(
            self._iou_cost(pool, bboxes[torch.from_numpy(left_dets)],
                           labels[torch.from_numpy(left_dets)]),
            1.0 - self.iou_match_thr)
        for t, d in matches:
            update(pool[t], int(left_dets[d]))
        for t in left_tracks:
            self.tracks[pool[t]].state = LOST
        left_dets = left_dets[left]

        # 3. tentative tracks vs remaining detections by IoU.
        pool = self._keys(TENTATIVE)
        matches, left_tracks, left = linear_assignment(
            self._iou_cost(pool, bboxes[torch.from_numpy(left_dets)],
                           labels[torch.from_numpy(left_dets)]),
            1.0 - self.tentative_match_thr)
        for t, d in matches:
            update(pool[t], int(left_dets[d]))
        for t in left_tracks:
            self.tracks.pop(pool[t])
        left_dets = left_dets[left]
        self._correct(matched, xyah, embeds)

        # 4. new tracks.
        for d in left_dets.tolist():
            if scores[d] >= self.init_track_thr:
                self._new_track(bboxes[d], scores[d], labels[d], embeds[d],
                                xyah[d], frame_id)

        # 5. drop tracks lost for too long.
        self.pop_invalid_tracks(frame_id)
        return self._outputs(frame_id, device, pred)

    def pop_invalid_tracks(self, frame_id: int) -> None:
        """Drop lost tracks missed for more than ``num_frames_retain``."""
        for key in [
                k for k, t in self.tracks.items() if t.state == LOST
                and frame_id - t.frame_id > self.num_frames_retain
        ]:
            self.tracks.pop(key)

    def _outputs(self, frame_id: int, device: torch.device,
                 pred: InstanceData) -> InstanceData:
        """Pack the confirmed tracks matched on ``frame_id``."""
        tracks = sorted(
            (t for t in self.tracks.values()
             if t.state == TRACKED and t.frame_id == frame_id),
            key=lambda t: t.instance_id)
        out = InstanceData()
        if tracks:
            out.bboxes = torch.stack([t.bbox for t in tracks])
            out.scores = torch.stack([t.score for t in tracks])
            out.labels = torch.stack([t.label for t in tracks])
        else:
            out.bboxes = pred.bboxes.new_zeros((0, 4)).cpu().float()
            out.scores = pred.scores.new_zeros((0, )).cpu()
            out.labels = pred.labels.new_zeros((0, )).cpu()
        out.instances_id = torch.tensor([t.instance_id for t in tracks],
                                        dtype=torch.long)
        out.bboxes = out.bboxes.to(device=device,
                                   dtype=pred.bboxes.dtype)
        out.scores = out.scores.to(device)
        out.labels = out.labels.to(device)
        out.instances_id = out.instances_id.to(device)
        return out

    def state_counts(self) -> Dict[str, int]:
        """Counts of tracks per state, for logging and tests."""
        counts = {TENTATIVE: 0, TRACKED: 0, LOST: 0}
        for track in self.tracks.values():
            counts[track.state] += 1
        return counts
