"""Connectors: shapes and registration."""
import pytest
import torch
from mmdet.registry import MODELS

import mmtrack_kd.models.distill  # noqa: F401


def test_convbn_connector_maps_channels():
    conn = MODELS.build(dict(type='ConvBNConnector', in_channels=4,
                             out_channels=6, act=True))
    y = conn(torch.randn(2, 4, 5, 7))
    assert y.shape == (2, 6, 5, 7) and (y >= 0).all()
    with pytest.raises(ValueError, match='in_channels is None'):
        MODELS.build(dict(type='ConvBNConnector', out_channels=6))


def test_identity_connector():
    conn = MODELS.build(dict(type='IdentityConnector', in_channels=3))
    x = torch.randn(1, 3, 2, 2)
    assert conn(x) is x
    with pytest.raises(ValueError, match='ConvBNConnector'):
        MODELS.build(dict(type='IdentityConnector', in_channels=3,
                          out_channels=4))


def test_mlp_connector_on_maps_and_vectors():
    conn = MODELS.build(dict(type='MLPConnector', in_channels=4,
                             out_channels=6, hidden_channels=5))
    assert conn(torch.randn(2, 4, 3, 3)).shape == (2, 6, 3, 3)
    assert conn(torch.randn(7, 4)).shape == (7, 6)
    # per position: the map result equals the vector result at each pixel
    x = torch.randn(1, 4, 2, 2)
    torch.testing.assert_close(
        conn(x)[0, :, 1, 0], conn(x[:, :, 1, 0])[0])


@pytest.mark.parametrize('cfg', [
    dict(type='ConvBNConnector', in_channels=4, out_channels=6),
    dict(type='ConvConnector', in_channels=4, out_channels=6),
    dict(type='MLPConnector', in_channels=4, out_channels=6)])
def test_warmup_detaches_the_student_feature_for_n_training_calls(cfg):
    conn = MODELS.build(dict(cfg, detach_iters=2))
    conn.train()

    def grad_reaches_input():
        x = torch.randn(2, 4, 3, 3, requires_grad=True)
        conn(x).sum().backward()
        return x.grad is not None

    conn.eval()  # eval calls neither count nor detach
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    conn(x).sum().backward()
    assert x.grad is not None and int(conn.warmup_calls) == 0
    conn.train()
    assert [grad_reaches_input() for _ in range(4)] == \
        [False, False, True, True]
    # the connector itself learns during the warm-up
    assert all(p.grad is not None for p in conn.parameters())
    assert 'warmup_calls' in conn.state_dict()


def test_end_warmups_ends_only_running_warmups():
    from mmtrack_kd.models.distill import end_warmups
    warm = MODELS.build(dict(type='ConvConnector', in_channels=4,
                             out_channels=6, detach_iters=3))
    plain = MODELS.build(dict(type='ConvConnector', in_channels=4,
                              out_channels=6))
    model = torch.nn.ModuleDict(dict(warm=warm, plain=plain)).train()
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    warm(x).sum().backward()
    assert x.grad is None  # detached: the first of 3 warm-up calls
    assert end_warmups(model) == 1
    assert int(warm.warmup_calls) == 3
    warm(x).sum().backward()
    assert x.grad is not None
    assert end_warmups(model) == 0


def test_no_warmup_adds_no_state():
    conn = MODELS.build(dict(type='ConvBNConnector', in_channels=4,
                             out_channels=6))
    assert not any('warmup' in k for k in conn.state_dict())
    with pytest.raises(ValueError, match='detach_iters'):
        MODELS.build(dict(type='ConvBNConnector', in_channels=4,
                          out_channels=6, detach_iters=-1))


def _connector_pair(seed=0):
    """A ConvBNConnector and a ConvConnector with the same conv weights
    (the same seed: the BN's init draws no random numbers)."""
    torch.manual_seed(seed)
    bn = MODELS.build(dict(type='ConvBNConnector', in_channels=4,
                           out_channels=6))
    torch.manual_seed(seed)
    plain = MODELS.build(dict(type='ConvConnector', in_channels=4,
                              out_channels=6))
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in plain.modules())
    torch.testing.assert_close(plain.conv.weight, bn.conv.weight)
    return bn.train(), plain.train()


def _loss_and_grads(conn, loss, x, t, *args):
    x = x.clone().requires_grad_(True)
    value = loss(conn(x), t, *args)
    value.backward()
    return value.detach(), x.grad, conn.conv.weight.grad


@pytest.mark.parametrize('loss_cfg,boxes', [
    (dict(type='KeyFeatureLoss', normalize=True, beta_bg=0., gamma_at=0.),
     True),
    (dict(type='PKDLoss'), False)])
def test_conv_connector_equals_convbn_under_a_standardising_loss(loss_cfg,
                                                                 boxes):
    # the loss standardises each channel, which removes the BN's
    # per-channel scale and shift: the same loss and the same gradients to
    # the student's map and to the conv, up to the epsilons
    import mmtrack_kd.models.losses  # noqa: F401
    loss = MODELS.build(loss_cfg)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 6, 8, generator=g) * 3 + 1
    t = torch.randn(2, 6, 6, 8, generator=g)
    args = ([torch.tensor([[4., 4., 30., 40.]]),
             torch.tensor([[10., 2., 60., 20.], [0., 0., 16., 16.]])],
            (48, 64)) if boxes else ()
    bn, plain = _connector_pair()
    ref = _loss_and_grads(bn, loss, x, t, *args)
    out = _loss_and_grads(plain, loss, x, t, *args)
    for a, b in zip(ref, out):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    if boxes:  # raw maps: the BN's scale and shift do count
        raw = MODELS.build(dict(loss_cfg, normalize=False))
        bn, plain = _connector_pair()
        assert not torch.allclose(
            _loss_and_grads(bn, raw, x, t, *args)[0],
            _loss_and_grads(plain, raw, x, t, *args)[0], rtol=1e-2)


def test_conv_connector_options():
    conn = MODELS.build(dict(type='ConvConnector', in_channels=4,
                             out_channels=6, bias=True, detach_iters=1))
    assert conn.conv.bias is not None
    assert conn(torch.randn(2, 4, 5, 7)).shape == (2, 6, 5, 7)
    with pytest.raises(ValueError, match='ConvConnector: in_channels'):
        MODELS.build(dict(type='ConvConnector', out_channels=6))
