# MOT17 half-train / half-val as in CSTrack's and ByteTrack's ablations.
# Prepare with mmdet's converter (MOTChallenge layout under data/MOT17/):
#   python .venv/lib/python3.11/site-packages/mmdet/.mim/tools/dataset_converters/mot2coco.py \
#       -i data/MOT17 -o data/MOT17/annotations --split-train --convert-det
dataset_type = 'MOTKDDataset'
data_root = 'data/MOT17/'
img_scale = (1088, 608)  # (w, h)
backend_args = None

train_pipeline = [
    dict(type='BaseFrameSample'),  # the key frame alone, with its ids
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadTrackAnnotations'),
            dict(
                type='RandomResize',
                scale=img_scale,
                ratio_range=(0.5, 1.2),
                keep_ratio=True,
                clip_object_border=False),
            dict(type='PhotoMetricDistortion'),  # HSV-style colour jitter
            # mmdet's RandomCrop takes (w, h): the 1088x608 training input
            dict(type='RandomCrop', crop_size=img_scale,
                 bbox_clip_border=False),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='LoadTrackAnnotations')
        ]),
    dict(type='PackTrackInputs')
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        visibility_thr=-1,
        ann_file='annotations/half-train_cocoformat.json',
        data_prefix=dict(img_path='train'),
        metainfo=dict(classes=('pedestrian', )),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='TrackImgSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/half-val_cocoformat.json',
        data_prefix=dict(img_path='train'),
        metainfo=dict(classes=('pedestrian', )),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='MOTMetrics', benchmark='MOT17',
    metric=['CLEAR', 'Identity', 'HOTA'])
test_evaluator = val_evaluator
