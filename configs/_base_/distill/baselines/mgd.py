# Baseline: masked generative distillation (Yang et al., ECCV 2022) on the
# three neck levels. ``channels`` are the teacher's neck channels (CSTrack-S:
# 128 per level); tools/benchmark/kd_benchmark.py sets them from the teacher.
# Paper and reference (mmrazor's MGD RetinaNet config) values for detection:
# alpha_mgd=2e-5 on the squared error summed over C, H, W (per image),
# lambda_mgd=0.65 of the positions masked, the levels summed.
kd_mgd = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    connectors=dict(
        mgd_c0=dict(type='ConvBNConnector'),
        mgd_c1=dict(type='ConvBNConnector'),
        mgd_c2=dict(type='ConvBNConnector')),
    distill_losses=dict(
        kd_mgd=dict(
            type='MGDLoss',
            channels=[128, 128, 128],
            alpha_mgd=2e-5,
            lambda_mgd=0.65,
            loss_weight=1.0,
            reduction='sum')),
    loss_forward_mappings=dict(
        kd_mgd=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['mgd_c0', 'mgd_c1', 'mgd_c2']),
            preds_T=dict(from_student=False, recorder='neck'))))
