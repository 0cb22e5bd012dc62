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
