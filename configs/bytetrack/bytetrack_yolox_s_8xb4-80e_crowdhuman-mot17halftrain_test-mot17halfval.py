# ByteTrack with a YOLOX-S detector (depth 0.33, width 0.5, COCO-pretrained
# YOLOX-S weights) on MOT17 half-train + CrowdHuman: mmdet's YOLOX-X recipe
# with the detector shrunk. It is the student of
# configs/kd/bytetrack_yolox_x2s_kd_mot17.py (same model, checked by
# tests/test_e2e_bytetrack_kd.py): train it alone for the no-KD baseline,
# and test the extracted KD student with it.
_base_ = [
    'mmdet::bytetrack/'
    'bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py'
]
custom_imports = dict(imports=['mmtrack_kd'], allow_failed_imports=False)

deepen_factor = 0.33
widen_factor = 0.5
model = dict(
    detector=dict(
        backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
        neck=dict(
            in_channels=[int(c * widen_factor) for c in (256, 512, 1024)],
            out_channels=int(256 * widen_factor),
            num_csp_blocks=max(round(3 * deepen_factor), 1)),
        bbox_head=dict(
            in_channels=int(256 * widen_factor),
            feat_channels=int(256 * widen_factor)),
        init_cfg=dict(
            type='Pretrained',
            checkpoint=  # noqa: E251
            'https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_s_8x8_300e_coco/yolox_s_8x8_300e_coco_20211121_095711-4592a793.pth'  # noqa: E501
        )))
