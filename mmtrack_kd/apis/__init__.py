"""Training, testing, inference on any video, deployment (ONNX, int8), student
extraction and speed measurement: the functions behind the command-line
tools.

Not imported by ``import mmtrack_kd`` (it registers nothing); it needs
OpenCV, and ``onnx``/``onnxruntime`` when the ONNX functions are called.
"""
from .evaluate import build_test_config, evaluate_checkpoint
from .extract import extract_student
from .inference import (
    FrameTracks,
    build_frame_pipeline,
    draw_tracks,
    forward_backend,
    id_colour,
    init_tracker,
    load_config,
    read_state_dict,
    track_frames,
    tracks_to_mot_rows,
)
from .onnx_backend import (
    ExportableAdaptiveAvgPool2d,
    ONNXInputError,
    ORTBackend,
    export_onnx,
    make_exportable,
    output_names,
)
from .quantize import (
    CalibrationFrames,
    find_calibration_frames,
    format_quantize_report,
    int8_accuracy,
    quantize_onnx_int8,
    quantize_tracker_int8,
)
from .speed import (
    format_fps_report,
    format_step_overhead,
    measure_kd_step_overhead,
    measure_tracking_fps,
)
from .train import build_runner, build_train_config, train_model
from .video_io import FrameSource, VideoReadError, VideoWriter

__all__ = [
    'FrameTracks', 'build_frame_pipeline', 'draw_tracks', 'forward_backend',
    'id_colour', 'init_tracker', 'load_config', 'read_state_dict',
    'track_frames', 'tracks_to_mot_rows', 'ExportableAdaptiveAvgPool2d',
    'ONNXInputError', 'ORTBackend', 'export_onnx', 'make_exportable',
    'output_names', 'FrameSource', 'VideoReadError', 'VideoWriter',
    'extract_student', 'measure_tracking_fps', 'format_fps_report',
    'measure_kd_step_overhead', 'format_step_overhead', 'build_runner',
    'build_train_config', 'train_model', 'build_test_config',
    'evaluate_checkpoint', 'CalibrationFrames', 'find_calibration_frames',
    'format_quantize_report', 'int8_accuracy', 'quantize_onnx_int8',
    'quantize_tracker_int8'
]
