# FairMOT DLA-34 (full width, the teacher) on SynthMOT, CPU schedule. The
# neck uses plain 3x3 convs: DCNv2 runs on CPU but its backward is slow.
_base_ = [
    '../_base_/models/fairmot_dla34.py', '../_base_/datasets/synthmot.py',
    '../_base_/schedules/fairmot_synthmot_cpu.py',
    '../_base_/default_runtime.py'
]
model = dict(neck=dict(use_dcn=False))
