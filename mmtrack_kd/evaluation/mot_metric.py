"""MOTChallenge metrics as an mmengine evaluator (``val_evaluator`` /
``test_evaluator``) for mmdet's tracking data flow."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmdet.evaluation.metrics.base_video_metric import BaseVideoMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

from ..datasets.mot_io import write_mot_txt
from .mot_eval import (
    ALLOWED_METRICS,
    DISTRACTOR_CLASSES,
    METRIC_KEYS,
    MOT20_DISTRACTOR_CLASSES,
    OVERALL,
    evaluate_mot,
    format_table,
    load_mot_gt,
)

#: benchmark -> distractor classes of its preprocessing (None: no
#: preprocessing, the class column is ignored).
BENCHMARK_DISTRACTORS = {
    'MOT15': None,
    'MOT16': DISTRACTOR_CLASSES,
    'MOT17': DISTRACTOR_CLASSES,
    'MOT20': MOT20_DISTRACTOR_CLASSES,
    'DanceTrack': None,
    'pedestrian': None,
}


def _field(obj, key: str, default=None):
    """``obj[key]`` for dicts, ``obj.key`` for data elements."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _numpy(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def sequence_name(img_path: str) -> str:
    """The MOTChallenge sequence of a frame: the folder above the image
    folder (``.../SEQ/img1/000001.jpg`` -> ``SEQ``)."""
    return osp.basename(osp.dirname(osp.dirname(osp.normpath(img_path))))


