"""Resuming an interrupted distillation run (``tools/train.py --resume``)
reaches the same weights as the uninterrupted run: the student, the
connectors and the optimizer state are restored from the checkpoint, the
frozen teacher is rebuilt from ``teacher_ckpt`` (it is not in the
checkpoint), and ``distill_stop_iter`` counts the iterations of the whole
run across the restart."""
import hashlib
import os.path as osp

import pytest
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from test_e2e_train_test import data_opts

from mmtrack_kd.apis.train import train_model
from mmtrack_kd.utils.tools import parse_cfg_options

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STOP_ITER = 7  # iterations 0-6 distil; 5 per epoch, so the stop is in epoch 2
KD_LOSSES = ('loss_kd_id', 'loss_kd_feat', 'loss_kd_resp')

TEACHER_CFG = """
_base_ = ['{root}/configs/cstrack/cstrack_yolov5s_synthmot.py']
model = dict(backbone=dict(widen_factor=0.25), neck=dict(out_channels=64),
             id_head=dict(embed_channels=64, saan=dict(mid_channels=32),
                          num_ids=8))
"""

KD_CFG = """_base_ = ['{root}/configs/kd/cstrack_s2n_kd_synthmot.py']
model = dict(
    teacher='{teacher}', teacher_ckpt='{ckpt}', distill_stop_iter={stop},
    student=dict(backbone=dict(widen_factor=0.125),
                 neck=dict(out_channels=32),
                 id_head=dict(embed_channels=32, saan=dict(mid_channels=32))))
custom_hooks = _base_.custom_hooks + [dict(type='KDProbeHook')]
"""


def assert_same_state(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        assert torch.equal(a[key], b[key]), f'{what}: {key} differs'


@HOOKS.register_module(force=True)
class KDProbeHook(Hook):
    """Keeps the distillation losses of every iteration (0-based, as the
    distiller reads it from the MessageHub) and the teacher of a finished
    training (it is not in the checkpoints, so this is the only way to see
    it)."""

    teachers = []
    kd_losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        KDProbeHook.kd_losses[runner.iter] = {
            name: float(outputs[name]) for name in KD_LOSSES}

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        KDProbeHook.teachers.append(model.teacher)


def sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.fixture(scope='module')
def kd_config(tmp_path_factory):
    """A tiny teacher (random weights, saved as a checkpoint) and the
    SynthMOT KD config pointing at it."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import mmtrack_kd  # noqa: F401
    tmp = tmp_path_factory.mktemp('kd_resume_cfg')
    teacher_cfg = tmp / 'teacher.py'
    teacher_cfg.write_text(TEACHER_CFG.format(root=ROOT))
    torch.manual_seed(1)
    with DefaultScope.overwrite_default_scope('mmdet'):
        teacher = MODELS.build(Config.fromfile(str(teacher_cfg)).model)
    ckpt = tmp / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    kd_cfg = tmp / 'kd.py'
    kd_cfg.write_text(
        KD_CFG.format(root=ROOT, teacher=teacher_cfg, ckpt=ckpt,
                      stop=STOP_ITER))
    return dict(cfg=str(kd_cfg), ckpt=ckpt, hash=sha(ckpt),
                teacher_state={k: v.clone()
                               for k, v in teacher.state_dict().items()})


def train_kd(cfg, data_root, work_dir, max_epochs, resume=False):
    options = [
        f'train_cfg.max_epochs={max_epochs}',
        'train_cfg.val_interval=100', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'randomness.seed=0',
        'randomness.deterministic=True',
        f'experiment_name=resume_kd_{osp.basename(str(work_dir))}_'
        f'{max_epochs}{"_r" if resume else ""}'
    ] + data_opts(data_root)
    KDProbeHook.teachers.clear()
    KDProbeHook.kd_losses.clear()
    train_model(cfg, work_dir=str(work_dir),
                cfg_options=parse_cfg_options(options),
                resume='auto' if resume else None)
    ckpt = torch.load(
        str(work_dir / f'epoch_{max_epochs}.pth'), map_location='cpu',
        weights_only=False)
    (teacher, ) = KDProbeHook.teachers
    return ckpt, teacher, dict(KDProbeHook.kd_losses)


@pytest.fixture(scope='module')
def uninterrupted(kd_config, tiny_synthmot, tmp_path_factory):
    work = tmp_path_factory.mktemp('kd_full')
    ckpt, _, kd_losses = train_kd(kd_config['cfg'], tiny_synthmot, work, 2)
    return ckpt, kd_losses


def test_kd_resume_matches_uninterrupted(kd_config, tiny_synthmot, tmp_path,
                                         uninterrupted):
    full, full_losses = uninterrupted
    work = tmp_path / 'interrupted'
    first, _, first_losses = train_kd(kd_config['cfg'], tiny_synthmot, work,
                                      1)
    assert first['meta']['iter'] == 5 < STOP_ITER
    resumed, teacher, resumed_losses = train_kd(
        kd_config['cfg'], tiny_synthmot, work, 2, resume=True)
    assert resumed['meta']['iter'] == full['meta']['iter'] == 10

    # the student and the connectors, bit for bit; no teacher in either
    state_r, state_u = resumed['state_dict'], full['state_dict']
    assert any(k.startswith('connectors.') for k in state_r)
    assert not any(k.startswith('teacher') for k in state_r)
    assert_same_state(state_r, state_u, 'model')
    opt_r = resumed['optimizer']['state']
    opt_u = full['optimizer']['state']
    assert opt_r.keys() == opt_u.keys()
    for idx in opt_r:
        assert_same_state(opt_r[idx], opt_u[idx], f'optimizer state {idx}')
    assert [s['last_step'] for s in resumed['param_schedulers']] == [
        s['last_step'] for s in full['param_schedulers']
    ]

    # the teacher was rebuilt from teacher_ckpt, untouched and frozen
    assert sha(kd_config['ckpt']) == kd_config['hash']
    assert_same_state(teacher.state_dict(), kd_config['teacher_state'],
                      'teacher')
    assert not any(p.requires_grad for p in teacher.parameters())

    # distillation ran before distill_stop_iter and stopped at it, in the
    # resumed run (iterations 5-9) as in the uninterrupted one
    assert sorted(first_losses) == list(range(5))
    assert sorted(resumed_losses) == list(range(5, 10))
    assert sorted(full_losses) == list(range(10))
    for losses in (full_losses, {**first_losses, **resumed_losses}):
        for it, values in losses.items():
            for name, value in values.items():
                if it < STOP_ITER:
                    assert value > 0, (it, name)
                else:
                    assert value == 0, (it, name)
    # the same losses, iteration by iteration
    assert {**first_losses, **resumed_losses} == full_losses
    # training did move the weights (the comparison is not trivially true)
    changed = [
        k for k, v in first['state_dict'].items()
        if v.is_floating_point() and not torch.equal(v, state_u[k])
    ]
    assert any(k.startswith('connectors.') for k in changed)
    assert any(k.startswith('student.') for k in changed)
