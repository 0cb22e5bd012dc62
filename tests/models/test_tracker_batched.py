"""JDETracker runs mmdet's KalmanFilter on all tracks at once
(``models/trackers/kalman.py``: batched Cholesky and substitutions, no
per-track Python) and updates the matched tracks' embeddings together.

- The batched predict, update, gating distance and initiation equal a
  small reference written here from the Kalman equations (explicit
  inverses, one track at a time) to float rounding, on random stacks.
- On a crowded scene with crossings, misses and people leaving and
  entering, the tracker gives the same tracks (ids, boxes) as its
  one-track-at-a-time path through mmdet's own filter methods
  (``batch_kalman=False``), and the same states to float rounding.
- The embedding EMA equals ``JDETrack.update_embed``; the numpy IoU and
  box conversions equal mmdet's.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import (
    bbox_cxcyah_to_xyxy,
    bbox_overlaps,
    bbox_xyxy_to_cxcyah,
)
from mmengine.structures import InstanceData

import mmtrack_kd  # noqa: F401  (registers JDETracker)
from mmtrack_kd.models.trackers import kalman
from mmtrack_kd.models.trackers.jde_track import JDETrack
from mmtrack_kd.models.trackers.jde_tracker import (
    cxcyah_to_xyxy,
    iou_matrix,
    xyxy_to_cxcyah,
)

# ---------------------------------------------------------------- reference
# The constant-velocity xyah filter, from its equations, one track at a
# time: x = (cx, cy, a, h, vcx, vcy, va, vh), z = (cx, cy, a, h).
WP, WV = 1. / 20, 1. / 160  # mmdet's position and velocity noise weights
F_MAT = np.eye(8) + np.eye(8, k=4)  # x_{t+1} = x_t + v_t
H_MAT = np.eye(4, 8)  # z = first four entries


def ref_initiate(z):
    h = z[3]
    std = [2 * WP * h, 2 * WP * h, 1e-2, 2 * WP * h,
           10 * WV * h, 10 * WV * h, 1e-5, 10 * WV * h]
    return np.r_[z, np.zeros(4)], np.diag(np.square(std))


def ref_predict(x, p):
    h = x[3]
    q = np.diag(np.square([WP * h, WP * h, 1e-2, WP * h,
                           WV * h, WV * h, 1e-5, WV * h]))
    return F_MAT @ x, F_MAT @ p @ F_MAT.T + q


def ref_innovation_cov(x, p):
    h = x[3]
    r = np.diag(np.square([WP * h, WP * h, 1e-1, WP * h]))
    return H_MAT @ p @ H_MAT.T + r


def ref_update(x, p, z):
    s = ref_innovation_cov(x, p)
    k = p @ H_MAT.T @ np.linalg.inv(s)
    return x + k @ (z - H_MAT @ x), p - k @ s @ k.T


def ref_gating(x, p, zs, center_only):
    s = ref_innovation_cov(x, p)
    d = zs - H_MAT @ x
    if center_only:
        s, d = s[:2, :2], d[:, :2]
    return np.einsum('ki,ij,kj->k', d, np.linalg.inv(s), d)


def random_states(rng, n):
    """``n`` plausible track states: boxes in a 1000x600 image, velocities
    of a few pixels, SPD covariances with correlations."""
    x = np.concatenate([
        rng.uniform([0, 0, 0.3, 30], [1000, 600, 0.7, 200], size=(n, 4)),
        rng.normal(0, [3, 3, 1e-3, 1], size=(n, 4))
    ], 1)
    a = rng.normal(size=(n, 8, 8)) * rng.uniform(0.1, 5, size=(n, 1, 8))
    p = a @ a.transpose(0, 2, 1) + 1e-2 * np.eye(8)
    return x, p


def measurements(rng, x, noise=5.0):
    z = x[:, :4] + rng.normal(0, [noise, noise, 0.02, noise],
                              size=(len(x), 4))
    return z


@pytest.mark.parametrize('n', [1, 7, 40])
def test_batched_kalman_equals_the_equations(n):
    rng = np.random.default_rng(n)
    kf = TASK_UTILS.build(dict(type='KalmanFilter'))
    x, p = random_states(rng, n)
    x_in, p_in = x.copy(), p.copy()

    mean, cov = kalman.batch_predict(kf, x, p)
    assert np.array_equal(x, x_in) and np.array_equal(p, p_in)
    for i in range(n):
        rx, rp = ref_predict(x[i], p[i])
        np.testing.assert_allclose(mean[i], rx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(cov[i], rp, rtol=1e-12, atol=1e-12)

    z = measurements(rng, mean)
    new_mean, new_cov = kalman.batch_update(kf, mean, cov, z)
    for i in range(n):
        rx, rp = ref_update(mean[i], cov[i], z[i])
        np.testing.assert_allclose(new_mean[i], rx, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(new_cov[i], rp, rtol=1e-9, atol=1e-9)
    # the update shrinks the covariance of what is measured
    assert np.all(np.diagonal(new_cov, axis1=1, axis2=2)[:, :4] <
                  np.diagonal(cov, axis1=1, axis2=2)[:, :4])

    dets = measurements(rng, mean[rng.integers(0, n, size=9)], noise=30)
    for center_only in (False, True):
        maha = kalman.batch_gating_distance(kf, mean, cov, dets,
                                            center_only)
        assert maha.shape == (n, 9)
        for i in range(n):
            np.testing.assert_allclose(
                maha[i], ref_gating(mean[i], cov[i], dets, center_only),
                rtol=1e-9, atol=1e-9)

    init_mean, init_cov = kalman.batch_initiate(kf, z)
    for i in range(n):
        rx, rp = ref_initiate(z[i])
        np.testing.assert_array_equal(init_mean[i], rx)
        np.testing.assert_allclose(init_cov[i], rp, rtol=1e-15, atol=0)


def test_diagonal_path_equals_the_equations():
    """Tracks of mmdet's filter keep a diagonal projected covariance: the
    batched filter then divides instead of factorising; same numbers."""
    rng = np.random.default_rng(5)
    kf = TASK_UTILS.build(dict(type='KalmanFilter'))
    z0 = measurements(rng, random_states(rng, 20)[0])
    mean, cov = kalman.batch_initiate(kf, z0)
    for step in range(3):
        mean, cov = kalman.batch_predict(kf, mean, cov)
        assert kalman.diagonal_factor(
            kalman.batch_project(kf, mean, cov)[1]) is not None
        dets = measurements(rng, mean, noise=8)
        maha = kalman.batch_gating_distance(kf, mean, cov, dets)
        new_mean, new_cov = kalman.batch_update(kf, mean, cov, dets)
        for i in range(20):
            np.testing.assert_allclose(
                maha[i], ref_gating(mean[i], cov[i], dets, False),
                rtol=1e-9, atol=1e-9)
            rx, rp = ref_update(mean[i], cov[i], dets[i])
            np.testing.assert_allclose(new_mean[i], rx, rtol=1e-9,
                                       atol=1e-9)
            np.testing.assert_allclose(new_cov[i], rp, rtol=1e-9,
                                       atol=1e-9)
        mean, cov = new_mean, new_cov
    full = np.ones((2, 4, 4)) + np.eye(4)
    assert kalman.diagonal_factor(full) is None
    assert kalman.diagonal_factor(np.zeros((1, 4, 4))) is None


def test_batched_solves_equal_numpy_solve():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(12, 4, 4))
    spd = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(4)
    chol = np.linalg.cholesky(spd)
    rhs = rng.normal(size=(12, 4, 5))
    np.testing.assert_allclose(kalman.lower_solve(chol, rhs),
                               np.linalg.solve(chol, rhs), rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(kalman.cholesky_solve(chol, rhs),
                               np.linalg.solve(spd, rhs), rtol=1e-9,
                               atol=1e-9)


def test_numpy_boxes_equal_mmdet():
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 500, size=(30, 2))
    wh = rng.uniform(1, 80, size=(30, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    other = boxes[rng.permutation(30)[:11]] + rng.normal(0, 10, (11, 4))
    other[:, 2:] = np.maximum(other[:, 2:], other[:, :2] + 1)
    want = bbox_overlaps(torch.from_numpy(boxes),
                         torch.from_numpy(other)).numpy()
    got = iou_matrix(boxes, other)
    assert np.array_equal(got, want) and (got > 0).sum() > 5
    xyah = xyxy_to_cxcyah(boxes)
    assert np.array_equal(
        xyah, bbox_xyxy_to_cxcyah(torch.from_numpy(boxes)).numpy())
    assert np.array_equal(
        cxcyah_to_xyxy(xyah),
        bbox_cxcyah_to_xyxy(torch.from_numpy(xyah)).numpy())


def crowd(frames=40, people=30, dim=16, seed=0):
    """Per frame a DetDataSample of ``people`` walkers (some missed, some
    leaving for a while), noisy boxes and embeddings."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform([50, 80], [950, 500], size=(people, 2))
    vel = rng.normal(0, 4, size=(people, 2))
    size = rng.uniform([20, 50], [40, 110], size=(people, 2))
    emb = rng.normal(size=(people, dim))
    out = []
    for f in range(frames):
        pos += vel + rng.normal(0, 1, size=pos.shape)
        seen = rng.random(people) > 0.1  # 10 % missed
        if 10 <= f < 20:
            seen[:3] = False  # three people away for 10 frames
        p, s = pos[seen], size[seen]
        boxes = np.concatenate([p - s / 2, p + s / 2], 1)
        boxes += rng.normal(0, 1.5, size=boxes.shape)
        e = emb[seen] + rng.normal(0, 0.4, size=(int(seen.sum()), dim))
        sample = DetDataSample(metainfo=dict(frame_id=f))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            scores=torch.tensor(rng.uniform(0.55, 1.0, int(seen.sum())),
                                dtype=torch.float32),
            labels=torch.zeros(int(seen.sum()), dtype=torch.long),
            embeds=torch.tensor(e, dtype=torch.float32))
        out.append(sample)
    return out


