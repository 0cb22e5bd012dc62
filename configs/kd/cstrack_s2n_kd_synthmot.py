# Knowledge distillation on SynthMOT (CPU-sized): teacher CSTrack-S, student
# CSTrack-N, all three losses of this project. Train the teacher first:
#   python tools/train.py configs/cstrack/cstrack_yolov5s_synthmot.py
# then:
#   python tools/train.py configs/kd/cstrack_s2n_kd_synthmot.py \
#       --cfg-options model.teacher_ckpt=work_dirs/cstrack_yolov5s_synthmot/epoch_12.pth
_base_ = [
    '../cstrack/cstrack_yolov5n_synthmot.py',
    '../_base_/distill/id_response.py',
    '../_base_/distill/key_feature.py',
    '../_base_/distill/prediction_difference.py',
]
teacher_ckpt = 'work_dirs/cstrack_yolov5s_synthmot/epoch_12.pth'
model = dict(
    _delete_=True,
    type='MOTDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/../cstrack/cstrack_yolov5s_synthmot.py',
    teacher_ckpt=teacher_ckpt,
    distill_cfgs=[
        _base_.kd_id_response, _base_.kd_key_feature, _base_.kd_pred_diff
    ])
# applies model.distill_stop_iter / distill_stop_epoch when they are set
custom_hooks = _base_.custom_hooks + [dict(type='DistillStopHook')]
