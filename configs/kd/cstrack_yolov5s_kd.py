# The main line: distil CSTrack-L (teacher) into CSTrack-S (student) on
# MOT17 half-train with all three losses of this project, CSTrack's recipe.
#   python tools/train.py configs/cstrack/cstrack_yolov5l_mot17.py
#   python tools/train.py configs/kd/cstrack_yolov5s_kd.py \
#       --cfg-options model.teacher_ckpt=work_dirs/cstrack_yolov5l_mot17/epoch_30.pth
#   python tools/extract_student.py work_dirs/cstrack_yolov5s_kd/epoch_30.pth s_kd.pth
#   python tools/test.py configs/cstrack/cstrack_yolov5s_mot17.py s_kd.pth
_base_ = [
    '../cstrack/cstrack_yolov5s_mot17.py',
    '../_base_/distill/id_response.py',
    '../_base_/distill/key_feature.py',
    '../_base_/distill/prediction_difference.py',
    '../_base_/distill/balance.py',
]
model = dict(
    _delete_=True,
    type='MOTDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/../cstrack/cstrack_yolov5l_mot17.py',
    teacher_ckpt='work_dirs/cstrack_yolov5l_mot17/epoch_30.pth',
    distill_cfgs=[
        _base_.kd_id_response, _base_.kd_key_feature, _base_.kd_pred_diff
    ],
    # each loss at a set ratio of the task's gradient on the neck, whatever
    # the batch size (the SynthMOT val choice; unverified on MOT17)
    loss_balance=_base_.kd_balance)
# applies model.distill_stop_iter / distill_stop_epoch when they are set
custom_hooks = _base_.custom_hooks + [dict(type='DistillStopHook')]
