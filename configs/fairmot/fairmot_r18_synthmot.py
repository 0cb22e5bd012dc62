# FairMOT student on SynthMOT, CPU schedule: ResNet-18 at half width
# (base_channels 32, 256 channels at stride 32) + CTResNetNeck (plain convs)
# giving the teacher's 64 channels at stride 4, 64-channel head branches,
# 64-d embeddings.
_base_ = [
    '../_base_/models/fairmot_dla34.py', '../_base_/datasets/synthmot.py',
    '../_base_/schedules/fairmot_synthmot_cpu.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=32,
        out_indices=(3, ),
        norm_eval=False),
    neck=dict(
        _delete_=True,
        type='CTResNetNeck',
        in_channels=256,
        num_deconv_filters=(128, 64, 64),
        num_deconv_kernels=(4, 4, 4),
        use_dcn=False),
    bbox_head=dict(head_conv=64),
    id_head=dict(embed_channels=64, head_conv=64))
