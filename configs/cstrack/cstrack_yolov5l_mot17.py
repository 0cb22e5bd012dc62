# CSTrack-L on MOT17 half-train / half-val, the published recipe
# (1088x608, 30 epochs, SGD 0.005, cosine, EMA). Needs data/MOT17 converted
# with mmdet's mot2coco (see configs/_base_/datasets/mot17_halftrain.py).
_base_ = [
    '../_base_/models/cstrack_yolov5s.py',
    '../_base_/datasets/mot17_halftrain.py',
    '../_base_/schedules/cstrack_30e.py', '../_base_/default_runtime.py'
]
deepen_factor = 1.0
widen_factor = 1.0
model = dict(
    backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
    neck=dict(
        out_channels=int(256 * widen_factor),
        num_csp_blocks=max(round(3 * deepen_factor), 1)),
    # CSTrack's pedestrian anchors for 1088x608 inputs
    bbox_head=dict(anchors=[[8, 24, 11, 34, 16, 48], [32, 96, 45, 135, 64, 192],
                            [128, 384, 180, 540, 256, 640]]),
    id_head=dict(embed_channels=512),
    tracker=dict(num_frames_retain=30))
custom_hooks = [
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateHook'),
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        priority=49)
]
