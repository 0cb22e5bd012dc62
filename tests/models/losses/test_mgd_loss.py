import pytest
import torch

from mmtrack_kd.models.losses import MGDLoss


def test_mgd_seeded_masks_and_ratio():
    a, b = MGDLoss(4, seed=3), MGDLoss(4, seed=3)
    ma, mb = a.random_mask(2, 40, 40, 'cpu'), b.random_mask(2, 40, 40, 'cpu')
    assert torch.equal(ma, mb)
    assert 1 - ma.mean().item() == pytest.approx(0.65, abs=0.05)
    assert not torch.equal(a.random_mask(2, 40, 40, 'cpu'), ma)


def test_mgd_grads_to_student_and_generator_only():
    loss_fn = MGDLoss([4, 4], seed=0)
    t = [torch.randn(2, 4, 6, 6, requires_grad=True) for _ in range(2)]
    s = [torch.randn(2, 4, 6, 6, requires_grad=True) for _ in range(2)]
    loss = loss_fn(s, t)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert all(x.grad is None for x in t)
    assert all(x.grad.abs().sum() > 0 for x in s)
    assert loss_fn.generators[1][0].weight.grad is not None


def test_mgd_generator_learns_to_rebuild_teacher():
    torch.manual_seed(0)
    loss_fn = MGDLoss(4, alpha_mgd=1., lambda_mgd=0.5, seed=1)
    t = torch.randn(1, 4, 6, 6)
    opt = torch.optim.SGD(loss_fn.parameters(), lr=2e-3)
    first = None
    for _ in range(20):
        loss = loss_fn(t.clone(), t)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.75 * first


def test_mgd_config_errors():
    with pytest.raises(ValueError, match='channels'):
        MGDLoss(0)
    with pytest.raises(ValueError, match='channels'):
        MGDLoss(4)(torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4))


def test_mgd_two_levels_summed_by_hand():
    """No mask (lambda 0) and a zeroed generator rebuild 0, so each level
    costs sum(T^2) / N: level 1 ones(2, 2, 2, 2) -> 16 / 2 = 8, level 2
    2 * ones(2, 2, 1, 1) -> 16 / 2 = 8; alpha 0.5 -> 0.5 * (8 + 8)."""
    def zeroed(**kw):
        loss_fn = MGDLoss([2, 2], alpha_mgd=0.5, lambda_mgd=0., **kw)
        for p in loss_fn.parameters():
            torch.nn.init.zeros_(p)
        return loss_fn

    t = [torch.ones(2, 2, 2, 2), 2 * torch.ones(2, 2, 1, 1)]
    s = [torch.randn(2, 2, 2, 2), torch.randn(2, 2, 1, 1)]
    assert zeroed()(s, t).item() == pytest.approx(8.)
    assert zeroed(reduction='mean')(s, t).item() == pytest.approx(4.)
    with pytest.raises(ValueError, match='reduction'):
        MGDLoss(2, reduction='none')