def run(samples, batch, **cfg):
    tracker = MODELS.build(dict(type='JDETracker', **cfg))
    assert tracker.batch_kalman  # mmdet's filter: batched by default
    tracker.batch_kalman = batch
    outs, states = [], []
    for s in samples:
        o = tracker.track(s)
        outs.append((o.instances_id.tolist(), o.bboxes.tolist()))
        states.append({k: (t.mean.copy(), t.covariance.copy(),
                           t.embed.clone(), t.state, t.instance_id)
                       for k, t in tracker.tracks.items()})
    return outs, states


@pytest.mark.parametrize('motion', [None, dict(type='KalmanFilter',
                                                center_only=True)])
def test_batched_tracker_gives_the_same_tracks(motion):
    samples = crowd()
    got, got_states = run(samples, True, motion=motion)
    want, want_states = run(samples, False, motion=motion)
    assert got == want  # the same ids and boxes on every frame
    assert sum(len(ids) for ids, _ in got) > 600  # a crowd was tracked
    for a, b in zip(got_states, want_states):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k][0], b[k][0], rtol=1e-9,
                                       atol=1e-9)
            np.testing.assert_allclose(a[k][1], b[k][1], rtol=1e-9,
                                       atol=1e-9)
            assert torch.equal(a[k][2], b[k][2])
            assert a[k][3:] == b[k][3:]