@METRICS.register_module()
class MOTMetrics(BaseVideoMetric):
    """CLEAR, identity and HOTA metrics of a tracker, MOTChallenge style.

    Works with mmdet's ``TrackImgSampler`` (one frame per sample, batch 1) and
    with whole-video samples. Each frame's ``DetDataSample`` must carry
    ``pred_track_instances`` (``bboxes`` (K, 4) x1y1x2y2 in original image
    pixels, ``scores`` (K,), ``instances_id`` (K,)) and the metainfo
    ``img_path`` (``.../SEQ/img1/XXXXXX.jpg``: the sequence is the folder
    above the image folder) and ``frame_id`` (0-based; ``mot_frame_id``,
    1-based, is used instead when present, e.g. for half-split sets).

    Ground truth comes from ``gt_root/SEQ/gt/<gt_filename>`` when ``gt_root``
    is set (the files are used as they are, the exact devkit protocol), else
    from the metainfo ``instances`` the dataset gives (``bbox`` x1y1x2y2,
    ``instance_id``, ``mot_conf``, ``visibility``, ``category_id`` or
    ``mot_class_id``); note that mmdet's MOT datasets drop non-pedestrian
    and out-of-image boxes, so distractor classes cannot act there.

    Per-frame records are collected across ranks by ``BaseVideoMetric`` and
    evaluated on the main process; a frame seen twice (sampler padding) is
    counted once. Returned values: overall ``HOTA, DetA, AssA, MOTA, MOTP,
    IDF1, IDP, IDR, recall, precision`` (0-100), ``MT, PT, ML, FP, FN, IDs,
    Frag`` (counts), prefixed by ``prefix`` (default ``'mot'``: ``mot/HOTA``);
    a per-sequence table goes to the log.

    Args:
        metric: any of ``'CLEAR'``, ``'Identity'``, ``'HOTA'``.
        benchmark: ``'MOT16'``, ``'MOT17'``, ``'MOT20'`` (distractor
            preprocessing on), ``'MOT15'``, ``'DanceTrack'``, ``'pedestrian'``
            (off: ground truth holds only pedestrians / no classes).
        gt_root: MOTChallenge split folder with ``SEQ/gt/<gt_filename>``;
            None: ground truth from the dataset annotations.
        gt_filename: ground-truth file name inside ``SEQ/gt``.
        outfile_prefix: if set, ``outfile_prefix/SEQ.txt`` result files are
            written (atomically) in MOTChallenge format.
        iou_threshold: minimum IoU of a CLEAR/identity match.
        collect_device: ``'cpu'`` (results collected through a temp folder).
        prefix: metric name prefix; default ``'mot'``.

    Example:
        >>> val_evaluator = dict(type='MOTMetrics',
        ...                      metric=['HOTA', 'CLEAR', 'Identity'],
        ...                      benchmark='MOT17',
        ...                      outfile_prefix='work_dirs/results')
    """

    default_prefix: Optional[str] = 'mot'

    def __init__(self,
                 metric: Union[str, Sequence[str]] = ALLOWED_METRICS,
                 benchmark: str = 'MOT17',
                 gt_root: Optional[str] = None,
                 gt_filename: str = 'gt.txt',
                 outfile_prefix: Optional[str] = None,
                 iou_threshold: float = 0.5,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        metrics = [metric] if isinstance(metric, str) else list(metric)
        for m in metrics:
            if m not in ALLOWED_METRICS:
                raise KeyError(f'metric: {m!r} is not one of '
                               f'{list(ALLOWED_METRICS)}')
        if not metrics:
            raise KeyError('metric: give at least one of '
                           f'{list(ALLOWED_METRICS)}')
        if benchmark not in BENCHMARK_DISTRACTORS:
            raise KeyError(f'benchmark: {benchmark!r} is not one of '
                           f'{list(BENCHMARK_DISTRACTORS)}')
        if gt_root is not None and not osp.isdir(gt_root):
            raise FileNotFoundError(f'gt_root: {gt_root} is not a folder')
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f'iou_threshold: must be in (0, 1], got '
                             f'{iou_threshold}')
        self.metrics = metrics
        self.benchmark = benchmark
        self.distractor_classes = BENCHMARK_DISTRACTORS[benchmark]
        self.gt_root = gt_root
        self.gt_filename = gt_filename
        self.outfile_prefix = outfile_prefix
        self.iou_threshold = iou_threshold

    # ------------------------------------------------------------ processing
    def process_image(self, data_samples: Sequence, video_len: int) -> None:
        """Record one frame (image-based data flow).

        Args:
            data_samples: the sample's ``video_data_samples`` (one
                ``DetDataSample`` or its dict).
            video_len: frames in the original video (unused: frames are
                grouped by sequence name at the end).
        """
        for sample in data_samples:
            self.results.append(self._frame_record(sample))

    def process_video(self, data_samples: Sequence) -> None:
        """Record every frame of a whole-video sample."""
        for sample in data_samples:
            self.results.append(self._frame_record(sample))

    def _frame_record(self, sample) -> dict:
        """Turn one frame's data sample into a small picklable record:
        ``seq``, ``frame`` (1-based), ``pred`` (K, 7) and ``gt`` (M, 10) or
        None rows in MOTChallenge layout."""
        img_path = _field(sample, 'img_path')
        frame_id = _field(sample, 'frame_id')
        if img_path is None or frame_id is None:
            raise KeyError('MOTMetrics needs the metainfo keys img_path and '
                           'frame_id on every data sample (PackTrackInputs '
                           'meta_keys)')
        seq = sequence_name(img_path)
        mot_frame = _field(sample, 'mot_frame_id')
        frame = int(mot_frame) if mot_frame is not None else int(frame_id) + 1

        pred = _field(sample, 'pred_track_instances')
        if pred is None:
            raise KeyError(f'{img_path}: data sample has no '
                           f'pred_track_instances (the model must track)')
        boxes = _numpy(_field(pred, 'bboxes')).reshape(-1, 4)
        ids = _numpy(_field(pred, 'instances_id')).reshape(-1)
        scores = _field(pred, 'scores')
        scores = np.ones(len(ids)) if scores is None else \
            _numpy(scores).reshape(-1)
        if not len(boxes) == len(ids) == len(scores):
            raise ValueError(f'{img_path}: pred_track_instances has '
                             f'{len(boxes)} bboxes, {len(ids)} instances_id, '
                             f'{len(scores)} scores')
        pred_rows = np.column_stack([
            np.full(len(ids), frame), ids, boxes[:, 0], boxes[:, 1],
            boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], scores
        ]).reshape(-1, 7)

        gt_rows = None
        if self.gt_root is None:
            instances = _field(sample, 'instances')
            if instances is None:
                raise KeyError(
                    f'{img_path}: no metainfo "instances" (the dataset '
                    f'annotations) to evaluate against; keep "instances" in '
                    f'PackTrackInputs meta_keys or set MOTMetrics gt_root')
            gt_rows = np.zeros((len(instances), 10))
            for i, inst in enumerate(instances):
                x1, y1, x2, y2 = inst['bbox']
                cls = inst.get('mot_class_id', inst.get('category_id', 1))
                gt_rows[i] = (frame, inst['instance_id'], x1, y1, x2 - x1,
                              y2 - y1, inst.get('mot_conf', 1.0), cls,
                              inst.get('visibility', 1.0), -1)
        return dict(seq=seq, frame=frame, pred=pred_rows, gt=gt_rows)

    # ------------------------------------------------------------ metrics
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Evaluate the collected frame records.

        Args:
            results: records of all ranks (see :meth:`_frame_record`).

        Returns:
            dict: overall metrics (keys of ``METRIC_KEYS`` that were
            computed), without prefix.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        seen = set()
        preds: Dict[str, list] = OrderedDict()
        gts: Dict[str, list] = OrderedDict()
        for rec in results:
            key = (rec['seq'], rec['frame'])
            if key in seen:
                continue
            seen.add(key)
            preds.setdefault(rec['seq'], []).append(rec['pred'])
            if rec['gt'] is not None:
                gts.setdefault(rec['seq'], []).append(rec['gt'])
        if not preds:
            logger.warning('MOTMetrics: no frames were processed')
            return {}
        seqs = sorted(preds)
        res = {s: np.concatenate(preds[s], axis=0) for s in seqs}
        if self.outfile_prefix is not None:
            for s in seqs:
                write_mot_txt(osp.join(self.outfile_prefix, s + '.txt'),
                              res[s])
            logger.info(f'MOT results written to {self.outfile_prefix}')
        if self.gt_root is not None:
            gt = load_mot_gt(self.gt_root, seqs, self.gt_filename)
        else:
            gt = {
                s: np.concatenate(gts[s], axis=0) if gts.get(s) else
                np.zeros((0, 10))
                for s in seqs
            }
        table = evaluate_mot(
            gt,
            res,
            distractor_filter=self.distractor_classes is not None,
            distractor_classes=self.distractor_classes or (),
            metrics=self.metrics,
            iou_threshold=self.iou_threshold)
        logger.info('MOT metrics per sequence:\n' + format_table(table))
        overall = table[OVERALL]
        return {k: overall[k] for k in METRIC_KEYS if k in overall}
