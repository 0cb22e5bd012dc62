"""Tests of mmtrack_kd.models.trackers (JDETracker) on scripted detections."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import mmtrack_kd  # noqa: F401  (registers JDETracker)
from mmtrack_kd.models.trackers import JDETracker, linear_assignment

W, H = 40.0, 100.0  # size of every scripted person box


def person(cx: float, cy: float) -> List[float]:
    """x1y1x2y2 box of a W x H person centred at (cx, cy)."""
    return [cx - W / 2, cy - H / 2, cx + W / 2, cy + H / 2]


def unit(dim: int, i: int, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Basis embedding e_i of size ``dim``, optionally perturbed."""
    e = torch.zeros(dim)
    e[i] = 1.0
    if noise:
        g = torch.Generator().manual_seed(seed)
        e = e + noise * torch.randn(dim, generator=g)
    return F.normalize(e, dim=0)


def frame(frame_id: int,
          boxes: Sequence[Sequence[float]],
          embeds: Sequence[torch.Tensor],
          scores: Optional[Sequence[float]] = None,
          labels: Optional[Sequence[int]] = None,
          dim: int = 8) -> DetDataSample:
    """A DetDataSample holding one frame's detections."""
    k = len(boxes)
    sample = DetDataSample(metainfo=dict(frame_id=frame_id))
    pred = InstanceData()
    pred.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(k, 4)
    pred.scores = torch.tensor(
        scores if scores is not None else [0.9] * k, dtype=torch.float32)
    pred.labels = torch.tensor(
        labels if labels is not None else [0] * k, dtype=torch.long)
    pred.embeds = (torch.stack(list(embeds))
                   if k else torch.zeros((0, dim)))
    sample.pred_instances = pred
    return sample


def ids_by_x(out: InstanceData) -> Dict[int, float]:
    """Map identity -> box centre x of a tracker output."""
    cx = (out.bboxes[:, 0] + out.bboxes[:, 2]) / 2
    return {int(i): float(x) for i, x in zip(out.instances_id, cx)}


def build(**cfg) -> JDETracker:
    return MODELS.build(dict(type='JDETracker', **cfg))


def test_registered_and_defaults():
    tracker = build()
    assert isinstance(tracker, JDETracker)
    assert tracker.obj_score_thr == 0.5
    assert tracker.init_track_thr == 0.5
    assert tracker.embed_weight == 0.98
    assert tracker.embed_match_thr == 0.4
    assert tracker.iou_match_thr == 0.5
    assert tracker.tentative_match_thr == 0.7
    assert tracker.embed_alpha == 0.9
    assert tracker.num_frames_retain == 30
    assert tracker._gating_threshold == pytest.approx(9.4877)


@pytest.mark.parametrize('dim', [2, 128])
def test_two_walkers_keep_ids(dim):
    tracker = build()
    ea, eb = unit(dim, 0), unit(dim, 1)
    for f in range(25):
        a = person(100 + 6 * f, 200)
        b = person(500, 150 + 4 * f)
        out = tracker.track(frame(f, [a, b], [ea, eb], dim=dim))
        assert out.instances_id.dtype == torch.long
        assert out.instances_id.tolist() == [0, 1]
        # Boxes are the matched detections, in identity order.
        assert torch.allclose(out.bboxes, torch.tensor([a, b]))
        assert out.scores.shape == (2, ) and out.labels.tolist() == [0, 0]


def test_short_occlusion_keeps_id():
    tracker = build()
    ea, eb = unit(8, 0), unit(8, 1)
    for f in range(30):
        a = person(100 + 5 * f, 200)
        b = person(400, 300)
        if 10 <= f < 15:  # A hidden for 5 frames, keeps walking
            out = tracker.track(frame(f, [b], [eb]))
            assert out.instances_id.tolist() == [1]
            assert tracker.state_counts()['lost'] == 1
        else:
            out = tracker.track(frame(f, [a, b], [ea, eb]))
            assert ids_by_x(out) == {0: a[0] + W / 2, 1: 400.0}
    assert tracker.num_tracks == 2


@pytest.mark.parametrize('missing,same_id', [(30, True), (31, False)])
def test_absence_longer_than_retain_gets_new_id(missing, same_id):
    tracker = build()  # num_frames_retain = 30
    e = unit(8, 0)
    box = person(300, 300)
    for f in range(5):
        assert tracker.track(frame(f, [box], [e])).instances_id.tolist() == [0]
    for f in range(5, 5 + missing):
        assert len(tracker.track(frame(f, [], []))) == 0
    back = 5 + missing
    out = tracker.track(frame(back, [box], [e]))
    if same_id:
        assert out.instances_id.tolist() == [0]
    else:
        # A new, tentative track: not output on its first frame ...
        assert len(out) == 0
        # ... and confirmed with the next consecutive identity.
        out = tracker.track(frame(back + 1, [box], [e]))
        assert out.instances_id.tolist() == [1]


