# FairMOT with a DLA-34 backbone and its DLA-up/IDA-up neck (one stride-4
# map, 64 channels), CenterNet detection branches (heatmap, ltrb size,
# offset) and a 128-d re-ID branch, tracked by JDETracker with FairMOT's
# settings. The neck's 3x3 convs are deformable (DCNv2) as published;
# the CPU configs turn them off (mmcv's DCN runs on CPU but its backward is
# about 7x slower than a plain conv there).
# identities of the train split: 'auto' counts them in the train annotation
# file when tools/train.py or tools/test.py loads the config
num_ids = 'auto'

model = dict(
    type='FairMOT',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        # FairMOT feeds RGB in [0, 1] without mean/std normalisation
        mean=[0.0, 0.0, 0.0],
        std=[255.0, 255.0, 255.0],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='DLA',
        levels=(1, 1, 1, 2, 2, 1),
        channels=(16, 32, 64, 128, 256, 512)),
    neck=dict(
        type='DLAUpNeck',
        in_channels=None,  # read from the backbone at build time
        first_level=2,
        last_level=5,
        use_dcn=True),
    bbox_head=dict(
        type='FairMOTDetHead',
        num_classes=1,
        head_conv=256,
        ltrb=True,
        loss_heatmap=dict(type='GaussianFocalLoss', loss_weight=1.0),
        loss_wh=dict(type='L1Loss', loss_weight=0.1),
        loss_offset=dict(type='L1Loss', loss_weight=1.0)),
    id_head=dict(
        type='FairMOTIDHead',
        num_ids=num_ids,
        embed_channels=128,
        head_conv=256),
    loss_balance='uncertainty',
    # FairMOT's association: detections above conf_thres 0.4 start and
    # continue tracks; embedding (cosine, fused with the Kalman gate at
    # lambda 0.98) matched at cost 0.4, then IoU >= 0.5 for tracks of the
    # last frame, IoU >= 0.3 (cost 0.7) for unconfirmed tracks; lost tracks
    # kept 30 frames (track_buffer).
    tracker=dict(
        type='JDETracker',
        obj_score_thr=0.4,
        init_track_thr=0.4,
        embed_weight=0.98,
        embed_match_thr=0.4,
        iou_match_thr=0.5,
        tentative_match_thr=0.3,
        num_frames_retain=30),
    test_cfg=dict(score_thr=0.4, max_per_img=500, nms_kernel=3))
