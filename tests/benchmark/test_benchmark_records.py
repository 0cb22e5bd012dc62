"""mmtrack_kd.benchmark.records: records, reuse of another run folder,
fingerprints, parameter counts and loss curves."""
import json

import pytest
import torch

from mmtrack_kd.benchmark import records
from mmtrack_kd.benchmark.plan import BenchmarkPlan


def write_ann(data, marker):
    ann = data / 'annotations'
    ann.mkdir(parents=True, exist_ok=True)
    for split in ('train', 'val', 'test'):
        (ann / f'{split}_cocoformat.json').write_text(f'{split}{marker}')


def test_teacher_from_reuses_plain_models_only(tmp_path):
    src = tmp_path / 'src' / 'records'
    src.mkdir(parents=True)
    for name in ('teacher__seed0', 'student__seed0', 'ours__seed0'):
        (src / f'{name}.json').write_text(json.dumps(dict(name=name)))
    plan = BenchmarkPlan(str(tmp_path / 'b'), 'micro', 1, ['ours'],
                         data=str(tmp_path / 'd'),
                         teacher_from=str(tmp_path / 'src'))
    assert records.load_record(plan, 'teacher', 0) == dict(
        name='teacher__seed0')
    assert records.load_record(plan, 'student', 0) == dict(
        name='student__seed0')
    assert records.load_record(plan, 'ours', 0) is None
    assert set(records.collect_records(plan)) == {'teacher', 'student'}
    # a record of the run folder wins
    records.write_record(plan, dict(method='student', seed=0, own=True))
    assert records.load_record(plan, 'student', 0) == dict(
        method='student', seed=0, own=True)


def test_check_teacher_from_needs_the_same_data(tmp_path):
    data = tmp_path / 'd'
    write_ann(data, 'a')
    plan = BenchmarkPlan(str(tmp_path / 'b'), 'micro', 1, [], data=str(data),
                         teacher_from=str(tmp_path / 'src'))
    with pytest.raises(RuntimeError, match='no teacher record'):
        records.check_teacher_from(plan)
    src = BenchmarkPlan(str(tmp_path / 'src'), 'micro', 1, [])
    fingerprint = records.data_fingerprint(str(data))
    records.json_dump(dict(data_fingerprint=fingerprint),
                      src.record_path('teacher', 0))
    records.check_teacher_from(plan)
    write_ann(data, 'b')
    assert records.data_fingerprint(str(data)) != fingerprint
    with pytest.raises(RuntimeError, match='other data'):
        records.check_teacher_from(plan)


def test_missing_splits(tmp_path):
    plan = BenchmarkPlan(str(tmp_path), 'micro', 1, [],
                         splits=['val', 'test'])
    assert records.missing_splits(plan, dict(metrics=dict(test={}))) == [
        'val']


def test_param_count_skips_bn_statistics(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                torch.nn.BatchNorm2d(4))
    path = tmp_path / 'm.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    assert records.param_count(str(path)) == 3 * 4 * 9 + 4 + 4 + 4


def test_loss_curve_merges_resumed_runs(tmp_path):
    for stamp, rows in (('20240101', [(1, 3.0), (2, 2.0)]),
                        ('20240102', [(2, 2.5), (3, 1.0)])):
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        lines = [json.dumps(dict(step=s, loss=v)) for s, v in rows]
        (vis / 'scalars.json').write_text(
            '\n'.join(lines + ['not json', json.dumps(dict(step=9))]))
    assert records.training_curves(str(tmp_path))[0] == [[1, 3.0], [2, 2.5],
                                                 [3, 1.0]]


def test_balance_curves_keep_the_balance_scalars_only(tmp_path):
    vis = tmp_path / '20240101' / 'vis_data'
    vis.mkdir(parents=True)
    rows = [dict(step=10, loss=3.0, clipped_frac=1.0, grad_norm=50.0,
                 gnorm_task=2.0, gnorm_kd_resp=40.0, kd_scale_kd_resp=3.0,
                 lr=0.01),
            dict(step=20, loss=2.0, clipped_frac=0.5, grad_norm=9.0)]
    (vis / 'scalars.json').write_text(
        '\n'.join(json.dumps(r) for r in rows))
    loss, curves = records.training_curves(str(tmp_path))
    assert loss == [[10, 3.0], [20, 2.0]]
    assert set(curves) == {'clipped_frac', 'grad_norm', 'gnorm_task',
                           'gnorm_kd_resp', 'kd_scale_kd_resp'}
    assert curves['clipped_frac'] == [[10, 1.0], [20, 0.5]]
    assert curves['gnorm_task'] == [[10, 2.0]]


def test_json_dump_allows_nan(tmp_path):
    path = tmp_path / 'x' / 'r.json'
    records.json_dump(dict(a=float('nan')), str(path))
    assert 'NaN' in path.read_text()
