# A short CPU schedule for FairMOT on SynthMOT: Adam as FairMOT, a higher lr
# for the short run, warm-up, x0.1 at epoch 9 of 12 (not tuned).
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=5e-4),
    clip_grad=dict(max_norm=35.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=True, milestones=[9], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
