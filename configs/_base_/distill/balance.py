# The balance of the three losses against the student's own losses
# (MOTDistiller's loss_balance, docs/losses.md): every 20 iterations each
# distillation loss is rescaled so that its gradient norm on the student's
# neck is this many times the task's. Ratios, unlike loss weights, do not
# depend on the batch size or on the losses' units. Picked on the SynthMOT
# val split (docs/benchmark.md, "The method on val": resp 20, feat 2, id 2
# with the key-feature fragment's standardised, foreground-only maps; the
# response ratio is the one the x10 weight had, measured);
# use with the three fragments of this folder:
#   model = dict(type='MOTDistiller', ..., loss_balance=_base_.kd_balance)
kd_balance = dict(
    ratios=dict(kd_id=2.0, kd_feat=2.0, kd_resp=20.0),
    interval=20,
    momentum=0.8,
    shared=['neck'])

# kd_balance for the key-feature loss on the backbone
# (key_feature.py's kd_key_feature_backbone): the feature loss never reaches
# the neck, so its ratio is taken against the task's gradient norm on the
# backbone, the layers it reaches; the other two stay on the neck.
kd_balance_backbone_feat = dict(
    kd_balance, loss_shared=dict(kd_feat=['backbone']))
