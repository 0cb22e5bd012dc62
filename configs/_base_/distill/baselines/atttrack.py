# MOT baseline: AttTrack's cross-model feature learning (Nalaie and Zheng,
# "AttTrack: Online Deep Attention Transfer for Multi-object Tracking",
# arXiv:2210.08648, 2022): the student's intermediate features, through a
# connector, aligned with the teacher's. The paper gives no code;
# CrossModelFeatureLoss's docstring says what we chose: the three neck
# levels, ConvBNConnector, MSE per level, the levels summed; the optional
# attention-transfer term is off (att_weight=0). AttTrack's inference-time
# parts (interleaving the models, teacher priors) are not distillation
# losses and are not part of the benchmark. Without the attention term the
# loss is FitNets's times 2, so under the benchmark's gradient balance the
# two train identically; the benchmark's AttTrack row sets att_weight=1000
# (docs/benchmark.md, "The baselines under the protocol").
kd_atttrack = dict(
    student_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    teacher_recorders=dict(
        neck=dict(type='ModuleOutputsRecorder', source='neck')),
    connectors=dict(
        atttrack_c0=dict(type='ConvBNConnector'),
        atttrack_c1=dict(type='ConvBNConnector'),
        atttrack_c2=dict(type='ConvBNConnector')),
    distill_losses=dict(
        kd_atttrack=dict(
            type='CrossModelFeatureLoss',
            feat_weight=1.0,
            att_weight=0.0,
            loss_weight=1.0,
            reduction='sum')),
    loss_forward_mappings=dict(
        kd_atttrack=dict(
            preds_S=dict(
                from_student=True,
                recorder='neck',
                connector=['atttrack_c0', 'atttrack_c1', 'atttrack_c2']),
            preds_T=dict(from_student=False, recorder='neck'))))
