# CSTrack-L on MOT17 half-train / half-val: the CSTrack-S MOT17 recipe
# (1088x608, 30 epochs, SGD 0.005, cosine, EMA) with the YOLOv5-L body.
_base_ = ['./cstrack_yolov5s_mot17.py']
deepen_factor = 1.0
widen_factor = 1.0
model = dict(
    backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
    neck=dict(
        out_channels=int(256 * widen_factor),
        num_csp_blocks=max(round(3 * deepen_factor), 1)))
