# Knowledge distillation on SynthMOT (CPU-sized): teacher FairMOT DLA-34,
# student FairMOT ResNet-18 (half width). ID-feature distillation on the
# embedding maps and key-feature distillation on the one stride-4 neck map
# (64 channels on both sides; a 1x1 conv + BN connector all the same), and
# prediction-difference response distillation on the detection branches
# decoded by the 'centernet' response decoder (every stride-4 cell a prior,
# objectness = the heatmap logit).
# Train the teacher first:
#   python tools/train.py configs/fairmot/fairmot_dla34_synthmot.py
# then:
#   python tools/train.py configs/kd/fairmot_dla34_to_r18_kd_synthmot.py \
#       --cfg-options \
#       model.teacher_ckpt=work_dirs/fairmot_dla34_synthmot/epoch_12.pth
_base_ = [
    '../fairmot/fairmot_r18_synthmot.py',
    '../_base_/distill/id_response.py',
    '../_base_/distill/key_feature.py',
    '../_base_/distill/prediction_difference.py',
]
teacher_ckpt = 'work_dirs/fairmot_dla34_synthmot/epoch_12.pth'
# the key-feature fragment with the single-map neck of FairMOT: element 0
# of the neck's 1-tuple output, one connector
kd_key_feature_fairmot = dict(
    student_recorders=_base_.kd_key_feature.student_recorders,
    teacher_recorders=_base_.kd_key_feature.teacher_recorders,
    connectors=dict(neck_c0=_base_.kd_key_feature.connectors.neck_c0),
    distill_losses=_base_.kd_key_feature.distill_losses,
    loss_forward_mappings=dict(
        kd_feat=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                data_idx=0,
                connector='neck_c0'),
            preds_T=dict(from_student=False, recorder='neck', data_idx=0),
            gt_bboxes=dict(from_data='gt_bboxes'),
            batch_input_shape=dict(from_data='batch_input_shape'))))
# the response fragment with the CenterNet decoder (stride and box layout
# read from the student's bbox_head). Box terms at the teacher's heatmap
# peaks only: CenterNet trains size and offset at box centres, so the box
# decoded at any other cell is untrained output (the response loss alone,
# 12 epochs, ratio 0.5, seed 0: val IDF1 25.5 with it, 23.8 without,
# student 24.8; docs/benchmark.md)
kd_pred_diff_fairmot = dict(
    student_recorders=_base_.kd_pred_diff.student_recorders,
    teacher_recorders=_base_.kd_pred_diff.teacher_recorders,
    distill_losses=dict(
        kd_resp=dict(
            type='PredictionDifferenceLoss',
            decoder=dict(type='centernet', strides=None, ltrb=None),
            topk=100,
            beta=1.0,
            obj_thr=0.1,
            boxes_where='teacher_peaks',
            loss_weight=1.0)),
    loss_forward_mappings=_base_.kd_pred_diff.loss_forward_mappings)
model = dict(
    _delete_=True,
    type='MOTDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/../fairmot/fairmot_dla34_synthmot.py',
    teacher_ckpt=teacher_ckpt,
    distill_cfgs=[
        _base_.kd_id_response, kd_key_feature_fairmot, kd_pred_diff_fairmot
    ])
# applies model.distill_stop_iter / distill_stop_epoch when they are set
custom_hooks = _base_.custom_hooks + [dict(type='DistillStopHook')]
