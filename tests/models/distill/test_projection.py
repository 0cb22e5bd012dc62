"""Projection of conflicting distillation gradients
(``MOTDistiller(grad_projection=...)``, ``GradientProjector``)."""
import pytest
import torch
from test_kd_equivalence import build_tiny_distiller, tiny_batch

from mmtrack_kd.models.distill.balance import summed
from mmtrack_kd.models.distill.errors import DistillConfigError
from mmtrack_kd.models.distill.projection import (
    GradientProjector,
    build_projector,
)


def test_conflicting_component_removed_per_image():
    f = torch.randn(3, 2, 4, requires_grad=True)
    ref_dir = torch.randn(3, 2, 4)
    own = torch.randn(3, 2, 4)
    own[0] = -ref_dir[0] + 0.1 * torch.randn(2, 4)  # conflicts
    own[1] = ref_dir[1].abs() * ref_dir[1].sign()  # agrees
    task = (f * ref_dir).sum()
    kd = (f * own).sum()
    proj = GradientProjector(['kd_a'], ['task'], 'neck')
    out = proj(f, task, dict(kd_a=kd))
    assert float(out['kd_a']) == 0.0
    (g, ) = torch.autograd.grad(kd + out['kd_a'], f)
    for i in range(3):
        conflict = float((own[i] * ref_dir[i]).sum()) < 0
        if conflict:  # orthogonal to the reference now
            assert float((g[i] * ref_dir[i]).sum()) == pytest.approx(
                0.0, abs=1e-4)
            want = own[i] - (own[i] * ref_dir[i]).sum() / \
                ref_dir[i].pow(2).sum() * ref_dir[i]
            assert torch.allclose(g[i], want, atol=1e-5)
        else:  # untouched
            assert torch.allclose(g[i], own[i])
    assert out['proj_frac_kd_a'] == pytest.approx(
        sum(float((own[i] * ref_dir[i]).sum()) < 0 for i in range(3)) / 3)


def test_levels_are_projected_together():
    fs = [torch.randn(2, 3, requires_grad=True),
          torch.randn(2, 5, requires_grad=True)]
    task = fs[0].sum() + fs[1].sum()
    kd = -2 * fs[0].sum() + 0 * fs[1].sum()
    out = GradientProjector(['kd_a'], ['task'])(fs, task, dict(kd_a=kd))
    g0, g1 = torch.autograd.grad(kd + out['kd_a'], fs)
    total = float(g0.sum() + g1.sum())  # dot with the all-ones reference
    assert total == pytest.approx(0.0, abs=1e-5)
    assert out['proj_frac_kd_a'] == 1.0


def test_distiller_projects_and_keeps_values(repo_root, tmp_path):
    plain = build_tiny_distiller(repo_root, str(tmp_path))
    model = build_tiny_distiller(
        repo_root, str(tmp_path),
        grad_projection=dict(losses=['kd_feat', 'kd_id'], against=['task']))
    inputs, samples = tiny_batch()
    a = plain.loss(inputs, samples)
    seen = []
    hook = model.student.neck.register_forward_hook(
        lambda m, i, o: seen.append(o))
    b = model.loss(inputs, samples)
    hook.remove()
    # the tiny random models conflict on some images: the test can fail
    assert 0 < float(b['proj_frac_kd_feat']) <= 1
    for k, v in a.items():  # the same values: the projection adds 0
        assert torch.allclose(summed(v), summed(b[k])), k
    feats = list(seen[0])
    n = feats[0].shape[0]

    def per_image(loss):
        gs = torch.autograd.grad(loss, feats, retain_graph=True,
                                 allow_unused=True)
        return torch.cat([g.reshape(n, -1) if g is not None else
                          f.new_zeros(n, f[0].numel())
                          for g, f in zip(gs, feats)], 1)

    task = per_image(summed({k: v for k, v in b.items()
                             if 'loss' in k and '_kd_' not in k}))
    for name in ('kd_feat', 'kd_id'):
        got = per_image(summed(b[f'loss_{name}']))
        dots = (got * task).sum(1)
        # no image's projected gradient opposes the task's any more
        assert (dots >= -1e-6 * task.norm(dim=1) * got.norm(dim=1)).all()


@pytest.mark.parametrize('cfg, match', [
    (dict(losses=['kd_nope'], against=['task']), 'unknown loss'),
    (dict(losses=['kd_feat'], against=[]), 'at least one'),
    (dict(losses=['kd_feat'], against=['kd_feat']), 'both projected'),
    (dict(losses=['kd_feat'], against=['task'], recorder='x'), 'recorder'),
    (dict(losses=['kd_feat'], against=['task'], foo=1), 'unknown key'),
])
def test_bad_configs_name_the_key(cfg, match):
    with pytest.raises(DistillConfigError, match=match):
        build_projector(cfg, ['kd_feat', 'kd_resp'], ['neck'])
