"""MOTChallenge evaluation: CLEAR, identity and HOTA metrics.

The core of the package's tracking evaluation, shared by the registered
metric :class:`~mmtrack_kd.evaluation.MOTMetrics` and the command line tool
``tools/analysis/eval_mot.py``.

* CLEAR (MOTA, MOTP, MT/PT/ML, FP, FN, IDs, Frag) and identity (IDF1, IDP,
  IDR) metrics come from ``motmetrics`` (its ``MOTAccumulator`` and
  ``metrics.compute_many``). The IoU distance matrix is computed here
  (``motmetrics.distances.iou_matrix`` calls ``np.asfarray``, removed in
  numpy 2); pairs with IoU below 0.5 may not match, as in the MOTChallenge
  devkit.
* HOTA, DetA, AssA come from ``trackeval.metrics.HOTA`` run on data built in
  memory exactly as trackeval's ``MotChallenge2DBox`` dataset builds it.

Ground truth preprocessing follows the MOTChallenge devkit (trackeval's
``MotChallenge2DBox``):

* ground-truth rows whose conf, cast to int, is 0 ("do not consider") never
  count;
* with ``distractor_filter=True`` (MOT16/17/20): in every frame the tracker
  boxes are matched one-to-one (Hungarian, IoU >= 0.5) to *all* ground-truth
  boxes; tracker boxes matched to a distractor class (2 person on vehicle,
  7 static person, 8 distractor, 12 reflection; MOT20 adds 6 non-MOT
  vehicle) are removed, and only ground-truth rows of class 1 (pedestrian)
  are kept;
* with ``distractor_filter=False`` (MOT15, or datasets whose ground truth
  holds only pedestrians) the class column is ignored.

Rows are (R, 10) float arrays as :func:`mmtrack_kd.datasets.mot_io.
read_mot_txt` returns them: ``frame, id, x, y, w, h, conf, class,
visibility, unused`` (1-based frames, boxes x, y, w, h in pixels). Result rows
use the same first six columns.

Returned numbers: percentages (MOTA, MOTP, IDF1, IDP, IDR, recall,
precision, MT%, PT%, ML%, HOTA, DetA, AssA, LocA) are 0-100 floats, counts
are ints. MOTP is the devkit's: mean IoU of the matched pairs times 100
(``(1 - motmetrics' motp) * 100``). A value that is undefined (e.g. MOTA of a
sequence without ground truth) is ``nan``.
"""
import math
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..datasets.mot_io import read_mot_txt

PEDESTRIAN_CLASS = 1
DISTRACTOR_CLASSES = (2, 7, 8, 12)
#: MOT20 also treats class 6 (non-MOT vehicle) as a distractor.
MOT20_DISTRACTOR_CLASSES = (2, 6, 7, 8, 12)
#: MOTChallenge ground-truth classes 1..13 (pedestrian ... crowd).
VALID_GT_CLASSES = tuple(range(1, 14))
OVERALL = 'OVERALL'
ALLOWED_METRICS = ('CLEAR', 'Identity', 'HOTA')

#: Keys of the result dict, in table order, with their printed formats.
METRIC_KEYS = ('HOTA', 'DetA', 'AssA', 'MOTA', 'MOTP', 'IDF1', 'IDP', 'IDR',
               'recall', 'precision', 'MT', 'PT', 'ML', 'MT%', 'PT%', 'ML%',
               'FP', 'FN', 'IDs', 'Frag')
COUNT_KEYS = ('MT', 'PT', 'ML', 'FP', 'FN', 'IDs', 'Frag', 'GT_tracks',
              'GT_dets', 'pred_dets', 'num_frames')