def test_crossing_people_do_not_swap():
    tracker = build()
    overlapped = 0
    for f in range(31):
        a = person(100 + 10 * f, 300)
        b = person(400 - 10 * f, 302)
        # Noisy per-frame embeddings around two distinct identities.
        embeds = [unit(16, 0, 0.1, seed=f), unit(16, 1, 0.1, seed=100 + f)]
        out = tracker.track(frame(f, [a, b], embeds))
        assert ids_by_x(out) == {0: a[0] + W / 2, 1: b[0] + W / 2}
        overlapped += abs(a[0] - b[0]) < W / 3  # IoU above 0.5
    assert overlapped >= 1  # the boxes really overlapped heavily


def test_people_meeting_and_turning_back_keep_ids():
    """Two people meet and both turn back: constant-velocity motion alone
    predicts them crossing (a swap); the embeddings keep the ids."""
    tracker = build()
    ea, eb = unit(8, 0), unit(8, 1)
    for f in range(40):
        step = f if f <= 20 else 40 - f  # walk in until frame 20, then out
        a, b = person(170 + 4 * step, 300), person(330 - 4 * step, 300)
        out = tracker.track(frame(f, [a, b], [ea, eb]))
        assert ids_by_x(out) == {0: a[0] + W / 2, 1: b[0] + W / 2}


def test_far_detection_does_not_steal_id():
    tracker = build()
    e = unit(8, 0)
    for f in range(6):
        tracker.track(frame(f, [person(100, 200)], [e]))
    # The person disappears; a detection far outside the Kalman gate shows
    # up with the very same embedding.
    out = tracker.track(frame(6, [person(600, 200)], [e]))
    assert len(out) == 0
    assert tracker.state_counts() == dict(tentative=1, tracked=0, lost=1)
    out = tracker.track(frame(7, [person(600, 200)], [e]))
    assert out.instances_id.tolist() == [1]


def test_kalman_gate_rejects_cheap_pair_just_outside():
    """A detection just outside the chi-square gate, whose fused cost
    (0.02 * maha, identical embedding) is below embed_match_thr, must not be
    matched: only the gate forbids it."""
    tracker = build()
    e = unit(8, 0)
    for f in range(6):
        tracker.track(frame(f, [person(100, 200)], [e]))
    (track, ) = tracker.tracks.values()
    kf = tracker.motion
    mean, cov = kf.predict(track.mean.copy(), track.covariance.copy())
    xs = np.arange(100.0, 200.0, 0.5)
    cand = np.stack([xs, np.full_like(xs, 200.0),
                     np.full_like(xs, W / H), np.full_like(xs, H)], 1)
    maha = kf.gating_distance(mean, cov, cand)
    # Cost 0.02 * maha < 0.4 but maha above the 95% gate (9.49).
    inside = np.nonzero((maha > 11) & (0.02 * maha < 0.35))[0]
    assert inside.size > 0
    cx = float(xs[inside[0]])
    out = tracker.track(frame(6, [person(cx, 200)], [e]))
    assert len(out) == 0
    assert tracker.state_counts() == dict(tentative=1, tracked=0, lost=1)


def test_embedding_decides_between_gated_candidates():
    """Two candidates inside the gate: the one with the track's embedding
    wins even though the other is closer in position."""
    tracker = build()
    e, other = unit(8, 0), unit(8, 1)
    for f in range(5):
        tracker.track(frame(f, [person(200, 200)], [e]))
    out = tracker.track(
        frame(5, [person(201, 200), person(206, 200)], [other, e]))
    assert ids_by_x(out) == {0: 206.0}


def test_empty_frames():
    tracker = build()
    out = tracker.track(frame(0, [], []))
    assert out.bboxes.shape == (0, 4) and out.instances_id.shape == (0, )
    assert out.scores.shape == (0, ) and out.labels.shape == (0, )
    # A detection on a non-zero frame is tentative: nothing output ...
    assert len(tracker.track(frame(1, [person(50, 60)], [unit(8, 0)]))) == 0
    # ... and an empty frame removes the unconfirmed track without an id.
    assert len(tracker.track(frame(2, [], []))) == 0
    assert tracker.tracks == {} and tracker.num_tracks == 0
    # 1-D empty embeddings are accepted too.
    sample = frame(3, [], [])
    sample.pred_instances.embeds = torch.zeros((0, ))
    assert len(tracker.track(sample)) == 0


