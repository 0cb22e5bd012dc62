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


def test_no_warmup_adds_no_state():
    conn = MODELS.build(dict(type='ConvBNConnector', in_channels=4,
                             out_channels=6))
    assert not any('warmup' in k for k in conn.state_dict())
    with pytest.raises(ValueError, match='detach_iters'):
        MODELS.build(dict(type='ConvBNConnector', in_channels=4,
                          out_channels=6, detach_iters=-1))
