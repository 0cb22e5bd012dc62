import pytest
import torch

from mmtrack_kd.models.losses import IDResponseConsistencyLoss

SHAPE = (64, 96)  # batch input (H, W); ID map at stride 8 -> 8 x 12


def _boxes():
    return [
        torch.tensor([[4., 4., 20., 40.], [40., 8., 60., 56.],
                      [70., 20., 90., 60.]]),
        torch.tensor([[10., 10., 30., 50.], [50., 5., 80., 60.]]),
    ]


def _maps(d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, d, 8, 12, generator=g)


def test_zero_when_equal_and_grad_to_student_only():
    loss_fn = IDResponseConsistencyLoss()
    t = _maps().requires_grad_(True)
    s = t.detach().clone().requires_grad_(True)
    loss = loss_fn(s, t, _boxes(), SHAPE)
    assert loss.item() == pytest.approx(0., abs=1e-6)
    s2 = _maps(seed=1).requires_grad_(True)
    loss2 = loss_fn(s2, t, _boxes(), SHAPE)
    assert loss2.item() > 1e-3
    loss2.backward()
    assert t.grad is None
    assert s2.grad is not None and s2.grad.abs().sum() > 0


def test_invariant_to_width_and_rotation():
    """A 32-d student that is an orthogonal map of the 16-d teacher copies it
    exactly; a rotated student space changes nothing."""
    loss_fn = IDResponseConsistencyLoss()
    t = _maps(16)
    q, _ = torch.linalg.qr(torch.randn(32, 16, generator=torch.Generator(
    ).manual_seed(3)))  # (32, 16) with orthonormal columns
    s = torch.einsum('ed,ndhw->nehw', q, t)
    assert loss_fn(s, t, _boxes(), SHAPE).item() == pytest.approx(
        0., abs=1e-5)
    other = _maps(32, seed=5)
    rot, _ = torch.linalg.qr(torch.randn(32, 32))
    other_rot = torch.einsum('ed,ndhw->nehw', rot, other)
    base = loss_fn(other, t, _boxes(), SHAPE)
    assert loss_fn(other_rot, t, _boxes(), SHAPE).item() == pytest.approx(
        base.item(), rel=1e-4)


def test_grows_when_environment_response_changes():
    """Perturbing the student's background (not the targets) raises the
    environment term; a larger change raises it more."""
    loss_fn = IDResponseConsistencyLoss(lambda_sim=0.)
    t = _maps()
    boxes = _boxes()
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(9))
    # keep target cells untouched
    keep = torch.zeros(2, 1, 8, 12)
    for i, b in enumerate(boxes):
        cx = ((b[:, 0] + b[:, 2]) / 2 / 8).long()
        cy = ((b[:, 1] + b[:, 3]) / 2 / 8).long()
        keep[i, 0, cy, cx] = 1
    losses = [
        loss_fn(t + a * noise * (1 - keep), t, boxes, SHAPE).item()
        for a in (0., 0.3, 1.0)
    ]
    assert losses[0] == pytest.approx(0., abs=1e-6)
    assert 0 < losses[1] < losses[2]


def test_similarity_term_sees_target_relations():
    """Two targets made identical in the student but not in the teacher are
    penalised by the Sim term."""
    loss_fn = IDResponseConsistencyLoss(tau=0.1, lambda_sim=1.0)
    t = _maps()
    boxes = [torch.tensor([[4., 4., 20., 40.], [40., 8., 60., 56.]])] * 2
    s = t.clone()
    # cells (2, 1) and (4, 6): copy the first target's embedding on the 2nd
    s[:, :, 4, 6] = s[:, :, 2, 1]
    no_sim = IDResponseConsistencyLoss(lambda_sim=0.)(s, t, boxes, SHAPE)
    assert loss_fn(s, t, boxes, SHAPE).item() > no_sim.item() + 1e-3


def test_finite_without_gt_and_with_one_target():
    loss_fn = IDResponseConsistencyLoss(loss_weight=2.)
    s = _maps(8).requires_grad_(True)
    t = _maps(16, seed=2)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    loss = loss_fn(s, t, empty, SHAPE)
    assert torch.isfinite(loss) and loss.item() == 0
    loss.backward()  # still connected to the student
    assert s.grad is not None
    one = [torch.tensor([[30., 20., 50., 60.]]), torch.zeros(0, 4)]
    s.grad = None
    loss = loss_fn(s, t, one, SHAPE)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert torch.isfinite(s.grad).all()


def test_list_of_levels_is_averaged_and_bad_input_named():
    loss_fn = IDResponseConsistencyLoss()
    s, t = _maps(seed=1), _maps()
    single = loss_fn(s, t, _boxes(), SHAPE)
    both = loss_fn([s, t], [t, t], _boxes(), SHAPE)
    assert both.item() == pytest.approx(single.item() / 2, rel=1e-5)
    with pytest.raises(ValueError, match='IDResponseConsistencyLoss'):
        loss_fn([s], [t, t], _boxes(), SHAPE)
    with pytest.raises(ValueError, match='tau'):
        IDResponseConsistencyLoss(tau=0)
