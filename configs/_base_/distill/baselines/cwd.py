# Baseline: channel-wise distillation (Shu et al., ICCV 2021) on the three
# neck levels: KL between per-channel spatial softmaxes at temperature tau,
# tau^2 / (N C) per level, the levels summed. Reference values (mmrazor's
# ChannelWiseDivergence on every FPN level of its RetinaNet / Faster R-CNN
# distillation configs): tau=1, loss_weight=10 per level, summed.
kd_cwd = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    connectors=dict(
        cwd_c0=dict(type='ConvBNConnector'),
        cwd_c1=dict(type='ConvBNConnector'),
        cwd_c2=dict(type='ConvBNConnector')),
    distill_losses=dict(
        kd_cwd=dict(
            type='CWDLoss', tau=1.0, loss_weight=10.0,
            reduction='sum')),
    loss_forward_mappings=dict(
        kd_cwd=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['cwd_c0', 'cwd_c1', 'cwd_c2']),
            preds_T=dict(from_student=False, recorder='neck'))))
