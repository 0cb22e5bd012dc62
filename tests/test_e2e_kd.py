"""End to end distillation: teacher trained briefly, KD training of a
student, student extracted, tools/test.py scores the student; the teacher's
checkpoint is not touched and the student changes."""
import pytest
import torch
from test_e2e_train_test import (
    ROOT,
    TINY_DATA,
    extract_and_score,
    run_tool,
    sha,
    write,
)

KD_BASE = f'{ROOT}/configs/kd/cstrack_s2n_kd_synthmot.py'
STUDENT_MODEL = ("dict(backbone=dict(widen_factor=0.125), "
                 "neck=dict(out_channels=32), "
                 "id_head=dict(embed_channels=32))")


@pytest.fixture(scope='module')
def teacher(tiny_synthmot, tmp_path_factory):
    """A teacher trained one epoch on the tiny data, and the tiny
    settings: (tiny overrides, teacher config, teacher checkpoint)."""
    tmp_path = tmp_path_factory.mktemp('teacher')
    tiny = TINY_DATA.format(data=tiny_synthmot.rstrip('/'))
    teacher_cfg = write(tmp_path / 'teacher.py', (
        f"_base_ = ['{ROOT}/configs/cstrack/cstrack_yolov5s_synthmot.py']\n"
        + tiny + "model = dict(backbone=dict(widen_factor=0.25), "
        "neck=dict(out_channels=64), id_head=dict(embed_channels=64))\n"))
    run_tool(['tools/train.py', teacher_cfg, '--work-dir',
              str(tmp_path / 't')])
    return tiny, teacher_cfg, tmp_path / 't' / 'epoch_1.pth'


def train_kd(teacher, tmp_path, extra=''):
    """Train the tiny KD student of ``teacher`` (the fixture) one epoch,
    with ``extra`` config lines; return its checkpoint."""
    tiny, teacher_cfg, t_ckpt = teacher
    kd_cfg = write(tmp_path / 'kd.py', (
        f"_base_ = ['{KD_BASE}']\n" + tiny
        + f"model = dict(teacher='{teacher_cfg}', teacher_ckpt='{t_ckpt}', "
        f'student={STUDENT_MODEL})\n' + extra))
    run_tool(['tools/train.py', kd_cfg, '--work-dir', str(tmp_path / 'kd')])
    return tmp_path / 'kd' / 'epoch_1.pth'


def test_cstrack_kd_end_to_end(teacher, tmp_path):
    tiny, _, t_ckpt = teacher
    student_cfg = write(tmp_path / 'student.py', (
        f"_base_ = ['{ROOT}/configs/cstrack/cstrack_yolov5n_synthmot.py']\n"
        + tiny + f'model = {STUDENT_MODEL}\n'))
    t_hash = sha(t_ckpt)

    kd_ckpt = train_kd(teacher, tmp_path)
    assert sha(t_ckpt) == t_hash, 'KD training modified the teacher file'

    state = torch.load(kd_ckpt, map_location='cpu')['state_dict']
    assert not any(k.startswith('teacher') for k in state)
    assert any(k.startswith('connectors.') for k in state)
    log = open(next((tmp_path / 'kd').glob('*/vis_data/scalars.json'))).read()
    for name in ('loss_kd_id', 'loss_kd_feat', 'loss_kd_resp'):
        assert name in log

    extract_and_score(kd_ckpt, state, student_cfg, tmp_path)


def test_ema_checkpoint_holds_the_averaged_student(teacher, tmp_path):
    """KD training with the hooks that ``kd_benchmark.py --ema`` writes
    (:func:`mmtrack_kd.benchmark.configs.ema_hooks`): the checkpoint's
    ``state_dict`` holds the averaged weights (the last ones under
    ``ema_state_dict``), they differ from the last weights, and the
    extracted student is the average."""
    from types import SimpleNamespace

    from mmtrack_kd.benchmark.configs import ema_hooks, py_literal
    hooks = ema_hooks(SimpleNamespace(ema=0.3), KD_BASE)
    assert [h['type'] for h in hooks][-2:] == ['DistillStopHook', 'EMAHook']
    kd_ckpt = train_kd(teacher, tmp_path,
                       f'custom_hooks = {py_literal(hooks)}\n')
    ckpt = torch.load(kd_ckpt, map_location='cpu')
    state, last = ckpt['state_dict'], ckpt['ema_state_dict']
    assert not any(k.startswith('teacher') for k in state)
    weights = [k for k in state if k.startswith('student.')
               and k.endswith('.weight')]
    assert weights
    moved = [k for k in weights
             if not torch.equal(state[k], last['module.' + k])]
    assert len(moved) > len(weights) // 2, 'the EMA did not average'
    student_ckpt = tmp_path / 'student.pth'
    run_tool(['tools/extract_student.py', str(kd_ckpt), str(student_ckpt)])
    plain = torch.load(student_ckpt, map_location='cpu')['state_dict']
    for k in weights:
        assert torch.equal(plain[k[len('student.'):]], state[k]), k
