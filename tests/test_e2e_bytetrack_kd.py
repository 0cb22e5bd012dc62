"""Distillation of mmdet's ByteTrack (a tracker this project did not write):
the SynthMOT configs end to end (teacher, KD student, extraction, scoring),
one distiller loss step in-process, and the MOT17 KD config's structure."""
import os.path as osp

import mmdet
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData
from test_e2e_train_test import (
    ROOT,
    TINY_DATA,
    extract_and_score,
    train_teacher_and_kd,
)

import mmtrack_kd  # noqa: F401  (registers the distiller)
from mmtrack_kd.models.distill.distiller import (
    fill_decoders,
    merge_distill_cfgs,
)
from mmtrack_kd.models.distill.recorders import find_module

register_all_modules(init_default_scope=True)



def yolox_widths(widen):
    """Detector overrides of a YOLOX at width ``widen`` (depth unchanged)."""
    c = [int(x * widen) for x in (256, 512, 1024)]
    return dict(
        backbone=dict(widen_factor=widen),
        neck=dict(in_channels=c, out_channels=c[0]),
        bbox_head=dict(in_channels=c[0], feat_channels=c[0]))


# narrower than the shipped S (0.5) and N (0.25) to keep the test fast
TEACHER_DET = yolox_widths(0.125)
STUDENT_DET = yolox_widths(0.0625)


def test_bytetrack_kd_end_to_end(tiny_synthmot, tmp_path):
    tiny = TINY_DATA.format(data=tiny_synthmot.rstrip('/'))
    student_cfg, kd_ckpt, state, train_logs = train_teacher_and_kd(
        tmp_path, tiny,
        ('configs/bytetrack/bytetrack_yolox_s_synthmot.py',
         f'dict(detector={TEACHER_DET!r})'),
        ('configs/bytetrack/bytetrack_yolox_n_synthmot.py',
         f'dict(detector={STUDENT_DET!r})'),
        ('configs/kd/bytetrack_yolox_kd_synthmot.py',
         'distill_cfgs=[_base_.kd_key_feature, _base_.kd_pred_diff], '
         f'student=dict(detector={STUDENT_DET!r})'))
    # one connector per neck level, student 16 -> teacher 32 channels
    for i in range(3):
        assert state[f'connectors.neck_c{i}.conv.weight'].shape[:2] == (32,
                                                                        16)
    assert all(
        torch.isfinite(torch.tensor(r['loss_kd_feat'])) and
        r['loss_kd_feat'] > 0 for r in train_logs)
    assert all(torch.isfinite(torch.tensor(r['loss_kd_resp'])) and
               r['loss_kd_resp'] > 0 for r in train_logs)

    plain, _ = extract_and_score(kd_ckpt, state, student_cfg, tmp_path)
    assert 'detector.bbox_head.multi_level_conv_obj.0.weight' in plain


def calibrate_bn(model, inputs):
    """Give a random model's BatchNorms the statistics of ``inputs`` (raw
    0-255 pixels), as training would: with the initial ones (mean 0, var 1)
    an eval-mode random YOLOX overflows on raw pixels."""
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch sets the stats
    model.train()
    with torch.no_grad():
        model.detector._forward(inputs)
    for bn in bns:
        bn.momentum = 0.03
    model.eval()


def tiny_kd_model(tmp_path):
    """The SynthMOT KD model config with tiny widths and a random teacher
    checkpoint saved to ``tmp_path``."""
    torch.manual_seed(0)
    cfg = Config.fromfile(f'{ROOT}/configs/kd/bytetrack_yolox_kd_synthmot.py')
    cfg.merge_from_dict(dict(model=dict(student=dict(detector=STUDENT_DET))))
    t_cfg = Config.fromfile(
        f'{ROOT}/configs/bytetrack/bytetrack_yolox_s_synthmot.py')
    t_cfg.merge_from_dict(dict(model=dict(detector=TEACHER_DET)))
    teacher = MODELS.build(t_cfg.model)
    calibrate_bn(teacher, det_batch()[0])
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    model = cfg.model
    model.teacher = t_cfg.model
    model.teacher_ckpt = str(ckpt)
    model.dry_run_input_shape = (1, 3, 64, 96)
    return model


def det_batch(n=2, h=64, w=96):
    """A detection-style batch as PackDetInputs and the data preprocessor
    give it: (N, 3, H, W) raw pixels and plain DetDataSamples."""
    torch.manual_seed(0)
    inputs = torch.rand(n, 3, h, w) * 255
    samples = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(
            img_shape=(h, w), batch_input_shape=(h, w), pad_shape=(h, w),
            scale_factor=(1.0, 1.0)))
        k = i + 1  # 1 and 2 people
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 8., 30., 56.],
                                 [50., 4., 70., 60.]])[:k],
            labels=torch.zeros(k, dtype=torch.long))
        samples.append(s)
    return inputs, samples


