# ByteTrack with a YOLOX-Tiny-width detector (depth 0.33, width 0.375) on
# SynthMOT, CPU-sized; everything else as bytetrack_yolox_s_synthmot.py.
_base_ = ['./bytetrack_yolox_s_synthmot.py']
widen_factor = 0.375
model = dict(
    detector=dict(
        backbone=dict(widen_factor=widen_factor),
        neck=dict(
            in_channels=[int(c * widen_factor) for c in (256, 512, 1024)],
            out_channels=int(256 * widen_factor)),
        bbox_head=dict(
            in_channels=int(256 * widen_factor),
            feat_channels=int(256 * widen_factor))))
