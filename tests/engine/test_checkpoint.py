"""Atomic checkpoints: a crash while saving leaves the previous checkpoint
and ``last_checkpoint`` intact and no partial file under the final name."""
import os
import os.path as osp

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import BaseModel
from mmengine.runner import Runner, find_latest_checkpoint
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mmtrack_kd.engine import AtomicCheckpointHook, AtomicRunner
from mmtrack_kd.engine.checkpoint import is_local_path


class _Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.lin(inputs)
        if mode == 'loss':
            return dict(loss=((out - labels)**2).mean())
        return out


class _Data(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, labels=x[:1] * 2)


def make_runner(work_dir, runner_cls=AtomicRunner, hook=None, max_epochs=1):
    hook = hook or AtomicCheckpointHook(interval=1, max_keep_ckpts=1)
    return runner_cls(
        model=_Toy(),
        work_dir=str(work_dir),
        experiment_name=f'ckpt_{runner_cls.__name__}_{id(work_dir)}',
        train_dataloader=DataLoader(_Data(), batch_size=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=hook, logger=None),
        default_scope='mmdet')


def leftovers(folder):
    """Hidden temporary files left in ``folder``."""
    return [n for n in os.listdir(folder) if n.startswith('.')]


def half_put(fail_on):
    """A ``LocalBackend.put`` that, for paths containing ``fail_on``, writes
    half the bytes to the path (as a crash would) and raises."""
    real_put = LocalBackend.put

    def put(self, obj, filepath):
        if fail_on in osp.basename(str(filepath)):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise OSError('disk full (simulated)')
        return real_put(self, obj, filepath)

    return put


def test_torch_save_crash_keeps_previous_checkpoint(tmp_path, monkeypatch):
    runner = make_runner(tmp_path)
    runner.train()
    ckpt = tmp_path / 'epoch_1.pth'
    before = ckpt.read_bytes()
    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.seek(f.tell() // 2)
        f.truncate()
        raise RuntimeError('killed while saving (simulated)')

    monkeypatch.setattr(torch, 'save', half_save)
    with pytest.raises(RuntimeError, match='simulated'):
        runner.save_checkpoint(str(tmp_path), 'epoch_1.pth')
    assert ckpt.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_write_crash_keeps_previous_checkpoint(tmp_path, monkeypatch):
    """Overwriting a checkpoint of the same name (a resumed run, a best
    checkpoint) with a write that dies half-way."""
    runner = make_runner(tmp_path)
    runner.train()
    ckpt = tmp_path / 'epoch_1.pth'
    before = ckpt.read_bytes()
    monkeypatch.setattr(LocalBackend, 'put', half_put('epoch_1'))
    with pytest.raises(OSError, match='simulated'):
        runner.save_checkpoint(str(tmp_path), 'epoch_1.pth')
    assert ckpt.read_bytes() == before
    assert leftovers(tmp_path) == []
    # a successful save replaces the file
    monkeypatch.undo()
    runner.save_checkpoint(str(tmp_path), 'epoch_1.pth', meta=dict(x=1))
    assert torch.load(str(ckpt), weights_only=False)['meta']['x'] == 1


@pytest.mark.parametrize('runner_cls', [Runner, AtomicRunner])
def test_hook_crash_in_next_save_keeps_last_good(tmp_path, monkeypatch,
                                                 runner_cls):
    """With ``max_keep_ckpts=1`` the stock hook deletes epoch_1 before it
    writes epoch_2; the atomic hook keeps epoch_1 and ``last_checkpoint``
    until epoch_2 is complete (with the stock runner too)."""
    monkeypatch.setattr(LocalBackend, 'put', half_put('epoch_2'))
    runner = make_runner(tmp_path, runner_cls=runner_cls, max_epochs=2)
    with pytest.raises(OSError, match='simulated'):
        runner.train()
    assert sorted(n for n in os.listdir(tmp_path)
                  if n.endswith('.pth')) == ['epoch_1.pth']
    assert leftovers(tmp_path) == []
    last = (tmp_path / 'last_checkpoint').read_text()
    assert last == str(tmp_path / 'epoch_1.pth')
    ckpt = torch.load(last, weights_only=False)
    assert ckpt['meta']['epoch'] == 1
    assert find_latest_checkpoint(str(tmp_path)) == last


def test_hook_rotation_and_last_checkpoint(tmp_path):
    runner = make_runner(tmp_path, max_epochs=3)
    runner.train()
    assert sorted(n for n in os.listdir(tmp_path)
                  if n.endswith('.pth')) == ['epoch_3.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'epoch_3.pth')
    ckpt = torch.load(str(tmp_path / 'epoch_3.pth'), weights_only=False)
    assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [3]
    assert leftovers(tmp_path) == []


def test_stock_hook_subclass_and_paths():
    assert issubclass(AtomicCheckpointHook, CheckpointHook)
    assert is_local_path('/tmp/work')
    assert is_local_path('work_dirs/x', dict(backend='local'))
    assert not is_local_path('s3://bucket/x')
    assert not is_local_path('/tmp/x', dict(backend='petrel'))


def test_runner_type_builds_atomic_runner(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import RUNNERS
    cfg = Config.fromfile(
        osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))),
                 'configs/_base_/default_runtime.py'))
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    hook_types = [h['type'] for h in cfg.custom_hooks]
    assert 'NonFiniteLossHook' in hook_types and 'RNGStateHook' in hook_types
    runner_cls = RUNNERS.get(cfg.runner_type)
    assert runner_cls is AtomicRunner
