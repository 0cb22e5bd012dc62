"""The per-run records of the KD benchmark
(``OUT/records/METHOD__seedS.json``) and what goes into them: the parameter
count and the loss curve (the data fingerprint, config hash and code
version: :mod:`mmtrack_kd.benchmark.provenance`)."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

from .plan import METHODS, TEACHER_SEED, BenchmarkPlan
from .provenance import data_fingerprint

__all__ = [
    'json_dump', 'data_fingerprint', 'param_count',
    'scalar_curves', 'is_balance_key', 'training_curves',
    'record_file', 'load_record', 'write_record', 'missing_splits',
    'check_teacher_data', 'check_teacher_from', 'collect_records'
]


def json_dump(obj, path: str) -> None:
    """Write ``obj`` as indented JSON atomically (NaN allowed)."""
    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, default=float, allow_nan=True)


def param_count(ckpt: str) -> int:
    """Learnable tensors of a checkpoint (BN running stats excluded)."""
    import torch
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    state = state.get('state_dict', state)
    skip = ('running_mean', 'running_var', 'num_batches_tracked')
    return int(sum(v.numel() for k, v in state.items()
                   if hasattr(v, 'numel') and not k.endswith(skip)))


def scalar_curves(work: str, keep) -> Dict[str, List[List[float]]]:
    """``{key: [[iter, value], ...]}`` of the scalars that ``keep(key)``
    accepts, from mmengine's ``WORK/*/vis_data/scalars.json`` (all runs of
    a resumed training, later runs win)."""
    points: Dict[str, Dict[int, float]] = {}
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if 'step' not in row:
                    continue
                for key, value in row.items():
                    if key != 'step' and keep(key) and \
                            isinstance(value, (int, float)):
                        points.setdefault(key, {})[int(row['step'])] = \
                            float(value)
    return {k: [[i, v[i]] for i in sorted(v)] for k, v in points.items()}


def is_balance_key(key: str) -> bool:
    """A logged scalar of a training's balance: ``clipped_frac``
    (:class:`~mmtrack_kd.engine.GradClipMonitorHook`), ``grad_norm`` and,
    with a distiller's ``loss_balance``, ``gnorm_*`` and ``kd_scale_*``."""
    return key in ('clipped_frac', 'grad_norm') or \
        key.startswith(('gnorm_', 'kd_scale_'))


def training_curves(work: str) -> Tuple[List[List[float]],
                                        Dict[str, List[List[float]]]]:
    """The total loss curve ``[[iter, loss], ...]`` and the balance curves
    (:func:`is_balance_key`) of a training, from one read of its
    ``scalars.json`` files (see :func:`scalar_curves`)."""
    curves = scalar_curves(work, lambda k: k == 'loss' or is_balance_key(k))
    return curves.pop('loss', []), curves


def record_file(plan: BenchmarkPlan, method: str, seed: int) -> str:
    """The file the record of (method, seed) is read from: the run
    folder's, else, for a teacher or plain student, that of
    ``plan.teacher_from`` when it exists there."""
    path = plan.record_path(method, seed)
    if not osp.isfile(path) and METHODS[method][0] != 'kd' and \
            plan.teacher_from:
        other = osp.join(plan.teacher_from, 'records', osp.basename(path))
        if osp.isfile(other):
            return other
    return path


def load_record(plan: BenchmarkPlan, method: str,
                seed: int) -> Optional[dict]:
    """The record of (method, seed) (see :func:`record_file`); None when
    there is none."""
    path = record_file(plan, method, seed)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_record(plan: BenchmarkPlan, rec: dict) -> None:
    """Write ``rec`` (with ``method`` and ``seed``) into the run folder."""
    json_dump(rec, plan.record_path(rec['method'], rec['seed']))


def missing_splits(plan: BenchmarkPlan, rec: dict) -> List[str]:
    """The plan's splits that ``rec`` has no metrics of."""
    return [x for x in plan.splits if x not in rec['metrics']]


def check_teacher_data(plan: BenchmarkPlan,
                       fingerprint: Optional[str] = None) -> None:
    """A recorded teacher (of the run folder or ``--teacher-from``) must
    have been trained on the plan's data, as it is now; checked on every
    run, before any KD training uses it.

    Args:
        plan (BenchmarkPlan): the run folder.
        fingerprint (str, optional): the data fingerprint taken before
            training (default: taken now).

    Raises:
        RuntimeError: the teacher's record names other data (names the
            record file).
    """
    rec = load_record(plan, 'teacher', TEACHER_SEED)
    if rec is None:
        return
    fingerprint = fingerprint or data_fingerprint(plan.data)
    if rec.get('data_fingerprint') != fingerprint:
        where = ('--teacher-from: the teacher of ' + plan.teacher_from
                 if plan.teacher_from and not osp.isfile(
                     plan.record_path('teacher', TEACHER_SEED)) else
                 'the teacher')
        raise RuntimeError(
            f'{where} was trained on other data than {plan.data} '
            f'(data_fingerprint of '
            f'{record_file(plan, "teacher", TEACHER_SEED)}); its KD '
            'students would learn from a teacher of other data')


def check_teacher_from(plan: BenchmarkPlan,
                       fingerprint: Optional[str] = None) -> None:
    """The reused teacher (``--teacher-from``) must exist and be trained on
    the plan's data.

    Raises:
        RuntimeError: no teacher record, or one of other data.
    """
    if not plan.teacher_from:
        return
    if load_record(plan, 'teacher', TEACHER_SEED) is None:
        raise RuntimeError(f'--teacher-from: no teacher record in '
                           f'{plan.teacher_from}/records')
    check_teacher_data(plan, fingerprint)


def collect_records(plan: BenchmarkPlan) -> Dict[str, Dict[str, dict]]:
    """``{method: {str(seed): record}}`` of every recorded run of the
    plan."""
    records: Dict[str, Dict[str, dict]] = {}
    for method, seed in plan.runs():
        rec = load_record(plan, method, seed)
        if rec is not None:
            records.setdefault(method, {})[str(seed)] = rec
    return records
