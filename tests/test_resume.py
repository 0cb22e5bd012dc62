"""Resuming an interrupted training with ``tools/train.py --resume`` reaches
the same weights as the uninterrupted run (CPU, deterministic, num_workers=0).
"""
import os.path as osp

import pytest
import torch
from test_e2e_train_test import data_opts, tiny_model_opts

from mmtrack_kd.apis import train_model
from mmtrack_kd.utils.tools import parse_cfg_options

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = 'configs/cstrack/cstrack_yolov5n_synthmot.py'


def train(data_root, work_dir, max_epochs, resume=False, extra=()):
    opts = parse_cfg_options([
        f'train_cfg.max_epochs={max_epochs}', 'train_cfg.val_interval=100',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'randomness.seed=0',
        'randomness.deterministic=True',
        f'experiment_name=resume_{osp.basename(str(work_dir))}_{max_epochs}'
    ] + data_opts(data_root) + tiny_model_opts() + list(extra))
    # ``tools/train.py --resume``: from the work dir's latest checkpoint
    train_model(osp.join(ROOT, CFG), work_dir=str(work_dir),
                cfg_options=opts, resume='auto' if resume else None)
    return torch.load(
        str(work_dir / f'epoch_{max_epochs}.pth'), map_location='cpu',
        weights_only=False)


def assert_same_state(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f'{what}: {key} differs'


@pytest.fixture(scope='module')
def uninterrupted(tiny_synthmot, tmp_path_factory):
    return train(tiny_synthmot, tmp_path_factory.mktemp('full'), 2)


def test_resume_matches_uninterrupted(tiny_synthmot, tmp_path, uninterrupted):
    work = tmp_path / 'interrupted'
    first = train(tiny_synthmot, work, 1)
    assert 'rng_state' in first
    resumed = train(tiny_synthmot, work, 2, resume=True)
    assert resumed['meta']['iter'] == uninterrupted['meta']['iter'] == 10
    assert_same_state(resumed['state_dict'], uninterrupted['state_dict'],
                      'model')
    opt_r = resumed['optimizer']['state']
    opt_u = uninterrupted['optimizer']['state']
    assert opt_r.keys() == opt_u.keys()
    for idx in opt_r:
        assert_same_state(opt_r[idx], opt_u[idx], f'optimizer state {idx}')
    assert [s['last_step'] for s in resumed['param_schedulers']] == [
        s['last_step'] for s in uninterrupted['param_schedulers']
    ]
    # training did move the weights (the comparison is not trivially true)
    changed = [
        k for k, v in first['state_dict'].items()
        if v.is_floating_point() and not torch.equal(
            v, uninterrupted['state_dict'][k])
    ]
    assert changed
