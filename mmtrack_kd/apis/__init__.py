"""Inference on any video and deployment (ONNX).

Not imported by ``import mmtrack_kd`` (it registers nothing); it needs
OpenCV, and ``onnx``/``onnxruntime`` when the ONNX functions are called.
"""
from .inference import (FrameTracks, build_frame_pipeline, draw_tracks,
                        forward_backend, id_colour, init_tracker, load_config,
                        read_state_dict, track_frames, tracks_to_mot_rows)
from .onnx_backend import (ExportableAdaptiveAvgPool2d, ONNXInputError,
                           ORTBackend, export_onnx, make_exportable,
                           output_names)
from .video_io import FrameSource, VideoReadError, VideoWriter

__all__ = [
    'FrameTracks', 'build_frame_pipeline', 'draw_tracks', 'forward_backend',
    'id_colour', 'init_tracker', 'load_config', 'read_state_dict',
    'track_frames', 'tracks_to_mot_rows', 'ExportableAdaptiveAvgPool2d',
    'ONNXInputError', 'ORTBackend', 'export_onnx', 'make_exportable',
    'output_names', 'FrameSource', 'VideoReadError', 'VideoWriter'
]