def test_reset_on_frame_zero():
    tracker = build()
    for f in range(4):
        tracker.track(
            frame(f, [person(100, 100), person(300, 100)],
                  [unit(8, 0), unit(8, 1)]))
    assert tracker.num_tracks == 2
    out = tracker.track(frame(0, [person(300, 100)], [unit(8, 1)]))
    assert out.instances_id.tolist() == [0]
    assert tracker.num_tracks == 1 and len(tracker.tracks) == 1


def test_tentative_confirmation_and_score_thresholds():
    tracker = build(obj_score_thr=0.3, init_track_thr=0.6)
    e0, e1, e2 = unit(8, 0), unit(8, 1), unit(8, 2)
    boxes = [person(100, 100), person(300, 100), person(500, 100)]
    # 0.2 < obj_score_thr: ignored; 0.4 is kept but cannot start a track.
    out = tracker.track(frame(0, boxes, [e0, e1, e2], [0.9, 0.2, 0.4]))
    assert out.instances_id.tolist() == [0]
    # A one-frame false positive on frame 1 never gets an identity.
    out = tracker.track(
        frame(1, [boxes[0], person(700, 300)], [e0, e1], [0.9, 0.9]))
    assert out.instances_id.tolist() == [0]
    out = tracker.track(frame(2, [boxes[0]], [e0]))
    assert out.instances_id.tolist() == [0]
    # A person entering later is output from its second frame, id 1.
    assert tracker.track(frame(3, boxes[:2], [e0, e1])).instances_id.tolist() \
        == [0]
    assert tracker.track(frame(4, boxes[:2], [e0, e1])).instances_id.tolist() \
        == [0, 1]
    # A confirmed track matched by a detection scoring between the two
    # thresholds is still output.
    out = tracker.track(frame(5, boxes[:2], [e0, e1], [0.9, 0.35]))
    assert out.instances_id.tolist() == [0, 1]


def test_num_frames_retain_from_config():
    tracker = build(num_frames_retain=2)
    e, box = unit(8, 0), person(100, 100)
    tracker.track(frame(0, [box], [e]))
    tracker.track(frame(1, [], []))
    tracker.track(frame(2, [], []))
    assert tracker.track(frame(3, [box], [e])).instances_id.tolist() == [0]
    for f in (4, 5, 6):
        tracker.track(frame(f, [], []))
    assert tracker.tracks == {}
    tracker.track(frame(7, [box], [e]))
    assert tracker.track(frame(8, [box], [e])).instances_id.tolist() == [1]


def test_embedding_ema_from_config():
    tracker = build(embed_alpha=0.5)
    e0, e1 = unit(8, 0), F.normalize(unit(8, 0) + unit(8, 1), dim=0)
    tracker.track(frame(0, [person(100, 100)], [e0]))
    tracker.track(frame(1, [person(100, 100)], [e1]))
    (track, ) = tracker.tracks.values()
    expected = F.normalize(0.5 * e0 + 0.5 * e1, dim=0)
    assert torch.allclose(track.embed, expected, atol=1e-6)
    assert track.embed.norm() == pytest.approx(1.0)


def test_embed_match_thr_from_config():
    # A lost (so not IoU-matchable) track whose embedding changed: matched
    # back by embedding only when the threshold allows it.
    e0 = unit(8, 0)
    e_new = F.normalize(unit(8, 0) + 0.8 * unit(8, 1), dim=0)
    cos_dist = 1 - float(e0 @ e_new)  # about 0.22
    ids = []
    for thr in (0.1, 0.4):
        tracker = build(embed_match_thr=thr)
        tracker.track(frame(0, [person(100, 100)], [e0]))
        tracker.track(frame(1, [], []))
        tracker.track(frame(2, [person(100, 100)], [e_new]))
        ids.append(
            tracker.track(frame(3, [person(100, 100)],
                                [e_new])).instances_id.tolist())
    assert 0.1 < 0.98 * cos_dist < 0.4
    assert ids == [[1], [0]]


def test_labels_never_matched_across_classes():
    tracker = build()
    e = unit(8, 0)
    tracker.track(frame(0, [person(100, 100)], [e], labels=[0]))
    out = tracker.track(frame(1, [person(100, 100)], [e], labels=[1]))
    assert len(out) == 0  # a new tentative track of class 1


