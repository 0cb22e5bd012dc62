"""FairMOT distillation end to end with the shipped recipe config
(configs/kd/fairmot_dla34_to_r18_feat_resp_kd_synthmot.py: key-feature +
response, balanced, no ID loss): a tiny teacher trained with
tools/train.py, the KD student trained from it, extracted and scored by
tools/test.py."""
import json

import torch
from test_e2e_bytetrack_kd import TINY_DATA, sha, write
from test_e2e_train_test import ROOT, extract_and_score, run_tool

# the benchmark's micro sizes (presets.yaml, families.fairmot)
TEACHER = dict(backbone=dict(channels=[4, 8, 16, 16, 32, 32]),
               bbox_head=dict(head_conv=16),
               id_head=dict(head_conv=16, embed_channels=16))
STUDENT = dict(backbone=dict(base_channels=4),
               neck=dict(in_channels=32, num_deconv_filters=[16, 16, 16]),
               bbox_head=dict(head_conv=16),
               id_head=dict(head_conv=16, embed_channels=16))


def test_fairmot_feat_resp_kd_end_to_end(tiny_synthmot, tmp_path):
    tiny = TINY_DATA.format(data=tiny_synthmot.rstrip('/'))
    teacher_cfg = write(tmp_path / 'teacher.py', (
        f"_base_ = ['{ROOT}/configs/fairmot/fairmot_dla34_synthmot.py']"
        f'\n{tiny}model = dict(**{TEACHER!r})\n'))
    student_cfg = write(tmp_path / 'student.py', (
        f"_base_ = ['{ROOT}/configs/fairmot/fairmot_r18_synthmot.py']"
        f'\n{tiny}model = dict(**{STUDENT!r})\n'))
    run_tool(['tools/train.py', teacher_cfg, '--work-dir',
              str(tmp_path / 't')])
    t_ckpt = tmp_path / 't' / 'epoch_1.pth'
    t_hash = sha(t_ckpt)

    kd_cfg = write(tmp_path / 'kd.py', (
        f"_base_ = ['{ROOT}/configs/kd/"
        "fairmot_dla34_to_r18_feat_resp_kd_synthmot.py']\n" + tiny +
        f"model = dict(teacher='{teacher_cfg}', teacher_ckpt='{t_ckpt}', "
        f'student=dict(**{STUDENT!r}))\n'))
    run_tool(['tools/train.py', kd_cfg, '--work-dir', str(tmp_path / 'kd')])
    kd_ckpt = tmp_path / 'kd' / 'epoch_1.pth'
    assert sha(t_ckpt) == t_hash, 'KD training modified the teacher file'

    state = torch.load(kd_ckpt, map_location='cpu')['state_dict']
    assert not any(k.startswith('teacher') for k in state)
    # one connector on the one stride-4 map, student 16 -> teacher channels
    w = state['connectors.neck_c0.conv.weight']
    assert w.shape[1] == 16
    scalars = next((tmp_path / 'kd').glob('*/vis_data/scalars.json'))
    logs = [json.loads(line) for line in open(scalars) if '"loss"' in line]
    assert logs
    for r in logs:
        assert 'loss_kd_id' not in r  # the recipe leaves the ID loss out
        for key in ('loss_kd_feat', 'loss_kd_resp'):
            assert torch.isfinite(torch.tensor(r[key])) and r[key] >= 0, r

    extract_and_score(kd_ckpt, state, student_cfg, tmp_path)
