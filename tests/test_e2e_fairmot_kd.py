"""FairMOT distillation end to end with the shipped recipe config
(configs/kd/fairmot_dla34_to_r18_feat_resp_kd_synthmot.py: key-feature +
response, balanced, no ID loss): a tiny teacher trained with
tools/train.py, the KD student trained from it, extracted and scored by
tools/test.py."""
import torch
from test_e2e_train_test import (
    TINY_DATA,
    extract_and_score,
    train_teacher_and_kd,
)

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
    student_cfg, kd_ckpt, state, logs = train_teacher_and_kd(
        tmp_path, tiny,
        ('configs/fairmot/fairmot_dla34_synthmot.py', f'dict(**{TEACHER!r})'),
        ('configs/fairmot/fairmot_r18_synthmot.py', f'dict(**{STUDENT!r})'),
        ('configs/kd/fairmot_dla34_to_r18_feat_resp_kd_synthmot.py',
         f'student=dict(**{STUDENT!r})'))
    # one connector on the one stride-4 map, student 16 -> teacher channels
    w = state['connectors.neck_c0.conv.weight']
    assert w.shape[1] == 16
    for r in logs:
        assert 'loss_kd_id' not in r  # the recipe leaves the ID loss out
        for key in ('loss_kd_feat', 'loss_kd_resp'):
            assert torch.isfinite(torch.tensor(r[key])) and r[key] >= 0, r

    extract_and_score(kd_ckpt, state, student_cfg, tmp_path)
