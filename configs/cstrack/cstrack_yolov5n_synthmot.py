# CSTrack-N (YOLOv5-N body: depth 0.33, width 0.25) on SynthMOT, CPU schedule.
_base_ = [
    '../_base_/models/cstrack_yolov5s.py', '../_base_/datasets/synthmot.py',
    '../_base_/schedules/synthmot_cpu.py', '../_base_/default_runtime.py'
]
deepen_factor = 0.33
widen_factor = 0.25
model = dict(
    backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
    neck=dict(
        out_channels=int(256 * widen_factor),
        num_csp_blocks=max(round(3 * deepen_factor), 1)))
