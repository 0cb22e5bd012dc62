# MOT baseline: attention-guided feature distillation with a teacher
# foreground mask (Liang et al., "Compressing the Multiobject Tracking Model
# via Knowledge Distillation", IEEE TCSS 2023) on the three neck levels.
# The paper gives no code; AttentionGuidedKDLoss's docstring says what it
# describes and what we chose: weights (teacher spatial attention +
# discrepancy attention) / 2 at temperature 0.5, positions of teacher
# attention below its mean (fg_thr=1.0) dropped, levels summed.
kd_attention_guided = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    connectors=dict(
        agkd_c0=dict(type='ConvBNConnector'),
        agkd_c1=dict(type='ConvBNConnector'),
        agkd_c2=dict(type='ConvBNConnector')),
    distill_losses=dict(
        kd_agkd=dict(
            type='AttentionGuidedKDLoss',
            temperature=0.5,
            fg_thr=1.0,
            loss_weight=1.0,
            reduction='sum')),
    loss_forward_mappings=dict(
        kd_agkd=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['agkd_c0', 'agkd_c1', 'agkd_c2']),
            preds_T=dict(from_student=False, recorder='neck'))))
