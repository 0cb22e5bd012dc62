# FairMOT DLA-34 on MOT17 half-train / half-val, the published recipe:
# 1088x608 inputs, Adam lr 1e-4 at batch 12, 30 epochs, step at 20, DCNv2 in
# the DLA-up neck (mmcv's ModulatedDeformConv2dPack; it also runs on CPU,
# slowly). FairMOT starts from CenterNet's COCO DLA-34 weights: convert them
# to this model's names and set load_from. Needs data/MOT17 converted with
# mmdet's mot2coco (see configs/_base_/datasets/mot17_halftrain.py).
_base_ = [
    '../_base_/models/fairmot_dla34.py',
    '../_base_/datasets/mot17_halftrain.py',
    '../_base_/schedules/fairmot_30e.py', '../_base_/default_runtime.py'
]
model = dict(neck=dict(use_dcn=True))
train_dataloader = dict(batch_size=12)
