"""Every shipped config loads; the tracker configs build; the main-line
MOT17 KD config builds around a teacher checkpoint."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmtrack_kd  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p)


@pytest.mark.parametrize('path', CONFIGS,
                         ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_loads(path):
    cfg = Config.fromfile(path)
    assert 'model' in cfg and 'type' in cfg.model
    assert cfg.get('custom_imports', {}).get('imports') is not None or \
        cfg.get('default_scope') == 'mmdet'


@pytest.mark.parametrize('size,channels', [('n', 64), ('s', 128)])
def test_cstrack_synthmot_builds(size, channels):
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(ROOT, f'configs/cstrack/cstrack_yolov5{size}_synthmot.py'))
    cfg.model.id_head.num_ids = 5
    model = MODELS.build(cfg.model)
    assert model.neck_channels == [channels] * 3
    assert model.strides == [8, 16, 32]


def test_mot17_kd_config_builds(tmp_path):
    """The teacher CSTrack-L checkpoint must load strictly into the teacher
    the KD config describes; the student is CSTrack-S."""
    init_default_scope('mmdet')
    kd = Config.fromfile(osp.join(ROOT, 'configs/kd/cstrack_yolov5s_kd.py'))
    tcfg = Config.fromfile(kd.model.teacher)
    tcfg.model.id_head.num_ids = 7
    teacher = MODELS.build(tcfg.model)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
    del teacher
    kd.model.teacher_ckpt = str(ckpt)
    from mmtrack_kd.utils import resolve_num_ids
    kd.model.student.id_head.num_ids = 7
    resolve_num_ids(kd)  # teacher num_ids from the checkpoint
    assert kd.model.teacher.id_head.num_ids == 7
    kd.model.dry_run_input_shape = (1, 3, 64, 96)
    distiller = MODELS.build(kd.model)
    assert distiller.student.neck_channels == [128] * 3
    assert distiller.teacher.neck_channels == [256] * 3
    assert not any(k.startswith('teacher') for k in distiller.state_dict())
    # the shipped balance of the three losses
    assert distiller.loss_balance.ratios == dict(kd_id=2.0, kd_feat=2.0,
                                                 kd_resp=20.0)
    assert distiller.loss_balance.shared_params(distiller.student)


@pytest.mark.parametrize('ratio', [0.5, 1.0, 1.2])
def test_mot17_train_pipeline_keeps_the_input_size(ratio):
    """The MOT17 training pipeline's resize and crop give at most 1088x608
    (w x h), exactly that when the resized frame covers it (mmdet's
    RandomCrop takes (w, h): a crop of (h, w) trained on 608x608)."""
    import numpy as np
    from mmdet.registry import TRANSFORMS
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/datasets/mot17_halftrain.py'))
    inner = cfg.train_pipeline[1]['transforms']
    resize, crop = [dict(t) for t in inner
                    if t['type'] in ('RandomResize', 'RandomCrop')]
    resize['ratio_range'] = (ratio, ratio)
    steps = [TRANSFORMS.build(resize), TRANSFORMS.build(crop)]
    h, w = 1080, 1920  # a MOT17 frame
    results = dict(img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w),
                   ori_shape=(h, w))
    for step in steps:
        results = step(results)
    out_h, out_w = results['img'].shape[:2]
    assert out_h <= 608 and out_w <= 1088
    if ratio == 1.0:  # 1920x1080 fits 1081x608
        assert (out_h, out_w) == (608, 1081)
    if ratio > 1.0:
        assert (out_h, out_w) == (608, 1088)


def test_backbone_key_feature_fragment_builds(tmp_path):
    """kd_key_feature_backbone with kd_balance_backbone_feat: three
    connectors sized from the backbones' stages, the feature loss balanced
    on the backbone."""
    init_default_scope('mmdet')
    kd = Config.fromfile(osp.join(ROOT,
                                  'configs/kd/cstrack_s2n_kd_synthmot.py'))
    frags = Config.fromfile(osp.join(
        ROOT, 'configs/_base_/distill/key_feature.py'))
    bal = Config.fromfile(osp.join(ROOT, 'configs/_base_/distill/balance.py'))
    kd.model.distill_cfgs[1] = frags.kd_key_feature_backbone
    kd.model.loss_balance = bal.kd_balance_backbone_feat
    tcfg = Config.fromfile(kd.model.teacher)
    tcfg.model.id_head.num_ids = 7
    kd.model.student.id_head.num_ids = 7
    teacher = MODELS.build(tcfg.model)
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
    kd.model.teacher_ckpt = str(ckpt)
    kd.model.teacher = tcfg.model
    kd.model.dry_run_input_shape = (1, 3, 64, 96)
    distiller = MODELS.build(kd.model)
    stages_T = [c.out_channels for c in (
        distiller.connectors[f'backbone_c{i}'] for i in range(3))]
    assert stages_T == [c * 2 for c in (
        distiller.connectors[f'backbone_c{i}'].in_channels
        for i in range(3))]  # the S teacher is twice the N student's width
    assert distiller.loss_balance.loss_shared == dict(kd_feat=['backbone'])
