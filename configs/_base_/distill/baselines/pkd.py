# Baseline: PKD (Cao et al., NeurIPS 2022), Pearson-correlation feature
# imitation on the three neck levels (maps normalised per channel).
kd_pkd = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    connectors=dict(
        pkd_c0=dict(type='ConvBNConnector'),
        pkd_c1=dict(type='ConvBNConnector'),
        pkd_c2=dict(type='ConvBNConnector')),
    distill_losses=dict(
        kd_pkd=dict(type='PKDLoss', loss_weight=1.0)),
    loss_forward_mappings=dict(
        kd_pkd=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['pkd_c0', 'pkd_c1', 'pkd_c2']),
            preds_T=dict(from_student=False, recorder='neck'))))