def test_other_filters_run_one_track_at_a_time():
    class Filter(MODELS.get('JDETracker')().motion.__class__):
        pass
    tracker = MODELS.build(dict(type='JDETracker', motion=Filter()))
    assert not tracker.batch_kalman
    nsa = MODELS.build(dict(type='JDETracker', motion=dict(
        type='KalmanFilter', use_nsa=True)))
    assert not nsa.batch_kalman


def test_embeddings_updated_together_equal_update_embed():
    g = torch.Generator().manual_seed(0)
    old = F.normalize(torch.randn(30, 128, generator=g), dim=1)
    new = F.normalize(torch.randn(30, 128, generator=g), dim=1)
    tracker = MODELS.build(dict(type='JDETracker', embed_alpha=0.9))
    smoothed = tracker._smooth_embeds(old.numpy(), new.numpy())
    assert smoothed.dtype == np.float32
    for got, o, n in zip(smoothed, old, new):
        ref = JDETrack(torch.zeros(4), torch.tensor(1.), torch.tensor(0),
                       o.clone(), 0, np.zeros(8), np.eye(8), True)
        ref.update_embed(n, 0.9)
        assert torch.equal(torch.from_numpy(got), ref.embed)
        # what torch's own normalisation gives, to float rounding
        want = F.normalize(0.9 * o + 0.1 * n, dim=0)
        assert torch.allclose(ref.embed, want, rtol=0, atol=1e-6)


