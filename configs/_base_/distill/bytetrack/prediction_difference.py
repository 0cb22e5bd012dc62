# Prediction-difference response distillation (PredictionDifferenceLoss) for
# mmdet's ByteTrack: the raw YOLOXHead outputs (cls_scores, bbox_preds,
# objectnesses), decoded by the yolox decoder whose strides are filled from
# the student's detector.bbox_head. ByteTrack has no ID head, so the
# difference score has no identity term (no emb_S/emb_T).
kd_pred_diff = dict(
    student_recorders=dict(
        det=dict(type='ModuleOutputsRecorder', source='detector.bbox_head')),
    teacher_recorders=dict(
        det=dict(type='ModuleOutputsRecorder', source='detector.bbox_head')),
    distill_losses=dict(
        kd_resp=dict(
            type='PredictionDifferenceLoss',
            decoder=dict(type='yolox', strides=None),
            topk=100,
            beta=1.0,
            obj_thr=0.1,
            loss_weight=1.0)),
    loss_forward_mappings=dict(
        kd_resp=dict(
            preds_S=dict(from_student=True, recorder='det'),
            preds_T=dict(from_student=False, recorder='det'),
            batch_input_shape=dict(from_data='batch_input_shape'))))