# motmetrics metric name -> our key
_MM_CLEAR = {
    'mota': 'MOTA', 'motp': 'MOTP', 'recall': 'recall',
    'precision': 'precision', 'mostly_tracked': 'MT',
    'partially_tracked': 'PT', 'mostly_lost': 'ML',
    'num_false_positives': 'FP', 'num_misses': 'FN', 'num_switches': 'IDs',
    'num_fragmentations': 'Frag', 'num_unique_objects': 'GT_tracks',
    'num_objects': 'GT_dets', 'num_predictions': 'pred_dets',
    'num_frames': 'num_frames'
}
_MM_IDENTITY = {'idf1': 'IDF1', 'idp': 'IDP', 'idr': 'IDR'}
_MM_PERCENT = ('mota', 'recall', 'precision', 'idf1', 'idp', 'idr')


def box_iou_xywh(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes given as x, y, w, h.

    Args:
        boxes1: (N, 4) boxes.
        boxes2: (K, 4) boxes.

    Returns:
        np.ndarray: (N, K) IoU in [0, 1]; 0 where the union is empty.
    """
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    a1, a2 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b1, b2 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    wh = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = a[:, 2] * a[:, 3]
    area_b = b[:, 2] * b[:, 3]
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.zeros_like(inter)
    ok = (union > 0) & (inter > 0)
    iou[ok] = inter[ok] / union[ok]
    return iou


def iou_distance(gt_boxes: np.ndarray, pred_boxes: np.ndarray,
                 max_dist: float = 0.5) -> np.ndarray:
    """The distance matrix motmetrics' accumulator expects: ``1 - IoU``,
    ``nan`` (do not pair) where the distance is larger than ``max_dist``.

    Args:
        gt_boxes: (N, 4) x, y, w, h.
        pred_boxes: (K, 4) x, y, w, h.
        max_dist: largest distance that may still match (0.5 = IoU 0.5).

    Returns:
        np.ndarray: (N, K) float64.
    """
    dist = 1.0 - box_iou_xywh(gt_boxes, pred_boxes)
    dist[dist > max_dist] = np.nan
    return dist


def _rows(arr: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 10), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise ValueError(f'{name}: expected an (R, >=6) array of MOT rows, '
                         f'got shape {arr.shape}')
    if arr.shape[1] < 10:
        pad = np.full((len(arr), 10 - arr.shape[1]), -1.0)
        if arr.shape[1] == 6:
            pad[:, 0] = 1.0  # conf defaults to 1 ("count this box")
        arr = np.concatenate([arr, pad], axis=1)
    return arr[:, :10]


def _split_frames(rows: np.ndarray) -> Dict[int, np.ndarray]:
    """Group rows by frame number: {frame: (r, 10) rows}."""
    if len(rows) == 0:
        return {}
    frames = rows[:, 0].astype(np.int64)
    order = np.argsort(frames, kind='stable')
    frames, rows = frames[order], rows[order]
    uniq, starts = np.unique(frames, return_index=True)
    ends = list(starts[1:]) + [len(rows)]
    return {int(f): rows[s:e] for f, s, e in zip(uniq, starts, ends)}


def _check_unique_ids(by_frame: Dict[int, np.ndarray], what: str) -> None:
    for frame, rows in by_frame.items():
        ids = rows[:, 1]
        if len(np.unique(ids)) != len(ids):
            vals, counts = np.unique(ids, return_counts=True)
            raise ValueError(
                f'{what}: id {int(vals[counts > 1][0])} appears more than '
                f'once in frame {frame}')


def preprocess_sequence(
        gt: np.ndarray,
        results: np.ndarray,
        distractor_filter: bool = True,
        seq: str = 'sequence',
        distractor_classes: Sequence[int] = DISTRACTOR_CLASSES
) -> Tuple[List[int], Dict[int, np.ndarray], Dict[int, np.ndarray]]:
    """Apply the MOTChallenge ground-truth / tracker preprocessing.

    Args:
        gt: (R, 10) ground-truth rows of one sequence.
        results: (R', >=6) tracker rows of the same sequence.
        distractor_filter: remove tracker boxes matched to distractor
            classes and keep only class-1 ground truth (MOT16/17/20). Off:
            keep every ground-truth row whose conf is not 0 (MOT15, or
            pedestrian-only datasets).
        seq: the sequence name, for error messages.
        distractor_classes: ground-truth classes whose matched tracker boxes
            are removed (filter on).

    Returns:
        tuple: ``frames`` (sorted frame numbers present in either input),
        ``gt_by_frame`` and ``res_by_frame`` ({frame: (r, 10) rows}) after
        preprocessing.

    Raises:
        ValueError: an id twice in one frame, or (filter on) a ground-truth
            class outside 1..13, naming the sequence.
    """
    gt = _rows(gt, f'{seq} ground truth')
    results = _rows(results, f'{seq} results')
    gt_frames = _split_frames(gt)
    res_frames = _split_frames(results)
    _check_unique_ids(gt_frames, f'{seq} ground truth')
    _check_unique_ids(res_frames, f'{seq} results')
    if distractor_filter and len(gt):
        classes = np.unique(gt[:, 7].astype(np.int64))
        bad = np.setdiff1d(classes, VALID_GT_CLASSES)
        if len(bad):
            raise ValueError(
                f'{seq} ground truth: class {int(bad[0])} is not a '
                f'MOTChallenge class (1-13). Ground truth without class '
                f'labels (MOT15, pedestrian-only data) must be evaluated '
                f'with the distractor filter off (distractor_filter=False, '
                f'--no-distractor-filter).')
    frames = sorted(set(gt_frames) | set(res_frames))
    gt_out: Dict[int, np.ndarray] = {}
    res_out: Dict[int, np.ndarray] = {}
    for frame in frames:
        g = gt_frames.get(frame, np.zeros((0, 10)))
        r = res_frames.get(frame, np.zeros((0, 10)))
        if distractor_filter and len(g) and len(r):
            iou = box_iou_xywh(g[:, 2:6], r[:, 2:6])
            score = np.where(iou < 0.5 - np.finfo(float).eps, 0.0, iou)
            rows_i, cols_i = linear_sum_assignment(-score)
            matched = score[rows_i, cols_i] > np.finfo(float).eps
            rows_i, cols_i = rows_i[matched], cols_i[matched]
            is_distractor = np.isin(g[rows_i, 7].astype(np.int64),
                                    list(distractor_classes))
            r = np.delete(r, cols_i[is_distractor], axis=0)
        keep = g[:, 6].astype(np.int64) != 0
        if distractor_filter:
            keep &= g[:, 7].astype(np.int64) == PEDESTRIAN_CLASS
        gt_out[frame] = g[keep]
        res_out[frame] = r
    return frames, gt_out, res_out


def _accumulate(frames: Sequence[int], gt_by_frame: Dict[int, np.ndarray],
                res_by_frame: Dict[int, np.ndarray], max_dist: float):
    """Feed one preprocessed sequence to a motmetrics accumulator."""
    import motmetrics as mm
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in frames:
        g, r = gt_by_frame[frame], res_by_frame[frame]
        acc.update(g[:, 1].astype(np.int64), r[:, 1].astype(np.int64),
                   iou_distance(g[:, 2:6], r[:, 2:6], max_dist),
                   frameid=frame)
    return acc


def _hota_data(frames: Sequence[int], gt_by_frame: Dict[int, np.ndarray],
               res_by_frame: Dict[int, np.ndarray], seq: str) -> dict:
    """Build the per-sequence input of ``trackeval.metrics.HOTA`` as
    ``MotChallenge2DBox.get_preprocessed_seq_data`` does (ids relabelled to
    0..n-1, IoU similarity per timestep)."""
    gt_ids_all = np.unique(np.concatenate(
        [gt_by_frame[f][:, 1] for f in frames] + [np.zeros(0)]))
    tr_ids_all = np.unique(np.concatenate(
        [res_by_frame[f][:, 1] for f in frames] + [np.zeros(0)]))
    data = dict(seq=seq, num_timesteps=len(frames), gt_ids=[],
                tracker_ids=[], similarity_scores=[],
                num_gt_ids=len(gt_ids_all), num_tracker_ids=len(tr_ids_all))
    for f in frames:
        g, r = gt_by_frame[f], res_by_frame[f]
        data['gt_ids'].append(np.searchsorted(gt_ids_all, g[:, 1]))
        data['tracker_ids'].append(np.searchsorted(tr_ids_all, r[:, 1]))
        data['similarity_scores'].append(box_iou_xywh(g[:, 2:6], r[:, 2:6]))
    data['num_gt_dets'] = int(sum(len(x) for x in data['gt_ids']))
    data['num_tracker_dets'] = int(sum(len(x) for x in data['tracker_ids']))
    return data


def _hota_summary(res: dict) -> Dict[str, float]:
    return {k: float(np.mean(res[k]) * 100)
            for k in ('HOTA', 'DetA', 'AssA', 'LocA')}


def _mm_row(row, want_clear: bool, want_id: bool) -> Dict[str, float]:
    out: Dict[str, float] = {}
    names = ({**_MM_CLEAR} if want_clear else {})
    if want_id:
        names.update(_MM_IDENTITY)
    for mm_name, key in names.items():
        val = float(row[mm_name])
        if not np.isfinite(val):
            val = float('nan')  # e.g. MOTA of a sequence without ground truth
        if mm_name in _MM_PERCENT:
            val *= 100.0
        elif mm_name == 'motp':
            val = (1.0 - val) * 100.0
        out[key] = val
    if want_clear:
        for key in COUNT_KEYS:
            if key in out:
                out[key] = int(out[key])
        n = out['GT_tracks']
        for key in ('MT', 'PT', 'ML'):
            out[key + '%'] = 100.0 * out[key] / n if n else float('nan')
    return out


def evaluate_mot(gt: Dict[str, np.ndarray],
                 results: Dict[str, np.ndarray],
                 distractor_filter: bool = True,
                 metrics: Iterable[str] = ALLOWED_METRICS,
                 iou_threshold: float = 0.5,
                 distractor_classes: Sequence[int] = DISTRACTOR_CLASSES
                 ) -> Dict[str, Dict[str, float]]:
    """Evaluate tracker output against MOTChallenge ground truth.

    Args:
        gt: {sequence name: (R, 10) ground-truth rows}; every sequence of
            this dict is evaluated.
        results: {sequence name: (R', >=6) tracker rows}. Every sequence of
            ``gt`` must be present (an empty (0, 10) array means "no
            output"); a sequence missing here, or one not in ``gt``, is an
            error.
        distractor_filter: MOT16/17/20 preprocessing (see module doc). Turn
            off for MOT15 and for ground truth without class labels.
        metrics: any of ``'CLEAR'``, ``'Identity'``, ``'HOTA'``.
        iou_threshold: minimum IoU of a CLEAR/identity match (0.5 in the
            devkit).
        distractor_classes: classes removed by the distractor filter
            (``MOT20_DISTRACTOR_CLASSES`` for MOT20).

    Returns:
        dict: {sequence name: metrics, ..., ``'OVERALL'``: metrics}, where
        metrics has (per selected group) ``MOTA, MOTP, recall, precision, MT,
        PT, ML, MT%, PT%, ML%, FP, FN, IDs, Frag, GT_tracks, GT_dets,
        pred_dets, num_frames`` (CLEAR), ``IDF1, IDP, IDR`` (Identity),
        ``HOTA, DetA, AssA, LocA`` (HOTA). ``OVERALL`` combines the
        sequences as the devkit does (sums of counts, not mean of ratios).

    Raises:
        ValueError: unknown metric, sequences missing from ``results`` or
            unknown to ``gt``, empty ``gt``, malformed rows.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in metrics:
        if m not in ALLOWED_METRICS:
            raise ValueError(f'metrics: {m!r} is not one of {ALLOWED_METRICS}')
    if not gt:
        raise ValueError('no ground-truth sequences to evaluate')
    missing = [s for s in gt if s not in results]
    if missing:
        raise ValueError(f'results are missing for sequence(s) {missing}')
    extra = [s for s in results if s not in gt]
    if extra:
        raise ValueError(f'results for sequence(s) {extra} have no ground '
                         f'truth')
    seqs = list(gt)
    want_clear, want_id = 'CLEAR' in metrics, 'Identity' in metrics
    out: Dict[str, Dict[str, float]] = {s: {} for s in seqs + [OVERALL]}
    prepared = {
        s: preprocess_sequence(gt[s], results[s], distractor_filter, seq=s,
                               distractor_classes=distractor_classes)
        for s in seqs
    }

    if want_clear or want_id:
        import motmetrics as mm
        accs = [_accumulate(*prepared[s], max_dist=1.0 - iou_threshold)
                for s in seqs]
        mm_names = (list(_MM_CLEAR) if want_clear else []) + \
            (list(_MM_IDENTITY) if want_id else [])
        summary = mm.metrics.create().compute_many(
            accs, metrics=mm_names, names=seqs, generate_overall=True)
        for s in seqs:
            out[s].update(_mm_row(summary.loc[s], want_clear, want_id))
        out[OVERALL].update(
            _mm_row(summary.loc['OVERALL'], want_clear, want_id))

    if 'HOTA' in metrics:
        from trackeval.metrics import HOTA
        hota = HOTA()
        per_seq = {}
        for s in seqs:
            per_seq[s] = hota.eval_sequence(_hota_data(*prepared[s], seq=s))
            out[s].update(_hota_summary(per_seq[s]))
        out[OVERALL].update(_hota_summary(hota.combine_sequences(per_seq)))
    return out


def list_gt_sequences(gt_root: str, filename: str = 'gt.txt') -> List[str]:
    """Sequence folders of a MOTChallenge split: ``GT_ROOT/SEQ/gt/gt.txt``.

    Args:
        gt_root: the split folder (e.g. ``MOT17/train``).
        filename: the ground-truth file inside ``SEQ/gt``.

    Returns:
        list[str]: sorted sequence names.

    Raises:
        FileNotFoundError: ``gt_root`` is missing or holds no
            ``SEQ/gt/gt.txt``.
    """
    if not osp.isdir(gt_root):
        raise FileNotFoundError(f'ground-truth root {gt_root} is not a '
                                f'folder')
    seqs = sorted(d for d in os.listdir(gt_root)
                  if osp.isfile(osp.join(gt_root, d, 'gt', filename)))
    if not seqs:
        raise FileNotFoundError(
            f'no sequence with gt/{filename} under {gt_root} (expected '
            f'{gt_root}/SEQ/gt/{filename})')
    return seqs


def load_mot_gt(gt_root: str,
                seqs: Optional[Sequence[str]] = None,
                filename: str = 'gt.txt') -> Dict[str, np.ndarray]:
    """Load ground truth ``GT_ROOT/SEQ/gt/gt.txt`` of every (or the given)
    sequence.

    Args:
        gt_root: the split folder.
        seqs: sequence names; None: every folder with a ``gt/<filename>``.
        filename: the file inside ``SEQ/gt`` (e.g. ``gt_half-val.txt``).

    Returns:
        dict: {sequence name: (R, 10) rows}.

    Raises:
        FileNotFoundError: a requested sequence has no ``gt.txt``.
        MOTFormatError: a malformed line, naming ``file:line``.
    """
    seqs = list_gt_sequences(gt_root, filename) if seqs is None \
        else list(seqs)
    out = {}
    for s in seqs:
        path = osp.join(gt_root, s, 'gt', filename)
        if not osp.isfile(path):
            raise FileNotFoundError(f'ground truth of sequence {s!r} not '
                                    f'found: {path}')
        out[s] = read_mot_txt(path, min_columns=6, max_columns=10)
    return out


def load_mot_results(results_dir: str,
                     seqs: Sequence[str]) -> Dict[str, np.ndarray]:
    """Load tracker output ``RESULTS_DIR/SEQ.txt`` for the given sequences.

    A missing file is an error (an empty file is a valid "no output"): a
    forgotten sequence must not silently lower the scores.

    Args:
        results_dir: folder of result files.
        seqs: the sequences to load (those of the ground truth).

    Returns:
        dict: {sequence name: (R, 10) rows}.

    Raises:
        FileNotFoundError: naming the sequence and the expected path.
        MOTFormatError: a malformed line, naming ``file:line``.
    """
    out = {}
    for s in seqs:
        path = osp.join(results_dir, s + '.txt')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'results of sequence {s!r} not found: {path} (write an '
                f'empty file if the tracker output nothing)')
        out[s] = read_mot_txt(path, min_columns=6, max_columns=10)
    return out


def _fmt(key: str, val) -> str:
    if val is None or (isinstance(val, float) and np.isnan(val)):
        return '-'
    if key in COUNT_KEYS:
        return str(int(val))
    return f'{val:.1f}'


def format_table(metrics: Dict[str, Dict[str, float]],
                 keys: Sequence[str] = METRIC_KEYS) -> str:
    """Render the result of :func:`evaluate_mot` as a fixed-width table, one
    row per sequence and the ``OVERALL`` row last.

    Args:
        metrics: the dict :func:`evaluate_mot` returns.
        keys: the columns; keys missing from the results are left out.

    Returns:
        str: the table (no trailing newline).
    """
    rows = list(metrics)
    if OVERALL in rows:
        rows = [r for r in rows if r != OVERALL] + [OVERALL]
    present = [k for k in keys if any(k in metrics[r] for r in rows)]
    cells = [['sequence'] + list(present)]
    for r in rows:
        cells.append([r] + [_fmt(k, metrics[r].get(k)) for k in present])
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = []
    for c in cells:
        lines.append(' '.join(
            c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i])
            for i in range(len(c))))
    return '\n'.join(lines)


def evaluate_mot_files(gt_root: str,
                       results_dir: str,
                       seqs: Optional[Sequence[str]] = None,
                       gt_filename: str = 'gt.txt',
                       distractor_filter: bool = True,
                       mot20: bool = False,
                       metrics: Iterable[str] = ALLOWED_METRICS
                       ) -> Dict[str, Dict[str, float]]:
    """Evaluate MOTChallenge result files against the ground truth
    (``tools/analysis/eval_mot.py``).

    Args:
        gt_root: folder with ``SEQ/gt/<gt_filename>``.
        results_dir: folder with ``SEQ.txt`` files; a missing file is an
            error (an empty file means "no output").
        seqs: evaluate only these sequences (default: every sequence of
            ``gt_root``).
        gt_filename: the ground-truth file inside ``SEQ/gt``.
        distractor_filter: the MOT16/17/20 distractor preprocessing; False
            ignores the class column (MOT15, pedestrian-only ground truth).
        mot20: MOT20 preprocessing (class 6 is a distractor too).
        metrics: metric groups of :data:`ALLOWED_METRICS` to compute.

    Returns:
        dict: {sequence: {metric: value}, ``OVERALL``: {...}}, as
        :func:`evaluate_mot` returns it.

    Raises:
        FileNotFoundError: missing ground truth or result file.
        MOTFormatError: a malformed line, naming ``file:line``.
        ValueError: ground truth that the preprocessing cannot use.
    """
    gt = load_mot_gt(gt_root, seqs, gt_filename)
    results = load_mot_results(results_dir, list(gt))
    return evaluate_mot(
        gt,
        results,
        distractor_filter=distractor_filter,
        distractor_classes=MOT20_DISTRACTOR_CLASSES
        if mot20 else DISTRACTOR_CLASSES,
        metrics=metrics)


def metrics_to_json(value):
    """``value`` (nested dicts of metrics) with NaN (undefined) as None, so
    that ``json.dump`` writes ``null``."""
    if isinstance(value, dict):
        return {k: metrics_to_json(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
