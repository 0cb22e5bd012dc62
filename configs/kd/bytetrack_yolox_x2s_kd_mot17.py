# Knowledge distillation of mmdet's ByteTrack on MOT17 (half-train, with
# CrowdHuman), GPU recipe: teacher ByteTrack YOLOX-X exactly as mmdet ships
# it (mmdet::bytetrack/bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_
# test-mot17halfval.py), student the same tracker with a YOLOX-S detector
# (depth 0.33, width 0.5, COCO-pretrained YOLOX-S weights); key-feature loss
# on the detector's neck, prediction-difference loss on its head. Data,
# schedule, hooks and evaluator are mmdet's for that config.
#
# Set teacher_ckpt to a trained ByteTrack YOLOX-X checkpoint, e.g. mmdet's
# released one (download it first):
#   https://download.openmmlab.com/mmtracking/mot/bytetrack/bytetrack_yolox_x/bytetrack_yolox_x_crowdhuman_mot17-private-half_20211218_205500-1985c9f0.pth
#   python tools/train.py configs/kd/bytetrack_yolox_x2s_kd_mot17.py \
#       --cfg-options model.teacher_ckpt=checkpoints/bytetrack_yolox_x.pth
# then extract the student (tools/extract_student.py) and test it with
# configs/bytetrack/bytetrack_yolox_s_8xb4-80e_crowdhuman-mot17halftrain_
# test-mot17halfval.py (the same student model, also the no-KD baseline).
_base_ = [
    'mmdet::bytetrack/'
    'bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py',
    '../_base_/distill/bytetrack/key_feature.py',
    '../_base_/distill/bytetrack/prediction_difference.py',
]
custom_imports = dict(imports=['mmtrack_kd'], allow_failed_imports=False)

teacher_ckpt = 'checkpoints/bytetrack_yolox_x_crowdhuman_mot17-private-half.pth'
deepen_factor = 0.33
widen_factor = 0.5
student_channels = [int(c * widen_factor) for c in (256, 512, 1024)]
# mmdet's model is the teacher; the student copies it with YOLOX-S sizes
# (dict(base, key=...) copies, so the teacher is left as it is)
_detector = _base_.model.detector
student_model = dict(
    _base_.model,
    detector=dict(
        _detector,
        backbone=dict(
            _detector.backbone,
            deepen_factor=deepen_factor,
            widen_factor=widen_factor),
        neck=dict(
            _detector.neck,
            in_channels=student_channels,
            out_channels=int(256 * widen_factor),
            num_csp_blocks=max(round(3 * deepen_factor), 1)),
        bbox_head=dict(
            _detector.bbox_head,
            in_channels=int(256 * widen_factor),
            feat_channels=int(256 * widen_factor)),
        init_cfg=dict(
            type='Pretrained',
            checkpoint=  # noqa: E251
            'https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_s_8x8_300e_coco/yolox_s_8x8_300e_coco_20211121_095711-4592a793.pth'  # noqa: E501
        )))
del _detector

model = dict(
    _delete_=True,
    type='MOTDistiller',
    student=student_model,
    teacher=_base_.model,
    teacher_ckpt=teacher_ckpt,
    distill_cfgs=[_base_.kd_key_feature, _base_.kd_pred_diff],
    dry_run_input_shape=(1, 3, 128, 224))

# mmdet's hooks (MOTDistiller.detector is the student's detector, so
# YOLOXModeSwitchHook switches the student), plus the non-finite loss stop
# and DistillStopHook (applies model.distill_stop_iter/epoch when set).
custom_hooks = [
    dict(type='YOLOXModeSwitchHook', num_last_epochs=10, priority=48),
    dict(type='SyncNormHook', priority=48),
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        priority=49),
    dict(type='NonFiniteLossHook'),
    dict(type='DistillStopHook'),
]
