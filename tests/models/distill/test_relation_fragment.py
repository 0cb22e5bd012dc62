"""The relation design of the key-feature loss in a distiller
(``kd_key_feature_relation``): built without connectors, and its gradient
reaches the student's neck and backbone, not the teacher."""
import os.path as osp

from test_kd_equivalence import build_tiny_distiller, tiny_batch

from mmtrack_kd.utils.config import load_config


def test_relation_fragment_trains_the_student_without_connectors(
        repo_root, tmp_path):
    frags = load_config(osp.join(repo_root,
                                 'configs/_base_/distill/key_feature.py'))
    model = build_tiny_distiller(
        repo_root, str(tmp_path),
        distill_cfgs=[frags.kd_key_feature_relation])
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
