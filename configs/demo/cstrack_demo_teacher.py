# The demo's teacher (tools/demo/run_demo.py, make demo): CSTrack with a
# YOLOv5 body at widen 0.25 (neck and ID head 64 channels), on the demo's
# SynthMOT at 320x192. Sizes as the teacher of the KD benchmark
# (docs/results/kd_bench_v2.md); the demo trains it for fewer iterations.
_base_ = ['../cstrack/cstrack_yolov5s_synthmot.py']
data_root = 'data/synthmot_demo/'
widen_factor = 0.25
channels = 64
model = dict(
    backbone=dict(widen_factor=widen_factor),
    neck=dict(out_channels=channels),
    id_head=dict(embed_channels=channels, saan=dict(mid_channels=channels)))
# one process per training on a 2-core machine: no loader workers
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
# the demo tests once, after training (no validation, not even the last
# epoch's)
train_cfg = dict(val_begin=1000, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=1, max_keep_ckpts=1))
