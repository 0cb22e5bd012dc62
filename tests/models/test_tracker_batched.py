"""JDETracker runs mmdet's KalmanFilter on all tracks at once and updates
the matched tracks' embeddings together: the numbers must be those of the
one-track-at-a-time path (``batch_kalman=False``) and of
``JDETrack.update_embed``, on a crowded scene with crossings, misses and
people leaving and entering."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import mmtrack_kd  # noqa: F401  (registers JDETracker)
from mmtrack_kd.models.trackers.jde_track import JDETrack


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
def test_batched_kalman_gives_the_same_numbers(motion):
    samples = crowd()
    got, got_states = run(samples, True, motion=motion)
    want, want_states = run(samples, False, motion=motion)
    assert got == want
    assert sum(len(ids) for ids, _ in got) > 600  # a crowd was tracked
    for a, b in zip(got_states, want_states):
        assert a.keys() == b.keys()
        for k in a:
            assert np.array_equal(a[k][0], b[k][0])
            assert np.array_equal(a[k][1], b[k][1])
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
    tracks = [JDETrack(torch.zeros(4), torch.tensor(1.), torch.tensor(0),
                       e.clone(), 0, np.zeros(8), np.eye(8), True)
              for e in old]
    tracker._update_embeds([(t, i) for i, t in enumerate(tracks)], new)
    for t, o, n in zip(tracks, old, new):
        ref = JDETrack(torch.zeros(4), torch.tensor(1.), torch.tensor(0),
                       o.clone(), 0, np.zeros(8), np.eye(8), True)
        ref.update_embed(n, 0.9)
        assert torch.equal(t.embed, ref.embed)
