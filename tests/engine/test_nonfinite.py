"""A NaN/Inf loss stops training with a clear error, before the update, and
leaves the last checkpoint untouched."""
import math
import os.path as osp

import pytest
import torch
from test_e2e_train_test import data_opts, tiny_model_opts

from mmtrack_kd.apis import train_model
from mmtrack_kd.engine import NonFiniteLossError, non_finite_terms
from mmtrack_kd.utils.tools import parse_cfg_options

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = 'configs/cstrack/cstrack_yolov5n_synthmot.py'


def tiny_train(data_root, work_dir, max_epochs):
    """Train the tiny CSTrack as ``tools/train.py`` would."""
    opts = parse_cfg_options([
        f'train_cfg.max_epochs={max_epochs}', 'train_cfg.val_interval=100',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'default_hooks.logger.interval=1',
        f'experiment_name=nonfinite_{id(work_dir)}'
    ] + data_opts(data_root) + tiny_model_opts())
    return train_model(osp.join(ROOT, CFG), work_dir=str(work_dir),
                       cfg_options=opts)


def test_non_finite_terms():
    losses = dict(
        loss_box=torch.tensor(1.0),
        loss_obj=[torch.tensor(0.5), torch.tensor(float('inf'))],
        loss_id=torch.tensor([1.0, float('nan')]),
        acc=torch.tensor(float('nan')))  # not a loss: not summed, not checked
    bad = non_finite_terms(losses)
    assert list(bad) == ['loss_obj', 'loss_id']
    assert bad['loss_obj'] == math.inf and math.isnan(bad['loss_id'])
    assert non_finite_terms(dict(loss_box=torch.tensor(2.0))) == {}


@pytest.mark.parametrize('bad_value', [float('nan'), float('inf')])
def test_nan_loss_stops_training_keeps_checkpoint(tiny_synthmot, tmp_path,
                                                  monkeypatch, bad_value):
    from mmtrack_kd.models.mot.cstrack import CSTrack
    work = tmp_path / 'work'
    bad_call = 7  # 10 frames, batch 2: 5 iterations per epoch -> epoch 2
    seen = dict(calls=0)
    real_loss = CSTrack.loss

    def loss(self, inputs, data_samples, **kwargs):
        losses = real_loss(self, inputs, data_samples, **kwargs)
        seen['calls'] += 1
        if seen['calls'] == bad_call:
            seen['ckpt'] = (work / 'epoch_1.pth').read_bytes()
            seen['last'] = (work / 'last_checkpoint').read_text()
            seen['params'] = {
                k: v.detach().clone()
                for k, v in self.named_parameters()
            }
            seen['model'] = self
            losses['loss_id'] = losses['loss_id'] * bad_value
        return losses

    monkeypatch.setattr(CSTrack, 'loss', loss)
    with pytest.raises(NonFiniteLossError) as err:
        tiny_train(tiny_synthmot, work, max_epochs=2)
    msg = str(err.value)
    assert isinstance(err.value, FloatingPointError)
    assert 'loss_id=' + str(bad_value) in msg, msg
    assert 'loss_box' not in msg and 'loss_obj' not in msg, msg
    assert 'epoch 2, iteration 7' in msg, msg
    assert str(work / 'epoch_1.pth') in msg, msg
    assert (err.value.epoch, err.value.iter) == (2, 7)
    assert list(err.value.terms) == ['loss_id']
    # nothing written after the failure, the good checkpoint intact
    assert (work / 'epoch_1.pth').read_bytes() == seen['ckpt']
    assert (work / 'last_checkpoint').read_text() == seen['last']
    assert not (work / 'epoch_2.pth').exists()
    # the update of the bad iteration was not applied
    for name, param in seen['model'].named_parameters():
        assert torch.equal(param.detach(), seen['params'][name]), name
        assert torch.isfinite(param).all(), name
    # the forward hook is removed when training fails
    assert not seen['model']._forward_hooks


def test_non_finite_gradient_stops_before_checkpoint(tmp_path):
    """A finite loss with a NaN gradient (sqrt at 0): the update is applied,
    but training stops before the epoch's checkpoint is written."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch import nn
    from torch.utils.data import DataLoader

    from mmtrack_kd.engine import NonFiniteLossHook

    class SqrtAtZero(BaseModel):

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, inputs, mode='tensor'):
            out = self.lin(inputs)
            return dict(loss=torch.sqrt((out * 0).sum()))

    runner = Runner(
        model=SqrtAtZero(),
        work_dir=str(tmp_path),
        experiment_name=f'grad_nan_{id(tmp_path)}',
        train_dataloader=DataLoader(
            [dict(inputs=torch.ones(2))] * 4, batch_size=2),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1), clip_grad=dict(max_norm=1.0)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(logger=None),
        custom_hooks=[NonFiniteLossHook()])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    assert 'non-finite gradient grad_norm=nan at epoch 1, iteration 1' in \
        str(err.value)
    assert 'applied in memory but is not saved' in str(err.value)
    assert not (tmp_path / 'epoch_1.pth').exists()
