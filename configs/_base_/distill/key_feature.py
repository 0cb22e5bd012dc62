# Middle-layer distillation by key-feature learning (KeyFeatureLoss) on the
# three neck levels; 1x1 conv connectors map the student's channels to the
# teacher's (counts are read from the models at build time). No BatchNorm
# after the conv (ConvConnector, not ConvBNConnector): the loss standardises
# each channel of each frame (normalize=True), which removes a BN's
# per-channel scale and shift, so a BN would change nothing but cost as much
# as the conv (the benchmark results up to session 23 were trained with BN
# connectors; the loss and the student's gradients agree to 1e-5,
# tests/models/distill/test_connectors.py). With normalize=False, use
# ConvBNConnector: the BN's scale and shift then count.
# Settings picked on the SynthMOT val split (docs/benchmark.md, "The method
# on val"): per-channel standardised maps (the student learns the teacher's
# pattern, not its magnitudes), foreground cells only (beta_bg=0) and no
# attention-transfer term (gamma_at=0: the student's attention is taken
# after the connector, whose per-channel scale alone can match it). The
# loss's class defaults (raw maps, beta_bg 0.5, gamma_at 0.1) are the first
# design. The connectors warm up for 120 iterations (detach_iters): the
# student's features enter them detached, so each connector learns its map
# to the teacher before the loss pulls on the student (a random connector
# otherwise sends the student towards a random projection of the teacher's
# features); picked on val (docs/results/kd_method_val.md, fifth pass).
kd_key_feature = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
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

# The same loss on the backbone's three output stages (C3-C5 of YOLOv5)
# instead of the neck. The neck's maps are what the heads read, so the
# response loss already shapes them; the backbone's stages are upstream.
# On the SynthMOT val split at 8 epochs (seeds 5-6) it was the best of six
# designs of this loss, level with leaving the loss out; on test over
# seeds 5-9 it scores as the neck design does (60.0 against 60.1 IDF1 for
# the three losses, 60.3 for ID + response alone; docs/benchmark.md,
# "Other designs of the key-feature loss"), so it is an option, not the
# default. The loss never reaches the neck, so balance it on the backbone:
# use with `loss_balance=_base_.kd_balance_backbone_feat` (balance.py).
kd_key_feature_backbone = dict(
    student_recorders=dict(
        backbone=dict(type='ModuleOutputsRecorder', source='backbone')),
    teacher_recorders=dict(
        backbone=dict(type='ModuleOutputsRecorder', source='backbone')),
    connectors=dict(
        backbone_c0=dict(type='ConvConnector', detach_iters=120),
        backbone_c1=dict(type='ConvConnector', detach_iters=120),
        backbone_c2=dict(type='ConvConnector', detach_iters=120)),
    # the loss and its data arguments as above; only the maps change
    distill_losses=kd_key_feature['distill_losses'],
    loss_forward_mappings=dict(
        kd_feat=dict(
            kd_key_feature['loss_forward_mappings']['kd_feat'],
            preds_S=dict(
                from_student=True,
                recorder='backbone',
                connector=['backbone_c0', 'backbone_c1', 'backbone_c2']),
            preds_T=dict(from_student=False, recorder='backbone'))))

# The relation design (KeyFeatureLoss(relation=True)): each foreground
# cell's cosine similarities to every cell of its frame, the student's
# against the teacher's, on the neck's three levels. No connectors: the
# relations do not depend on the channel count, so the narrow student's own
# maps are compared and no connector can absorb the error. Foreground cells
# only, weighted per box by the teacher's attention as above.
kd_key_feature_relation = dict(
    student_recorders=kd_key_feature['student_recorders'],
    teacher_recorders=kd_key_feature['teacher_recorders'],
    distill_losses=dict(
        kd_feat=dict(
            kd_key_feature['distill_losses']['kd_feat'], relation=True)),
    loss_forward_mappings=dict(
        kd_feat=dict(
            kd_key_feature['loss_forward_mappings']['kd_feat'],
            preds_S=dict(from_student=True, recorder='neck'))))
