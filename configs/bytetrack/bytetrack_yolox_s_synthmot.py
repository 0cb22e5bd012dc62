# ByteTrack with a YOLOX-S detector (CSPDarknet depth 0.33 / width 0.5,
# YOLOXPAFPN, YOLOXHead) on SynthMOT, sized for CPU: 320x192 inputs, a
# detection-style train set (each frame an independent image, no Mosaic or
# MixUp) and tracking-style val/test (MOTKDDataset, one frame at a time).
# Other sizes change `deepen_factor`/`widen_factor` and the channels below
# (see bytetrack_yolox_tiny_synthmot.py, bytetrack_yolox_n_synthmot.py).
# No pretrained weights (no download): trains from scratch.
_base_ = [
    '../_base_/datasets/synthmot.py', '../_base_/schedules/synthmot_cpu.py',
    '../_base_/default_runtime.py'
]
deepen_factor = 0.33
widen_factor = 0.5
img_scale = (320, 192)  # (w, h)
norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
act_cfg = dict(type='Swish')

model = dict(
    type='ByteTrack',
    # YOLOX takes raw 0-255 BGR pixels; training batches are plain
    # DetDataSamples (PackDetInputs), hence use_det_processor
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        pad_size_divisor=32,
        pad_value=114,
        use_det_processor=True),
    detector=dict(
        type='YOLOX',
        backbone=dict(
            type='CSPDarknet',
            deepen_factor=deepen_factor,
            widen_factor=widen_factor,
            out_indices=(2, 3, 4),
            use_depthwise=False,
            spp_kernal_sizes=(5, 9, 13),
            norm_cfg=norm_cfg,
            act_cfg=act_cfg),
        neck=dict(
            type='YOLOXPAFPN',
            in_channels=[int(c * widen_factor) for c in (256, 512, 1024)],
            out_channels=int(256 * widen_factor),
            num_csp_blocks=max(round(3 * deepen_factor), 1),
            use_depthwise=False,
            upsample_cfg=dict(scale_factor=2, mode='nearest'),
            norm_cfg=norm_cfg,
            act_cfg=act_cfg),
        bbox_head=dict(
            type='YOLOXHead',
            num_classes=1,
            in_channels=int(256 * widen_factor),
            feat_channels=int(256 * widen_factor),
            stacked_convs=2,
            strides=(8, 16, 32),
            use_depthwise=False,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            loss_cls=dict(
                type='CrossEntropyLoss',
                use_sigmoid=True,
                reduction='sum',
                loss_weight=1.0),
            loss_bbox=dict(
                type='IoULoss',
                mode='square',
                eps=1e-16,
                reduction='sum',
                loss_weight=5.0),
            loss_obj=dict(
                type='CrossEntropyLoss',
                use_sigmoid=True,
                reduction='sum',
                loss_weight=1.0),
            loss_l1=dict(type='L1Loss', reduction='sum', loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.7),
                      max_per_img=200)),
    tracker=dict(
        type='ByteTracker',
        motion=dict(type='KalmanFilter'),
        obj_score_thrs=dict(high=0.6, low=0.1),
        init_track_thr=0.7,
        weight_iou_with_det_scores=True,
        match_iou_thrs=dict(high=0.1, low=0.5, tentative=0.3),
        num_frames_retain=30))

# detection-style training on the CocoVID json (mmdet's CocoDataset reads
# its images/annotations/categories and ignores the video fields)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size_divisor=32, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(
                type='Pad',
                size_divisor=32,
                pad_val=dict(img=(114.0, 114.0, 114.0))),
            dict(type='LoadTrackAnnotations')
        ]),
    dict(type='PackTrackInputs')
]
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoDataset',
        data_root=_base_.data_root,
        ann_file='annotations/train_cocoformat.json',
        data_prefix=dict(img='train/'),
        metainfo=dict(classes=('pedestrian', )),
        # frames without people train too (YOLOX handles empty targets)
        filter_cfg=dict(filter_empty_gt=False, min_size=0),
        pipeline=train_pipeline,
        backend_args=_base_.backend_args))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
