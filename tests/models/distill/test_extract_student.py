"""extract_student (``tools/extract_student.py``): plain student checkpoint,
strict round trip."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from distill_toys import ToyNet
from mmdet.registry import MODELS
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import get_state_dict, load_checkpoint

import mmtrack_kd.models.distill  # noqa: F401
from mmtrack_kd.apis import extract_student

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TOOL = osp.join(ROOT, 'tools', 'extract_student.py')


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_round_trip_loads_strictly(tmp_path):
    teacher_ckpt = str(tmp_path / 't.pth')
    torch.save(ToyNet(16).state_dict(), teacher_ckpt)
    model = MODELS.build(dict(
        type='MOTDistiller',
        student=dict(type='DistillTestToyNet', width=8),
        teacher=dict(type='DistillTestToyNet', width=16),
        teacher_ckpt=teacher_ckpt,
        student_recorders=dict(n=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(n=dict(type='ModuleOutputs', source='neck')),
        connectors=dict(c=dict(type='ConvBNConnector')),
        distill_losses=dict(kd=dict(type='DistillTestMSELoss')),
        loss_forward_mappings=dict(kd=dict(
            preds_S=dict(from_student=True, recorder='n', data_idx=0,
                         connector='c'),
            preds_T=dict(from_student=False, recorder='n', data_idx=0))),
        dry_run_input_shape=(1, 3, 16, 16)))
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.5)  # differ from a fresh init
    kd_ckpt = str(tmp_path / 'kd.pth')
    torch.save(dict(meta=dict(epoch=7, dataset_meta=dict(classes=('p', ))),
                    state_dict=get_state_dict(model),
                    optimizer=dict(state={}),
                    message_hub=dict(log_scalars=dict(
                        loss=HistoryBuffer([1.0], [1])))), kd_ckpt)
    out = str(tmp_path / 'sub' / 'student.pth')
    assert extract_student(kd_ckpt, out) == len(model.student.state_dict())
    ckpt = torch.load(out)
    assert ckpt['meta']['epoch'] == 7
    assert set(ckpt) == {'meta', 'state_dict'}
    assert not any(k.startswith(('student.', 'connectors', 'teacher'))
                   for k in ckpt['state_dict'])
    fresh = ToyNet(8)
    load_checkpoint(fresh, out, strict=True)
    for k, v in model.student.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    assert list(tmp_path.joinpath('sub').iterdir()) == [
        tmp_path / 'sub' / 'student.pth']  # no temp file left


def test_not_a_kd_checkpoint(tmp_path):
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=ToyNet(8).state_dict()), path)
    out = str(tmp_path / 'o.pth')
    with pytest.raises(ValueError, match='no "student." keys'):
        extract_student(path, out)
    assert not osp.exists(out)
    with pytest.raises(FileNotFoundError):
        extract_student(str(tmp_path / 'missing.pth'), out)
    assert not osp.exists(out)


def test_cli_errors_exit_1(tmp_path):
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=ToyNet(8).state_dict()), path)
    out = str(tmp_path / 'o.pth')
    proc = run_tool(path, out)
    assert proc.returncode == 1
    assert 'extract_student:' in proc.stderr
    assert 'no "student." keys' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not osp.exists(out)
