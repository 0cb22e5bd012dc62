# Key-feature distillation (KeyFeatureLoss) for mmdet's ByteTrack: the
# detector's YOLOXPAFPN outputs (3 levels, strides 8/16/32), one 1x1 conv
# connector per level mapping the student's width to the teacher's
# (channels read from the models at build time; no BN: the standardised
# maps remove it, see ../key_feature.py). The loss settings are those
# of the CSTrack fragment (../key_feature.py), picked on the SynthMOT val
# split: standardised maps, foreground only, no attention term, and the
# connectors' 120-iteration warm-up (detach_iters).
kd_key_feature = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='detector.neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='detector.neck')),
    connectors=dict(
        neck_c0=dict(type='ConvConnector', detach_iters=120),
        neck_c1=dict(type='ConvConnector', detach_iters=120),
        neck_c2=dict(type='ConvConnector', detach_iters=120)),
    distill_losses=dict(
        kd_feat=dict(
            type='KeyFeatureLoss',
            temperature=0.5,
            alpha_fg=1.0,
            beta_bg=0.0,
            gamma_at=0.0,
            normalize=True,
            loss_weight=1.0)),
    loss_forward_mappings=dict(
        kd_feat=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['neck_c0', 'neck_c1', 'neck_c2']),
            preds_T=dict(from_student=False, recorder='neck'),
            gt_bboxes=dict(from_data='gt_bboxes'),
            batch_input_shape=dict(from_data='batch_input_shape'))))
