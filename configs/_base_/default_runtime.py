default_scope = 'mmdet'
custom_imports = dict(imports=['mmtrack_kd'], allow_failed_imports=False)
# crash-safe checkpoints (mmtrack_kd/engine/checkpoint.py): the scope prefix
# lets mmengine's root RUNNERS find it before the mmdet scope is set
runner_type = 'mmdet.AtomicRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='TrackVisualizationHook', draw=False))
# stop at the first NaN/Inf loss before it is applied; save/restore the
# random generators in checkpoints so resumed runs match uninterrupted ones;
# log the fraction of steps that gradient clipping shortens (clipped_frac)
custom_hooks = [
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateHook'),
    dict(type='GradClipMonitorHook')
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='TrackLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
