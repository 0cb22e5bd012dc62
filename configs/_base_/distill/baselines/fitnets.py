# Baseline: FitNets (Romero et al., ICLR 2015), an MSE hint on the three neck
# levels; ConvBNConnector maps the student's channels to the teacher's (the
# paper's regressor). One hint pair per level, 0.5 * mean squared error each
# (the paper: 0.5 * squared L2 norm, trained in a stage of its own, so it
# gives no weight; here the element mean keeps the scale of a jointly trained
# loss), the levels summed as separate hint losses add up.
kd_fitnets = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    connectors=dict(
        fitnets_c0=dict(type='ConvBNConnector'),
        fitnets_c1=dict(type='ConvBNConnector'),
        fitnets_c2=dict(type='ConvBNConnector')),
    distill_losses=dict(
        kd_fitnets=dict(
            type='FitNetsLoss', loss_weight=1.0, reduction='sum')),
    loss_forward_mappings=dict(
        kd_fitnets=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['fitnets_c0', 'fitnets_c1', 'fitnets_c2']),
            preds_T=dict(from_student=False, recorder='neck'))))
