"""MOTChallenge evaluation: the core functions and the registered
``MOTMetrics`` evaluator."""
from .mot_eval import (
    DISTRACTOR_CLASSES,
    OVERALL,
    box_iou_xywh,
    evaluate_mot,
    evaluate_mot_files,
    format_table,
    iou_distance,
    list_gt_sequences,
    load_mot_gt,
    load_mot_results,
    metrics_to_json,
    preprocess_sequence,
)
from .mot_metric import MOTMetrics
from .sweep import ThresholdSweepLoop, load_sweep, sweep_out_paths

__all__ = [
    'DISTRACTOR_CLASSES', 'OVERALL', 'box_iou_xywh', 'evaluate_mot',
    'evaluate_mot_files', 'format_table', 'iou_distance',
    'list_gt_sequences', 'load_mot_gt', 'load_mot_results',
    'metrics_to_json', 'preprocess_sequence', 'MOTMetrics',
    'ThresholdSweepLoop', 'load_sweep', 'sweep_out_paths'
]
