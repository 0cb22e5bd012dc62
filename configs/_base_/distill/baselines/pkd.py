# Baseline: PKD (Cao et al., NeurIPS 2022), Pearson-correlation feature
# imitation on the three neck levels: each level's maps standardised per
# channel over (N, H, W), half the MSE of the standardised maps (= mean over
# channels of 1 - Pearson r), the levels summed. Reference values (the PKD
# configs of mmrazor, one loss per FPN level): loss_weight=10 per level for
# one-stage detectors (RetinaNet, FCOS; CSTrack's head is one-stage), 6 for
# two-stage ones.
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
        kd_pkd=dict(type='PKDLoss', loss_weight=10.0, reduction='sum')),
    loss_forward_mappings=dict(
        kd_pkd=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['pkd_c0', 'pkd_c1', 'pkd_c2']),
            preds_T=dict(from_student=False, recorder='neck'))))
