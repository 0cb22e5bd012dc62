"""Tests of FairMOT: DLA-34 and its up-sampling neck, the CenterNet heads and
their targets, heatmap decoding, the model's loss and frame-by-frame
tracking on SynthMOT, and the FairMOT configs."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmtrack_kd  # noqa: F401  (registers everything)
from mmtrack_kd.models.dense_heads.fairmot_head import centre_cells
from mmtrack_kd.models.mot import FairMOT
from mmtrack_kd.models.task_modules.centernet_decode import (
    decode_centernet,
    gather_cells,
    heatmap_nms,
    topk_peaks,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_DLA = (8, 8, 16, 16, 32, 32)


def _cfg(backbone='dla', **overrides):
    if backbone == 'dla':
        body = dict(
            backbone=dict(type='DLA', channels=TINY_DLA),
            neck=dict(type='DLAUpNeck', use_dcn=False))
    else:
        body = dict(
            backbone=dict(type='ResNet', depth=18, base_channels=8,
                          out_indices=(3, ), norm_eval=False),
            neck=dict(type='CTResNetNeck', in_channels=64,
                      num_deconv_filters=(16, 16, 16),
                      num_deconv_kernels=(4, 4, 4), use_dcn=False))
    cfg = dict(
        type='FairMOT',
        bbox_head=dict(type='FairMOTDetHead', head_conv=16),
        id_head=dict(type='FairMOTIDHead', num_ids=6, embed_channels=8,
                     head_conv=16),
        tracker=dict(type='JDETracker', obj_score_thr=0.4,
                     init_track_thr=0.4, tentative_match_thr=0.3),
        data_preprocessor=dict(type='TrackDataPreprocessor'),
        **body)
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MODELS.build(_cfg())


def _frame(boxes, ids, shape=(64, 96), frame_id=0):
    det = DetDataSample()
    det.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float).view(-1, 4),
        labels=torch.zeros(len(ids), dtype=torch.long),
        instances_ids=torch.tensor(ids, dtype=torch.long))
    det.set_metainfo(dict(frame_id=frame_id, img_shape=shape,
                          batch_input_shape=shape, scale_factor=(1.0, 1.0)))
    track = TrackDataSample()
    track.video_data_samples = [det]
    return track


# ---------------------------------------------------------------- backbone
def test_dla34_levels_and_strides():
    dla = MODELS.build(dict(type='DLA'))
    assert dla.out_channels == [16, 32, 64, 128, 256, 512]
    assert dla.strides == [1, 2, 4, 8, 16, 32]
    # DLA-34 without its classifier: about 15.3M parameters
    n = sum(p.numel() for p in dla.parameters())
    assert 15.0e6 < n < 15.6e6
    small = MODELS.build(dict(type='DLA', channels=TINY_DLA,
                              out_indices=(2, 5)))
    with torch.no_grad():
        outs = small(torch.zeros(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 24),
                                              (1, 32, 2, 3)]
    assert small.strides == [4, 32] and small.out_channels == [16, 32]


def test_dla_bad_config_names_key():
    with pytest.raises(ValueError, match='backbone.levels'):
        MODELS.build(dict(type='DLA', levels=(1, 1, 1)))
    with pytest.raises(ValueError, match='neck.in_channels'):
        MODELS.build(dict(type='DLAUpNeck'))


@pytest.mark.parametrize('use_dcn', [False, True])
def test_dla_up_neck_gives_one_stride4_map(use_dcn):
    dla = MODELS.build(dict(type='DLA', channels=TINY_DLA))
    neck = MODELS.build(dict(type='DLAUpNeck', in_channels=TINY_DLA,
                             use_dcn=use_dcn))
    assert neck.out_channels == 16 and neck.strides == [4]
    x = torch.randn(1, 3, 64, 96)
    out = neck(dla(x))
    assert len(out) == 1 and out[0].shape == (1, 16, 16, 24)
    out[0].mean().backward()  # DCNv2 runs forward and backward on CPU
    grads = [p.grad for p in neck.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)


# ------------------------------------------------------------------ decode
def test_decode_hand_made_heatmap():
    logit = torch.full((1, 1, 8, 10), -10.0)
    logit[0, 0, 2, 3] = 3.0  # peak A at (x=3, y=2)
    logit[0, 0, 2, 4] = 2.0  # neighbour of A: suppressed by the max-pool
    logit[0, 0, 6, 8] = 1.0  # peak B at (x=8, y=6)
    heat = heatmap_nms(logit.sigmoid())
    assert heat[0, 0, 2, 4] == 0 and heat[0, 0, 2, 3] > 0
    scores, inds, labels, xy = topk_peaks(heat, 2)
    assert inds.tolist() == [[2 * 10 + 3, 6 * 10 + 8]]
    assert xy[0].tolist() == [[3.0, 2.0], [8.0, 6.0]]
    assert labels.tolist() == [[0, 0]]

    wh = torch.zeros(1, 4, 8, 10)
    wh[0, :, 2, 3] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # l, t, r, b
    offset = torch.zeros(1, 2, 8, 10)
    offset[0, :, 2, 3] = torch.tensor([0.5, 0.25])
    bboxes, scores, labels, inds = decode_centernet(
        logit, wh, offset, stride=4, k=2)
    # centre (3.5, 2.25) cells -> (14, 9) px; sides 4, 8, 12, 16 px away
    assert torch.allclose(bboxes[0, 0], torch.tensor([10., 1., 26., 25.]))
    assert torch.allclose(scores[0], torch.tensor([3.0, 1.0]).sigmoid())
    # width/height layout
    bboxes, *_ = decode_centernet(logit, wh[:, :2], offset, 4, 1,
                                  ltrb=False)
    assert torch.allclose(bboxes[0, 0], torch.tensor([12., 5., 16., 13.]))
    emb = torch.arange(2 * 80, dtype=torch.float).view(1, 2, 8, 10)
    assert gather_cells(emb, inds)[0, 0].tolist() == [23.0, 103.0]


def test_targets_peak_at_centre_cell():
    head = MODELS.build(dict(type='FairMOTDetHead', in_channels=8,
                             head_conv=0))
    boxes = torch.tensor([[8., 8., 40., 56.]])  # centre (24, 32) px
    t = head.get_targets([boxes], [torch.zeros(1, dtype=torch.long)],
                         (16, 24), 4.0)
    assert t['heatmap'][0, 0, 8, 6] == 1 and t['heatmap'].max() == 1
    assert t['index'].tolist() == [8 * 24 + 6]
    assert torch.allclose(t['wh'], torch.tensor([[4., 6., 4., 6.]]))
    assert torch.allclose(t['offset'], torch.zeros(1, 2))
    cells = centre_cells(torch.tensor([[-40., -40., -8., -8.]]), (16, 24), 4)
    assert not cells['valid'].any()  # fully outside the map


# ------------------------------------------------------------------- model
def test_build_attributes(model):
    assert isinstance(model, FairMOT)
    assert model.strides == [4] and model.out_channels == 16
    assert model.embed_channels == 8
    out = model._forward(torch.zeros(2, 1, 3, 64, 96))
    assert out['heatmap'].shape == (2, 1, 16, 24)
    assert out['wh'].shape == (2, 4, 16, 24)
    assert out['offset'].shape == (2, 2, 16, 24)
    assert out['id_map'].shape == (2, 8, 16, 24)


def test_loss_finite_and_backward(model):
    model.train()
    model.zero_grad()
    samples = [
        _frame([[10, 10, 30, 50], [50, 5, 70, 60]], [1, 3]),
        _frame([], [])  # a frame without people trains too
    ]
    x = torch.randn(2, 1, 3, 64, 96)
    losses = model.loss(x, samples)
    assert set(losses) == {'loss_heatmap', 'loss_wh', 'loss_offset',
                           'loss_id', 'loss_uncertainty'}
    assert all(torch.isfinite(v) for v in losses.values())
    # uncertainty balancing: 0.5 * (exp(-s_det) L_det + exp(-s_id) L_id
    # + s_det + s_id), s_det = -1.85 and s_id = -1.05 at the start
    with torch.no_grad():
        outs = model._forward(x)
        gts = [s[0].gt_instances for s in samples]
        raw_id = model.id_head.loss(outs['id_map'], [g.bboxes for g in gts],
                                    [g.instances_ids for g in gts],
                                    (64, 96))['loss_id']
        raw_det = model.bbox_head.loss(
            (outs['heatmap'], outs['wh'], outs['offset']),
            [g.bboxes for g in gts], [g.labels for g in gts], (64, 96))
    assert torch.allclose(losses['loss_id'],
                          0.5 * torch.exp(torch.tensor(1.05)) * raw_id)
    assert torch.allclose(
        losses['loss_wh'], 0.5 * torch.exp(torch.tensor(1.85)) *
        raw_det['loss_wh'])
    assert torch.allclose(losses['loss_uncertainty'],
                          torch.tensor(0.5 * (-1.85 - 1.05)))
    sum(losses.values()).backward()
    assert model.s_det.grad is not None and model.s_id.grad is not None
    assert model.id_head.classifier.weight.grad.abs().sum() > 0
    assert model.bbox_head.wh_head[0].weight.grad.abs().sum() > 0


def test_loss_without_people_and_fixed_balance():
    torch.manual_seed(0)
    m = MODELS.build(_cfg('r18', loss_balance='fixed'))
    losses = m.loss(torch.randn(1, 1, 3, 64, 96), [_frame([], [])])
    assert set(losses) == {'loss_heatmap', 'loss_wh', 'loss_offset',
                           'loss_id'}
    assert float(losses['loss_wh']) == 0 and float(losses['loss_id']) == 0
    sum(losses.values()).backward()
    with pytest.raises(ValueError, match='id_head.num_ids'):
        m.loss(torch.randn(1, 1, 3, 64, 96), [_frame([[1, 1, 20, 30]], [6])])
    with pytest.raises(ValueError, match='loss_balance'):
        MODELS.build(_cfg(loss_balance='none'))


def test_predict_tracks_tiny_synthmot(tiny_synthmot):
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/fairmot/fairmot_r18_synthmot.py'))
    loader_cfg = cfg.test_dataloader
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    loader_cfg.dataset.data_root = tiny_synthmot.rstrip('/') + '/'
    loader = Runner.build_dataloader(loader_cfg)
    torch.manual_seed(0)
    model = MODELS.build(_cfg(
        'r18', data_preprocessor=cfg.model.data_preprocessor,
        test_cfg=dict(score_thr=0.05, max_per_img=40)))
    model.eval()
    frames = []
    with torch.no_grad():
        for data in loader:
            frames.append(model.test_step(data)[0][0])
    assert len(frames) == 10
    assert frames[0].metainfo['frame_id'] == 0
    ori_h, ori_w = frames[0].metainfo['ori_shape']
    for f in frames:
        pred = f.pred_instances
        assert pred.embeds.shape[1] == 8
        assert torch.allclose(pred.embeds.norm(dim=1),
                              torch.ones(len(pred)), atol=1e-4)
        assert (pred.scores > 0.05).all()
        trk = f.pred_track_instances
        assert len(trk.bboxes) == len(trk.instances_id)
    # random weights on the first frame: every detection at or above the
    # tracker's 0.4 threshold starts a confirmed track
    n0 = int((frames[0].pred_instances.scores >= 0.4).sum())
    assert len(frames[0].pred_track_instances) == n0
    assert sum(len(f.pred_instances) for f in frames) > 0


# ------------------------------------------------------------------ configs
@pytest.mark.parametrize('name', ['fairmot_dla34_synthmot',
                                  'fairmot_r18_synthmot',
                                  'fairmot_r18_mot17'])
def test_configs_build(name):
    cfg = Config.fromfile(osp.join(ROOT, f'configs/fairmot/{name}.py'))
    cfg.model.id_head.num_ids = 5
    m = MODELS.build(cfg.model)
    assert m.strides == [4] and m.out_channels == 64
    assert m.tracker.obj_score_thr == 0.4


def _kd_distiller(tmp_path, config):
    """The distiller of a FairMOT KD config, teacher and student tiny."""
    from mmtrack_kd.utils import resolve_num_ids
    kd = Config.fromfile(osp.join(ROOT, 'configs/kd', config))
    teacher_cfg = _cfg('dla')
    teacher_cfg['tracker'] = None
    torch.manual_seed(0)
    teacher = MODELS.build(teacher_cfg)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
    kd.model.teacher = teacher_cfg
    kd.model.teacher_ckpt = str(ckpt)
    kd.model.student = _cfg('r18')
    resolve_num_ids(kd)
    kd.model.dry_run_input_shape = (1, 3, 64, 96)
    return MODELS.build(kd.model)


def _kd_batch():
    return (torch.randn(2, 1, 3, 64, 96),
            [_frame([[10, 10, 30, 50], [50, 5, 70, 60]], [1, 3]),
             _frame([[20, 8, 44, 60]], [2])])


def test_kd_config_builds(tmp_path):
    """Teacher DLA, student ResNet-18 (both tiny here): the ID,
    key-feature and response losses run on a training batch."""
    distiller = _kd_distiller(tmp_path, 'fairmot_dla34_to_r18_kd_synthmot.py')
    losses = distiller.loss(*_kd_batch())
    assert {'loss_kd_id', 'loss_kd_feat', 'loss_kd_resp',
            'loss_id'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # the box terms of the response loss at the teacher's heatmap peaks
    resp = distiller.distill_losses['kd_resp']
    assert resp.boxes_where == 'teacher_peaks'
    assert type(resp.decoder).__name__ == 'CenterNetResponseDecoder'


def test_feat_resp_kd_config(tmp_path):
    """The benchmarked FairMOT recipe: key-feature + response only (no ID
    loss), balanced at FairMOT's val-picked ratios; one training step
    measures the balance and gives finite, back-propagating losses."""
    distiller = _kd_distiller(tmp_path,
                              'fairmot_dla34_to_r18_feat_resp_kd_synthmot.py')
    assert set(distiller.distill_losses) == {'kd_feat', 'kd_resp'}
    assert distiller.loss_balance.ratios == dict(kd_feat=0.25, kd_resp=0.5)
    assert distiller.loss_balance.shared_params(distiller.student)
    assert distiller.distill_losses['kd_resp'].boxes_where == 'teacher_peaks'
    distiller.train()
    assert not distiller.loss_balance.measured.any()
    losses = distiller.loss(*_kd_batch())
    # the first step measures the response loss; the key-feature loss
    # reaches the neck only once its connector's warm-up (detach_iters)
    # is over, so it is not measured yet
    bal = distiller.loss_balance
    assert bal.measured.tolist() == [n == 'kd_resp' for n in bal.loss_names]
    assert {'loss_kd_feat', 'loss_kd_resp', 'loss_id'} <= set(losses)
    assert not any(k.startswith('loss_kd_id') for k in losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
