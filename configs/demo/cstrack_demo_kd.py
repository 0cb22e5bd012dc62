# The demo's KD student (tools/demo/run_demo.py, make demo): the demo's
# student taught by the demo's teacher with the prediction-difference loss
# (configs/_base_/distill/prediction_difference.py) at 10 times its fragment
# weight, the loss and weight that did best in the KD benchmark's val search
# (docs/results/kd_search_val.md). The teacher checkpoint is set by the
# demo: --cfg-options model.teacher_ckpt=PATH.
_base_ = [
    './cstrack_demo_student.py',
    '../_base_/distill/prediction_difference.py',
]
kd_pred_diff = _base_.kd_pred_diff
kd_pred_diff['distill_losses']['kd_resp']['loss_weight'] = 10.0
model = dict(
    _delete_=True,
    type='MOTDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/cstrack_demo_teacher.py',
    teacher_ckpt='outputs/demo/teacher/epoch_8.pth',
    distill_cfgs=[kd_pred_diff])
custom_hooks = _base_.custom_hooks + [dict(type='DistillStopHook')]
