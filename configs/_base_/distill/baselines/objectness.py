# Baseline: Hinton logit KD on every prior's objectness (ObjectnessKDLoss)
# on the detection head's raw maps. The decoder's anchors and strides are
# filled from the student's bbox_head when left None.
kd_objectness = dict(
    student_recorders=dict(
        det=dict(type='ModuleOutputsRecorder', source='bbox_head')),
    teacher_recorders=dict(
        det=dict(type='ModuleOutputsRecorder', source='bbox_head')),
    distill_losses=dict(
        kd_obj=dict(
            type='ObjectnessKDLoss',
            decoder=dict(type='yolov5', anchors=None, strides=None),
            temperature=1.0,
            loss_weight=1.0)),
    loss_forward_mappings=dict(
        kd_obj=dict(
            preds_S=dict(from_student=True, recorder='det'),
            preds_T=dict(from_student=False, recorder='det'),
            batch_input_shape=dict(from_data='batch_input_shape'))))