def test_key_feature_loss_step_on_det_samples(tmp_path):
    model = tiny_kd_model(tmp_path)
    model.distill_cfgs = model.distill_cfgs[:1]  # kd_key_feature
    distiller = MODELS.build(model)
    assert [c.conv.in_channels for c in distiller.connectors.values()] == \
        [16, 16, 16]
    assert [c.conv.out_channels for c in distiller.connectors.values()] == \
        [32, 32, 32]
    distiller.train()
    inputs, samples = det_batch()
    losses = distiller.loss(inputs, samples)
    for key in ('loss_cls', 'loss_bbox', 'loss_obj', 'loss_kd_feat'):
        assert key in losses and torch.isfinite(losses[key]).all()
    losses['loss_kd_feat'].backward()
    for conn in distiller.connectors.values():
        assert conn.conv.weight.grad is not None
        assert conn.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_prediction_difference_records_teacher_head(tmp_path):
    model = tiny_kd_model(tmp_path)
    distiller = MODELS.build(model)
    strides = distiller.distill_losses['kd_resp'].decoder.strides
    assert list(strides) == [8, 16, 32]  # filled from detector.bbox_head
    distiller.train()
    inputs, samples = det_batch()
    losses = distiller.loss(inputs, samples)
    assert torch.isfinite(losses['loss_kd_resp'])
    assert losses['loss_kd_resp'].requires_grad


def test_mot17_kd_config_structure():
    """The MOT17 KD config loads, its student is YOLOX-S next to mmdet's
    YOLOX-X teacher, and every recorder path of its fragments exists in the
    built student."""
    cfg = Config.fromfile(f'{ROOT}/configs/kd/bytetrack_yolox_x2s_kd_mot17.py')
    mmdet_cfg = Config.fromfile(
        osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'bytetrack',
                 'bytetrack_yolox_x_8xb4-80e_crowdhuman-'
                 'mot17halftrain_test-mot17halfval.py'))
    model = cfg.model
    assert model.type == 'MOTDistiller' and model.teacher_ckpt
    t_det, s_det = model.teacher.detector, model.student.detector
    assert t_det.backbone.widen_factor == \
        mmdet_cfg.model.detector.backbone.widen_factor == 1.25
    assert t_det.neck.out_channels == 320
    assert (s_det.backbone.deepen_factor, s_det.backbone.widen_factor) == \
        (0.33, 0.5)
    assert s_det.neck.in_channels == [128, 256, 512]
    assert s_det.neck.out_channels == s_det.bbox_head.in_channels == \
        s_det.bbox_head.feat_channels == 128
    assert 'yolox_s' in s_det.init_cfg.checkpoint
    assert 'yolox_x' in t_det.init_cfg.checkpoint  # the teacher is untouched
    plain = Config.fromfile(
        f'{ROOT}/configs/bytetrack/bytetrack_yolox_s_8xb4-80e_crowdhuman-'
        'mot17halftrain_test-mot17halfval.py')
    assert plain.model.to_dict() == Config(
        dict(model=model.student)).model.to_dict(), \
        'the KD student and the plain YOLOX-S ByteTrack config differ'
    # mmdet's data, schedule and evaluator
    assert cfg.train_cfg.max_epochs == 80
    assert cfg.val_evaluator.type == 'MOTChallengeMetric'

    student = MODELS.build(model.student)
    merged = merge_distill_cfgs(model.distill_cfgs, {})
    for side in ('student_recorders', 'teacher_recorders'):
        assert merged[side]
        for rec in merged[side].values():
            find_module(student, rec['source'])  # raises when missing
    losses = fill_decoders(merged['distill_losses'], student)
    assert list(losses['kd_resp']['decoder']['strides']) == [8, 16, 32]
    neck_out = student.detector.neck(
        student.detector.backbone(torch.zeros(1, 3, 64, 64)))
    assert [f.shape[1] for f in neck_out] == [128, 128, 128]


def test_mot17_kd_distiller_builds_with_a_teacher_checkpoint(tmp_path):
    """The whole MOT17 distiller builds (YOLOX-X teacher loaded strictly from
    a random checkpoint, dry run at the config's small input) and infers
    its connectors 128 -> 320."""
    cfg = Config.fromfile(f'{ROOT}/configs/kd/bytetrack_yolox_x2s_kd_mot17.py')
    torch.manual_seed(0)
    teacher = MODELS.build(cfg.model.teacher)
    ckpt = tmp_path / 'bytetrack_yolox_x.pth'
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    del teacher
    cfg.model.teacher_ckpt = str(ckpt)
    distiller = MODELS.build(cfg.model)
    ckpt.unlink()  # about 400 MB
    assert [(c.conv.in_channels, c.conv.out_channels)
            for c in distiller.connectors.values()] == [(128, 320)] * 3
    assert list(distiller.distill_losses['kd_resp'].decoder.strides) == \
        [8, 16, 32]
    n_teacher = sum(p.numel() for p in distiller.teacher.parameters())
    n_student = sum(p.numel() for p in distiller.student.parameters())
    assert n_teacher > 90e6 and n_student < 10e6
    assert not any(p.requires_grad for p in distiller.teacher.parameters())
    assert all(k.startswith(('student.', 'connectors.'))
               for k in distiller.state_dict())
