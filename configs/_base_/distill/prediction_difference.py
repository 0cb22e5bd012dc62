# Response distillation weighted by the teacher-student prediction
# difference (PredictionDifferenceLoss) on the detection head's raw maps,
# with the identity difference read from the ID maps. The decoder's anchors
# and strides are filled from the student's bbox_head when left None.
# ``gt_iou_thr=0.5`` drops the teacher's mistakes against the ground truth
# (its false positives and misses) from the distilled samples.
kd_pred_diff = dict(
    student_recorders=dict(
        det=dict(type='ModuleOutputsRecorder', source='bbox_head'),
        id_map=dict(type='ModuleOutputsRecorder', source='id_head')),
    teacher_recorders=dict(
        det=dict(type='ModuleOutputsRecorder', source='bbox_head'),
        id_map=dict(type='ModuleOutputsRecorder', source='id_head')),
    distill_losses=dict(
        kd_resp=dict(
            type='PredictionDifferenceLoss',
            decoder=dict(type='yolov5', anchors=None, strides=None),
            topk=100,
            beta=1.0,
            obj_thr=0.1,
            loss_weight=1.0)),
    loss_forward_mappings=dict(
        kd_resp=dict(
            preds_S=dict(from_student=True, recorder='det'),
            preds_T=dict(from_student=False, recorder='det'),
            batch_input_shape=dict(from_data='batch_input_shape'),
            gt_bboxes=dict(from_data='gt_bboxes'),
            emb_S=dict(from_student=True, recorder='id_map'),
            emb_T=dict(from_student=False, recorder='id_map'))))