def test_gpu_free_output_types_follow_input():
    tracker = build()
    sample = frame(0, [person(100, 100)], [unit(8, 0)])
    sample.pred_instances.bboxes = sample.pred_instances.bboxes.double()
    out = tracker.track(sample)
    assert out.bboxes.dtype == torch.float64
    assert out.bboxes.device == torch.device('cpu')


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_inputs_track_as_float32(dtype):
    """Detections of a half-precision network (numpy has no bfloat16):
    the same ids as in float32, outputs in the input's dtypes."""
    walk = [[person(100 + 6 * f, 100), person(300 - 6 * f, 120)]
            for f in range(4)]
    ref, half = build(), build()
    for f, boxes in enumerate(walk):
        want = ref.track(frame(f, boxes, [unit(8, 0), unit(8, 1)]))
        sample = frame(f, boxes, [unit(8, 0), unit(8, 1)])
        pred = sample.pred_instances
        for key in ('bboxes', 'scores', 'embeds'):
            pred[key] = pred[key].to(dtype)
        got = half.track(sample)
        assert got.instances_id.tolist() == want.instances_id.tolist()
        assert got.bboxes.dtype == dtype and got.scores.dtype == dtype
    assert len(want) == 2


@pytest.mark.parametrize(
    'key,value',
    [('obj_score_thr', 1.5), ('init_track_thr', -0.1), ('embed_weight', 2),
     ('iou_match_thr', 'a'), ('embed_alpha', 1.1),
     ('num_frames_retain', -1), ('embed_match_thr', -0.5)])
def test_bad_config_names_key(key, value):
    with pytest.raises(ValueError, match=key):
        build(**{key: value})


def test_missing_inputs_are_named():
    tracker = build()
    sample = frame(0, [person(100, 100)], [unit(8, 0)])
    del sample.pred_instances.embeds
    with pytest.raises(KeyError, match='embeds'):
        tracker.track(sample)
    sample = DetDataSample()
    sample.pred_instances = InstanceData()
    with pytest.raises(KeyError, match='frame_id'):
        tracker.track(sample)


def test_linear_assignment():
    cost = np.array([[0.1, np.inf, 0.3], [0.2, 0.05, np.inf],
                     [np.inf, np.inf, 0.9]])
    matches, rows, cols = linear_assignment(cost, 0.4)
    assert sorted(matches) == [(0, 0), (1, 1)]
    assert rows.tolist() == [2] and cols.tolist() == [2]
    # The global optimum, not the greedy choice.
    matches, _, _ = linear_assignment(np.array([[0.1, 0.2], [0.15, 0.9]]),
                                      0.5)
    assert sorted(matches) == [(0, 1), (1, 0)]
    matches, rows, cols = linear_assignment(np.zeros((0, 3)), 0.4)
    assert matches == [] and rows.size == 0 and cols.tolist() == [0, 1, 2]


def test_assignment_with_finite_forbidden_costs_is_the_same():
    """The tracker's own costs mark forbidden pairs with a finite value
    above the threshold (``_assign(..., finite=True)``): the same matches
    and unmatched rows and columns as with ``inf``."""
    from mmtrack_kd.models.trackers.jde_tracker import _assign
    rng = np.random.default_rng(0)
    for shape in ((5, 7), (9, 4), (12, 12), (1, 6)):
        cost = rng.uniform(0, 1, shape)
        cost[rng.uniform(size=shape) < 0.3] = np.inf
        thr = 0.4
        want = _assign(cost, thr)
        got = _assign(np.where(np.isinf(cost), thr + 1.0, cost), thr,
                      finite=True)
        for g, w in zip(got, want):
            assert g.tolist() == w.tolist()
        rows, cols, free_rows, free_cols = want
        assert np.all(cost[rows, cols] <= thr)
        assert sorted(rows.tolist() + free_rows.tolist()) == list(
            range(shape[0]))
        assert sorted(cols.tolist() + free_cols.tolist()) == list(
            range(shape[1]))


def test_standalone_tracker_not_an_mmdet_base_tracker():
    # JDETracker keeps JDETrack objects, not BaseTracker's per-item memo, so
    # it does not inherit the memo API (update, memo, get, init_track) that
    # would fail on its tracks.
    from mmdet.models.trackers import BaseTracker
    tracker = build()
    assert not isinstance(tracker, BaseTracker)
    for name in ('update', 'memo', 'get', 'init_track', 'update_track',
                 'confirmed_ids'):
        assert not hasattr(tracker, name), name
    # what mmdet's MOT models and the tools use of a tracker
    tracker.track(frame(0, [person(100, 100)], [unit(8, 0)]))
    assert tracker.num_tracks == 1 and len(tracker.tracks) == 1
    tracker.reset()
    assert tracker.tracks == {} and tracker.num_tracks == 0


def test_unknown_config_key_is_refused():
    with pytest.raises(TypeError, match='momentums'):
        build(momentums=dict(embeds=0.5))
