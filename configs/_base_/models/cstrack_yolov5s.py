# CSTrack with a YOLOv5-S body (mmdet CSPDarknet + YOLOXPAFPN with the
# YOLOv5 depth/width multipliers). Other sizes change `deepen_factor`,
# `widen_factor` (and the neck to match), see configs/cstrack/.
deepen_factor = 0.33
widen_factor = 0.5
# pedestrian anchors (about 1:3) in input pixels, sized for SynthMOT frames
# (persons 14-80 px tall in 192-224 px high frames); the MOT17 configs use
# CSTrack's 1088x608 set.
anchors = [[5, 14, 8, 22, 11, 32], [15, 44, 21, 62, 28, 82],
           [40, 110, 56, 150, 80, 190]]
# identities of the train split: 'auto' counts them in the train annotation
# file when tools/train.py or tools/test.py loads the config
num_ids = 'auto'

model = dict(
    type='CSTrack',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[0.0, 0.0, 0.0],
        std=[255.0, 255.0, 255.0],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='CSPDarknet',
        deepen_factor=deepen_factor,
        widen_factor=widen_factor,
        out_indices=(2, 3, 4),
        spp_kernal_sizes=(5, 9, 13),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='SiLU')),
    neck=dict(
        type='YOLOXPAFPN',
        in_channels=None,  # read from the backbone at build time
        out_channels=int(256 * widen_factor),
        num_csp_blocks=max(round(3 * deepen_factor), 1),
        norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
        act_cfg=dict(type='SiLU')),
    ccn=dict(type='CCN'),
    bbox_head=dict(
        type='YOLOv5Head',
        num_classes=1,
        anchors=anchors,
        strides=[8, 16, 32]),
    id_head=dict(
        type='CSTrackIDHead',
        num_ids=num_ids,
        embed_channels=128,
        loss_weight=0.02),
    tracker=dict(
        type='JDETracker',
        obj_score_thr=0.5,
        init_track_thr=0.5,
        num_frames_retain=30),
    test_cfg=dict(
        score_thr=0.5, nms=dict(type='nms', iou_threshold=0.6),
        max_per_img=200))
