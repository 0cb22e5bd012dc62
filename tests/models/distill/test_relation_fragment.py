"""The relation design of the key-feature loss in a distiller
(``kd_key_feature_relation``): built without connectors, and its gradient
reaches the student's neck and backbone, not the teacher."""
import os.path as osp

import torch
from mmdet.registry import MODELS
from test_kd_equivalence import KD_CFG, TEACHER_CFG, H, W, _sized, tiny_batch

from mmtrack_kd.utils.config import load_config


def test_relation_fragment_trains_the_student_without_connectors(
        repo_root, tmp_path):
    teacher = _sized(load_config(osp.join(repo_root, TEACHER_CFG)).model,
                     0.125, 32)
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(teacher).state_dict()}, ckpt)
    cfg = load_config(osp.join(repo_root, KD_CFG))
    frags = load_config(osp.join(repo_root,
                                 'configs/_base_/distill/key_feature.py'))
    cfg.model.distill_cfgs = [frags.kd_key_feature_relation]
    cfg.model.student = _sized(cfg.model.student, 0.0625, 16)
    cfg.model.teacher = teacher
    cfg.model.teacher_ckpt = ckpt
    cfg.model.dry_run_input_shape = (1, 3, H, W)
    torch.manual_seed(1)
    model = MODELS.build(cfg.model).train()
    assert len(model.connectors) == 0
    assert model.distill_losses['kd_feat'].relation
    inputs, samples = tiny_batch()
    losses = model.loss(inputs, samples)
    kd = losses['loss_kd_feat']
    assert kd.item() > 0
    kd.backward()
    for part in ('neck', 'backbone'):
        grads = [p.grad for p in
                 model.student.get_submodule(part).parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part
    assert all(p.grad is None for p in model.teacher.parameters())
