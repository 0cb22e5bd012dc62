import pytest
import torch

from mmtrack_kd.models.losses import KeyFeatureLoss

SHAPE = (128, 128)  # input; maps at stride 8 -> 16 x 16
SMALL = torch.tensor([[8., 8., 16., 24.]])  # 1 x 2 cells
LARGE = torch.tensor([[64., 16., 128., 112.]])  # 8 x 12 cells


def _feat(seed=0, c=8, hw=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, c, hw, hw, generator=g)


def _cells(box, stride=8, hw=16):
    m = torch.zeros(hw, hw, dtype=torch.bool)
    x1, y1, x2, y2 = (box[0] / stride).tolist()
    m[int(y1):int(y2), int(x1):int(x2)] = True
    return m


def test_zero_when_equal_and_grad_to_student_only():
    loss_fn = KeyFeatureLoss()
    boxes = [torch.cat([SMALL, LARGE]), torch.zeros(0, 4)]
    t = _feat().requires_grad_(True)
    s = t.detach().clone().requires_grad_(True)
    assert loss_fn(s, t, boxes, SHAPE).item() == pytest.approx(0., abs=1e-7)
    s2 = _feat(1).requires_grad_(True)
    loss = loss_fn(s2, t, boxes, SHAPE)
    assert loss.item() > 0.1
    loss.backward()
    assert t.grad is None and s2.grad.abs().sum() > 0


def test_each_box_carries_the_same_total_weight():
    t = _feat()
    sp_T = t.abs().mean(1).softmax(-1)  # any positive attention works
    boxes = [torch.cat([SMALL, LARGE]), LARGE]
    w_fg, w_bg = KeyFeatureLoss.box_weights(sp_T, boxes, SHAPE)
    small, large = _cells(SMALL), _cells(LARGE)
    assert w_fg[0][small].sum().item() == pytest.approx(1., rel=1e-5)
    assert w_fg[0][large].sum().item() == pytest.approx(1., rel=1e-5)
    assert w_fg[0].sum().item() == pytest.approx(2., rel=1e-5)
    assert w_fg[1].sum().item() == pytest.approx(1., rel=1e-5)
    # background weight is zero inside boxes, positive elsewhere
    assert (w_bg[0][small | large] == 0).all()
    assert (w_bg[0][~(small | large)] > 0).all()


def test_tiny_box_without_cell_centre_is_kept():
    sp_T = torch.ones(1, 16, 16)
    tiny = [torch.tensor([[17., 17., 19., 19.]])]  # covers no cell centre
    w_fg, _ = KeyFeatureLoss.box_weights(sp_T, tiny, SHAPE)
    assert w_fg.sum().item() == pytest.approx(1.)
    assert w_fg[0, 2, 2].item() == pytest.approx(1.)


def _error_in(mask, t, scale=1.0):
    s = t.clone()
    s[:, :, mask] += scale
    return s


def test_small_target_not_drowned_by_large_target_or_background():
    """The same error over a whole small target costs as much fg loss as over
    a whole large target, and a huge background error does not change the fg
    term."""
    t = torch.ones(1, 4, 16, 16)  # flat teacher: uniform attention
    boxes = [torch.cat([SMALL, LARGE])]
    fg_only = KeyFeatureLoss(beta_bg=0., gamma_at=0.)
    small, large = _cells(SMALL), _cells(LARGE)
    l_small = fg_only(_error_in(small, t), t, boxes, SHAPE)
    l_large = fg_only(_error_in(large, t), t, boxes, SHAPE)
    assert l_small.item() == pytest.approx(l_large.item(), rel=1e-5)
    assert l_small.item() > 0
    bg = ~(small | large)
    noisy = _error_in(bg, _error_in(small, t), scale=10.)
    assert fg_only(noisy, t, boxes, SHAPE).item() == pytest.approx(
        l_small.item(), rel=1e-5)
    # background term on: the ~150 background cells with an error d weigh
    # as one mean (d), the 2-cell target with the same error d as one box out
    # of two (d / 2): not 150 to 2
    full = KeyFeatureLoss(alpha_fg=1., beta_bg=1., gamma_at=0.)
    both = full(_error_in(bg, _error_in(small, t)), t, boxes, SHAPE)
    assert both.item() == pytest.approx(3 * l_small.item(), rel=1e-5)


def test_attention_transfer_term():
    """A student with the right values but the wrong attention pattern pays
    only the attention term when fg/bg terms are off."""
    loss_fn = KeyFeatureLoss(alpha_fg=0., beta_bg=0., gamma_at=1.)
    t = _feat()
    assert loss_fn(t * 1.0, t, [SMALL, SMALL], SHAPE).item() == \
        pytest.approx(0., abs=1e-7)
    s = t.flip(-1)  # same values, attention moved
    assert loss_fn(s, t, [SMALL, SMALL], SHAPE).item() > 0.01


def test_finite_without_gt_and_levels_and_errors():
    loss_fn = KeyFeatureLoss()
    s = _feat(1).requires_grad_(True)
    t = _feat()
    loss = loss_fn(s, t, [torch.zeros(0, 4)] * 2, SHAPE)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(s.grad).all()
    one = loss_fn(s, t, [SMALL, torch.zeros(0, 4)], SHAPE)
    assert torch.isfinite(one) and one.item() > 0
    # a list of levels at strides 8 and 16 is averaged
    s16, t16 = _feat(2, hw=8), _feat(3, hw=8)
    boxes = [SMALL, LARGE]
    lv = loss_fn([s, s16], [t, t16], boxes, SHAPE)
    ref = (loss_fn(s, t, boxes, SHAPE) + loss_fn(s16, t16, boxes, SHAPE)) / 2
    assert lv.item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(ValueError, match='connector'):
        loss_fn(_feat(c=4), t, boxes, SHAPE)


def test_normalize_ignores_per_channel_scale_and_shift():
    """With normalize=True a student map that is the teacher's up to a
    per-channel affine map (positive scale) costs only the attention
    term; without it, it costs the squared difference."""
    boxes = [torch.cat([SMALL, LARGE]), SMALL]
    t = _feat()
    scale = torch.rand(1, 8, 1, 1) * 3 + 0.5
    s = t * scale + torch.randn(1, 8, 1, 1)
    plain = KeyFeatureLoss(gamma_at=0.)(s, t, boxes, SHAPE)
    normed = KeyFeatureLoss(gamma_at=0., normalize=True)(s, t, boxes, SHAPE)
    assert plain.item() > 0.1
    assert normed.item() == pytest.approx(0., abs=1e-4)
    # different patterns still cost, and the gradient reaches the student
    s2 = _feat(1).requires_grad_(True)
    loss = KeyFeatureLoss(normalize=True)(s2, t, boxes, SHAPE)
    assert loss.item() > 0.1
    loss.backward()
    assert s2.grad.abs().sum() > 0