def test_projection_made_once_equals_per_call():
    """The gating and the correction given rows of one projection (as the
    tracker does once a frame) equal them projecting themselves."""
    rng = np.random.default_rng(3)
    kf = TASK_UTILS.build(dict(type='KalmanFilter'))
    for diagonal in (True, False):
        if diagonal:
            mean, cov = kalman.batch_initiate(
                kf, measurements(rng, random_states(rng, 12)[0]))
        else:
            mean, cov = random_states(rng, 12)
        mean, cov = kalman.batch_predict(kf, mean, cov)
        projected = kalman.batch_project_factor(kf, mean, cov)
        assert (projected[2] is not None) == diagonal
        rows = np.array([0, 3, 4, 7, 11])
        part = tuple(None if p is None else p[rows] for p in projected)
        dets = measurements(rng, mean[rows], noise=20)
        for center_only in (False, True):
            np.testing.assert_array_equal(
                kalman.batch_gating_distance(kf, None, None, dets,
                                             center_only, part),
                kalman.batch_gating_distance(kf, mean[rows], cov[rows],
                                             dets, center_only))
        for got, want in zip(
                kalman.batch_update(kf, mean[rows], cov[rows], dets, part),
                kalman.batch_update(kf, mean[rows], cov[rows], dets)):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('how', ['new array', 'in place'])
def test_states_set_on_a_track_are_used(how):
    """The tracker keeps its stacks of the last frame; a state that a
    caller sets on a track (a new array, or written into the one it
    reads) replaces its row."""
    def one(f):
        sample = DetDataSample(metainfo=dict(frame_id=f))
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([[100., 100., 140., 200.]]),
            scores=torch.tensor([0.9]), labels=torch.tensor([0]),
            embeds=torch.tensor([[1., 0., 0., 0.]]))
        return sample

    samples = [one(f) for f in range(3)]
    tracker = MODELS.build(dict(type='JDETracker'))
    tracker.track(samples[0])
    (track, ) = tracker.tracks.values()
    kept = tracker.tracks.copy()
    tracker.track(samples[1])
    assert tracker.tracks == kept and track.state == 'tracked'
    # moved 300 px away: gated out and no overlap, so the track is missed
    if how == 'new array':
        track.mean = track.mean + np.r_[300.0, 300.0, np.zeros(6)]
    else:
        track.mean[:2] += 300.0
    tracker.track(samples[2])
    assert track.state == 'lost'
    assert len(tracker.tracks) == 2  # the detection starts a new track


def test_same_tracks_when_the_stacks_are_rebuilt():
    """Replacing every track's arrays by equal copies (so the tracker must
    stack them again) changes nothing."""
    samples = crowd(frames=25)
    want, _ = run(samples, True)
    tracker = MODELS.build(dict(type='JDETracker'))
    got = []
    for s in samples:
        o = tracker.track(s)
        got.append((o.instances_id.tolist(), o.bboxes.tolist()))
        for t in tracker.tracks.values():
            t.mean, t.covariance = t.mean.copy(), t.covariance.copy()
            t.embed = t.embed.clone()
    assert got == want


def test_setting_one_state_keeps_the_others():
    """A track reads its mean, covariance and embedding from its row of
    the tracker's stacks; setting one of them keeps the other two."""
    tracker = MODELS.build(dict(type='JDETracker'))
    for s in crowd(frames=3):
        tracker.track(s)
    for track in tracker.tracks.values():
        mean, cov = track.mean.copy(), track.covariance.copy()
        embed = track.embed.clone()
        track.covariance = cov * 2
        np.testing.assert_array_equal(track.mean, mean)
        np.testing.assert_array_equal(track.covariance, cov * 2)
        assert torch.equal(track.embed, embed)
        track.embed = -embed
        np.testing.assert_array_equal(track.mean, mean)
        assert torch.equal(track.embed, -embed)
