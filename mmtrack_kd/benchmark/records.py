"""The per-run records of the KD benchmark
(``OUT/records/METHOD__seedS.json``) and what goes into them: the data
fingerprint, the parameter count and the loss curve."""
import glob
import hashlib
import json
import os.path as osp
from typing import Dict, List, Optional

from .plan import METHODS, TEACHER_SEED, BenchmarkPlan


def json_dump(obj, path: str) -> None:
    """Write ``obj`` as indented JSON atomically (NaN allowed)."""
    from mmtrack_kd.utils.io import atomic_write
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, default=float, allow_nan=True)


def data_fingerprint(data: str) -> str:
    """sha1 of the three annotation files of a SynthMOT folder (records of
    different data must not be compared)."""
    digest = hashlib.sha1()
    for split in ('train', 'val', 'test'):
        with open(osp.join(data, 'annotations', f'{split}_cocoformat.json'),
                  'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def param_count(ckpt: str) -> int:
    """Learnable tensors of a checkpoint (BN running stats excluded)."""
    import torch
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    state = state.get('state_dict', state)
    skip = ('running_mean', 'running_var', 'num_batches_tracked')
    return int(sum(v.numel() for k, v in state.items()
                   if hasattr(v, 'numel') and not k.endswith(skip)))


def loss_curve(work: str) -> List[List[float]]:
    """[[iter, loss], ...] from mmengine's ``WORK/*/vis_data/scalars.json``
    (all runs of a resumed training, later runs win)."""
    points = {}
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if 'loss' in row and 'step' in row:
                    points[int(row['step'])] = float(row['loss'])
    return [[k, points[k]] for k in sorted(points)]


def load_record(plan: BenchmarkPlan, method: str,
                seed: int) -> Optional[dict]:
    """The record of (method, seed) in the run folder, else, for a teacher
    or plain student, in ``plan.teacher_from``; None when there is none."""
    path = plan.record_path(method, seed)
    if not osp.isfile(path) and METHODS[method][0] != 'kd' and \
            plan.teacher_from:
        path = osp.join(plan.teacher_from, 'records', osp.basename(path))
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


def check_teacher_from(plan: BenchmarkPlan) -> None:
    """The reused teacher (``--teacher-from``) must exist and be trained on
    the plan's data.

    Raises:
        RuntimeError: no teacher record, or one of other data.
    """
    if not plan.teacher_from:
        return
    rec = load_record(plan, 'teacher', TEACHER_SEED)
    if rec is None:
        raise RuntimeError(f'--teacher-from: no teacher record in '
                           f'{plan.teacher_from}/records')
    if rec.get('data_fingerprint') != data_fingerprint(plan.data):
        raise RuntimeError(f'--teacher-from: the teacher of '
                           f'{plan.teacher_from} was trained on other '
                           f'data than {plan.data}')


def collect_records(plan: BenchmarkPlan) -> Dict[str, Dict[str, dict]]:
    """``{method: {str(seed): record}}`` of every recorded run of the
    plan."""
    records: Dict[str, Dict[str, dict]] = {}
    for method, seed in plan.runs():
        rec = load_record(plan, method, seed)
        if rec is not None:
            records.setdefault(method, {})[str(seed)] = rec
    return records
