# FairMOT's recipe: Adam lr 1e-4 (batch 12), 30 epochs, lr x0.1 at epoch 20.
max_epochs = 30
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[20], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=12)
