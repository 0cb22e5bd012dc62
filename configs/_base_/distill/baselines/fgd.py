# Baseline: focal and global distillation (Yang et al., CVPR 2022) on the
# three neck levels, with the ground-truth boxes as foreground. ``channels``
# are the teacher's neck channels (CSTrack-S: 128 per level);
# tools/benchmark/kd_benchmark.py sets them from the teacher.
# Values of the paper's RetinaNet configs (one-stage, like CSTrack's head):
# temperature 0.5, alpha 1e-3 (fg), beta 5e-4 (bg), gamma 1e-3 (attention),
# lambda 5e-6 (global); one loss per level, the levels summed.
kd_fgd = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    connectors=dict(
        fgd_c0=dict(type='ConvBNConnector'),
        fgd_c1=dict(type='ConvBNConnector'),
        fgd_c2=dict(type='ConvBNConnector')),
    distill_losses=dict(
        kd_fgd=dict(
            type='FGDLoss',
            channels=[128, 128, 128],
            temperature=0.5,
            alpha_fgd=1e-3,
            beta_fgd=5e-4,
            gamma_fgd=1e-3,
            lambda_fgd=5e-6,
            loss_weight=1.0,
            reduction='sum')),
    loss_forward_mappings=dict(
        kd_fgd=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['fgd_c0', 'fgd_c1', 'fgd_c2']),
            preds_T=dict(from_student=False, recorder='neck'),
            gt_bboxes=dict(from_data='gt_bboxes'),
            batch_input_shape=dict(from_data='batch_input_shape'))))
