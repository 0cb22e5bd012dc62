# ID-feature distillation by environmental response consistency
# (IDResponseConsistencyLoss): the student's ID map reproduces, for every
# target, the teacher's response of that target's embedding to the whole
# frame and to the other targets. Needs no connector (width-free).
kd_id_response = dict(
    student_recorders=dict(
        id_map=dict(type='ModuleOutputsRecorder', source='id_head')),
    teacher_recorders=dict(
        id_map=dict(type='ModuleOutputsRecorder', source='id_head')),
    distill_losses=dict(
        kd_id=dict(
            type='IDResponseConsistencyLoss',
            tau=0.1,
            lambda_sim=1.0,
            loss_weight=1.0)),
    loss_forward_mappings=dict(
        kd_id=dict(
            preds_S=dict(from_student=True, recorder='id_map'),
            preds_T=dict(from_student=False, recorder='id_map'),
            gt_bboxes=dict(from_data='gt_bboxes'),
            batch_input_shape=dict(from_data='batch_input_shape'))))
