# Knowledge distillation of mmdet's ByteTrack on SynthMOT (CPU-sized):
# teacher YOLOX-S (width 0.5), student YOLOX-N width (0.25), key-feature
# loss on the detector's neck and prediction-difference loss on its head.
# Train the teacher first:
#   python tools/train.py configs/bytetrack/bytetrack_yolox_s_synthmot.py
# then:
#   python tools/train.py configs/kd/bytetrack_yolox_kd_synthmot.py \
#       --cfg-options model.teacher_ckpt=work_dirs/bytetrack_yolox_s_synthmot/epoch_12.pth
# and extract the student (tools/extract_student.py) to test it with
# configs/bytetrack/bytetrack_yolox_n_synthmot.py.
_base_ = [
    '../bytetrack/bytetrack_yolox_n_synthmot.py',
    '../_base_/distill/bytetrack/key_feature.py',
    '../_base_/distill/bytetrack/prediction_difference.py',
]
teacher_ckpt = 'work_dirs/bytetrack_yolox_s_synthmot/epoch_12.pth'
model = dict(
    _delete_=True,
    type='MOTDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/../bytetrack/bytetrack_yolox_s_synthmot.py',
    teacher_ckpt=teacher_ckpt,
    distill_cfgs=[_base_.kd_key_feature, _base_.kd_pred_diff],
    dry_run_input_shape=(1, 3, 192, 320))
# applies model.distill_stop_iter / distill_stop_epoch when they are set
custom_hooks = _base_.custom_hooks + [dict(type='DistillStopHook')]
