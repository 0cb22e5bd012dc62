# The demo's student (tools/demo/run_demo.py, make demo): the teacher's
# network at half the width (widen 0.125, neck and ID head 32 channels,
# about a quarter of the parameters), the same data and settings. Sizes as
# the student of the KD benchmark (docs/results/kd_bench_v2.md).
_base_ = ['./cstrack_demo_teacher.py']
widen_factor = 0.125
channels = 32
model = dict(
    backbone=dict(widen_factor=widen_factor),
    neck=dict(out_channels=channels),
    id_head=dict(embed_channels=channels, saan=dict(mid_channels=channels)))
