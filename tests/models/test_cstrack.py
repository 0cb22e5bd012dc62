"""Tests of the CSTrack model: shapes, channel attributes, losses, predict."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.utils import register_all_modules
from mmengine.structures import InstanceData

import mmtrack_kd  # noqa: F401  (registers everything)
from mmtrack_kd.models.mot import CSTrack

register_all_modules(init_default_scope=True)

# model sizes as (deepen, widen) at a tiny width
SIZES = {'n': (0.33, 0.125), 's': (0.33, 0.25)}
ANCHORS = [[2, 6, 3, 8, 4, 12], [8, 24, 11, 34, 16, 48],
           [32, 96, 45, 135, 64, 192]]


@MODELS.register_module(force=True)
class _StubTracker:
    """Records the frames it sees and gives every detection a new id."""

    def __init__(self):
        self.frames = []

    def track(self, data_sample, **kwargs):
        self.frames.append(data_sample)
        pred = data_sample.pred_instances
        return InstanceData(
            bboxes=pred.bboxes.clone(),
            scores=pred.scores.clone(),
            labels=pred.labels.clone(),
            instances_id=torch.arange(len(pred)))


def _cfg(size='n', **overrides):
    deepen, widen = SIZES[size]
    cfg = dict(
        type='CSTrack',
        backbone=dict(
            type='CSPDarknet', deepen_factor=deepen, widen_factor=widen),
        neck=dict(
            type='YOLOXPAFPN',
            out_channels=int(256 * widen),
            num_csp_blocks=1),
        ccn=dict(type='CCN', grid_size=(3, 5)),
        bbox_head=dict(type='YOLOv5Head', num_classes=1, anchors=ANCHORS),
        id_head=dict(type='CSTrackIDHead', num_ids=6, embed_channels=16),
        tracker=dict(type='_StubTracker'),
        data_preprocessor=dict(type='TrackDataPreprocessor'))
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MODELS.build(_cfg('n'))


def _frame(boxes, ids, shape=(64, 96), frame_id=0, scale=(1.0, 1.0)):
    det = DetDataSample()
    det.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float).view(-1, 4),
        labels=torch.zeros(len(ids), dtype=torch.long),
        instances_ids=torch.tensor(ids, dtype=torch.long))
    det.set_metainfo(
        dict(
            frame_id=frame_id,
            img_shape=shape,
            batch_input_shape=shape,
            scale_factor=scale))
    track = TrackDataSample()
    track.video_data_samples = [det]
    return track


def test_builds_from_config_with_filled_channels(model):
    assert isinstance(model, CSTrack)
    assert model.strides == [8, 16, 32]
    assert model.neck_channels == [32, 32, 32]
    assert model.ccn.in_channels == model.neck_channels
    assert model.bbox_head.in_channels == model.neck_channels
    assert model.id_head.in_channels == model.neck_channels
    assert model.embed_channels == 16
    assert model.neck.in_channels == [32, 64, 128]  # read from the backbone


@pytest.mark.parametrize('size', ['n', 's'])
def test_forward_shapes_match_attributes(size):
    model = MODELS.build(_cfg(size)).eval()
    deepen, widen = SIZES[size]
    assert model.neck_channels == [int(256 * widen)] * 3
    for h, w in [(64, 96), (128, 160)]:
        with torch.no_grad():
            outs = model._forward(torch.randn(2, 1, 3, h, w))  # 5D folded
            feats = model.neck(model.backbone(torch.randn(2, 3, h, w)))
        assert [f.shape[1] for f in feats] == model.neck_channels
        assert [h // f.shape[2] for f in feats] == model.strides
        a = model.bbox_head.num_anchors
        for p, s in zip(outs['det_preds'], model.strides):
            assert p.shape == (2, a * 6, h // s, w // s)
        assert outs['id_map'].shape == (2, model.embed_channels, h // 8,
                                        w // 8)


def test_forward_does_not_touch_loss_code(model, monkeypatch):

    def boom(*args, **kwargs):
        raise AssertionError('loss code called from _forward')

    monkeypatch.setattr(model.bbox_head, 'loss', boom)
    monkeypatch.setattr(model.id_head, 'loss', boom)
    out = model(torch.randn(1, 3, 64, 96), mode='tensor')
    assert set(out) == {'det_preds', 'id_map'}


def test_losses_finite_with_empty_frames(model):
    inputs = torch.randn(2, 1, 3, 64, 96)
    all_empty = model.loss(inputs, [_frame([], []), _frame([], [])])
    assert set(all_empty) == {'loss_box', 'loss_obj', 'loss_id'}
    assert all(torch.isfinite(v) for v in all_empty.values())
    one = model.loss(inputs, [_frame([[10, 5, 30, 60]], [3]),
                              _frame([], [])])
    assert all(torch.isfinite(v) for v in one.values())
    assert one['loss_box'] > 0 and one['loss_id'] > 0
    sum(one.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    model.zero_grad()


def test_invalid_id_raises(model):
    with pytest.raises(ValueError, match='id_head.num_ids'):
        model.loss(
            torch.randn(1, 1, 3, 64, 96), [_frame([[10, 5, 30, 60]], [6])])


def test_loss_decreases_on_fixed_batch():
    """Overfit check: a few SGD steps on one tiny batch lower the loss."""
    torch.manual_seed(0)
    cfg = _cfg('n')
    cfg['bbox_head']['loss_box_weight'] = 1.0
    cfg['id_head']['loss_weight'] = 1.0
    model = MODELS.build(cfg)
    inputs = torch.randn(2, 1, 3, 64, 96)
    samples = [
        _frame([[10, 5, 30, 60], [50, 8, 74, 62]], [0, 1]),
        _frame([[40, 10, 60, 58]], [2])
    ]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history = []
    for _ in range(6):
        losses = model.loss(inputs, samples)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    totals = [sum(h.values()) for h in history]
    assert totals[-1] < 0.85 * totals[0], totals
    assert history[-1]['loss_box'] < history[0]['loss_box']
    assert history[-1]['loss_id'] < history[0]['loss_id']


def test_loss_scale_by_batch():
    torch.manual_seed(0)
    model = MODELS.build(_cfg('n')).eval()  # eval: BN independent of batch
    frame = _frame([[10, 5, 30, 60]], [1])
    img = torch.randn(1, 1, 3, 64, 96)
    one = model.loss(img, [frame])
    two = model.loss(img.expand(2, -1, -1, -1, -1), [frame, frame])
    for k in one:
        assert torch.allclose(two[k], 2 * one[k], rtol=1e-4), k
    model.loss_scale_by_batch = False
    mean = model.loss(img.expand(2, -1, -1, -1, -1), [frame, frame])
    for k in one:
        assert torch.allclose(mean[k], one[k], rtol=1e-4), k


def test_uncertainty_balance():
    model = MODELS.build(_cfg('n', loss_balance='uncertainty'))
    losses = model.loss(
        torch.randn(1, 1, 3, 64, 96), [_frame([[10, 5, 30, 60]], [1])])
    assert 'loss_uncertainty' in losses
    sum(losses.values()).backward()
    assert model.s_det.grad is not None and model.s_id.grad is not None
    with pytest.raises(ValueError, match='loss_balance'):
        MODELS.build(_cfg('n', loss_balance='bad'))


def test_strides_mismatch_names_key():
    cfg = _cfg('n')
    cfg['bbox_head'] = dict(cfg['bbox_head'], strides=(4, 8, 16))
    with pytest.raises(ValueError, match='bbox_head.strides'):
        MODELS.build(cfg)


def test_predict_tracks_and_rescales(model):
    model.eval()
    model.test_cfg = dict(model.test_cfg, score_thr=0.0, max_per_img=7)
    torch.manual_seed(1)
    img = torch.randn(1, 1, 3, 64, 96)
    ref = model.predict(img, [_frame([], [], frame_id=0)])[0][0]
    scaled = model.predict(
        img, [_frame([], [], frame_id=1, scale=(2.0, 0.5))])[0][0]
    pred = ref.pred_instances
    assert 0 < len(pred) <= 7
    assert pred.embeds.shape == (len(pred), model.embed_channels)
    assert torch.allclose(pred.embeds.norm(dim=1), torch.ones(len(pred)))
    assert (pred.scores[:-1] >= pred.scores[1:]).all()
    factor = torch.tensor([2.0, 0.5, 2.0, 0.5])
    assert torch.allclose(scaled.pred_instances.bboxes * factor, pred.bboxes,
                          atol=1e-4)
    track = scaled.pred_track_instances
    assert torch.equal(track.instances_id, torch.arange(len(pred)))
    assert torch.allclose(track.bboxes, scaled.pred_instances.bboxes)
    seen = model.tracker.frames[-2:]
    assert [f.metainfo['frame_id'] for f in seen] == [0, 1]
    model.test_cfg['score_thr'] = 1.0
    empty = model.predict(img, [_frame([], [], frame_id=3)])[0][0]
    assert len(empty.pred_instances) == 0
    assert empty.pred_instances.embeds.shape == (0, model.embed_channels)
    assert len(empty.pred_track_instances) == 0
    with pytest.raises(ValueError, match='one video'):
        model.predict(torch.randn(2, 1, 3, 64, 96), [_frame([], [])] * 2)


def test_predict_with_jde_tracker():
    # a broken registration must fail here, not skip
    assert 'JDETracker' in MODELS.module_dict, \
        'JDETracker is not registered (import mmtrack_kd.models.trackers)'
    cfg = _cfg('n', tracker=dict(type='JDETracker'))
    cfg['test_cfg'] = dict(score_thr=0.0, max_per_img=5)
    model = MODELS.build(copy.deepcopy(cfg)).eval()
    out = model.predict(torch.randn(1, 1, 3, 64, 96), [_frame([], [])])
    frame = out[0][0]
    assert 'instances_id' in frame.pred_track_instances
    assert len(frame.pred_track_instances.bboxes) == len(
        frame.pred_track_instances.instances_id)
