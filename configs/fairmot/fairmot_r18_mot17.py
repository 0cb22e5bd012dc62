# FairMOT with a ResNet-18 backbone and CenterNet's deconvolution neck
# (mmdet ResNet depth 18 + CTResNetNeck with DCNv2: FairMOT's "resdcn_18"),
# the light student of the DLA-34 model, on MOT17 half-train / half-val with
# the same recipe (1088x608, Adam 1e-4, 30 epochs, step at 20). For
# ImageNet weights set model.backbone.init_cfg=dict(type='Pretrained',
# checkpoint=...) to a local ResNet-18 file.
_base_ = ['./fairmot_dla34_mot17.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        out_indices=(3, ),
        norm_eval=False),
    neck=dict(
        _delete_=True,
        type='CTResNetNeck',
        in_channels=512,
        num_deconv_filters=(256, 128, 64),
        num_deconv_kernels=(4, 4, 4),
        use_dcn=True),
    bbox_head=dict(head_conv=64),
    id_head=dict(head_conv=64))
