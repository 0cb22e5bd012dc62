"""Tests of the CSTrack layers (CCN, SAAN): shapes, attributes, properties."""
import pytest
import torch

from mmtrack_kd.models.layers import CCN, SAAN, CrossCorrelationBlock

CHANNELS = [16, 32, 64]


def _feats(h, w, n=2, channels=CHANNELS):
    return [
        torch.randn(n, c, -(-h // s), -(-w // s))
        for c, s in zip(channels, (8, 16, 32))
    ]


@pytest.mark.parametrize('size', [(64, 96), (128, 160), (72, 104)])
def test_ccn_shapes_any_size(size):
    ccn = CCN(CHANNELS)
    feats = _feats(*size)
    det, reid = ccn(feats)
    assert ccn.out_channels == CHANNELS
    for f, d, r in zip(feats, det, reid):
        assert d.shape == f.shape and r.shape == f.shape
    # the two outputs are different features
    assert not torch.allclose(det[0], reid[0])


def test_ccn_grid_size_parameter():
    block = CrossCorrelationBlock(8, grid_size=(2, 3))
    assert block.pool.output_size == (2, 3)
    with pytest.raises(ValueError, match='grid_size'):
        CrossCorrelationBlock(8, grid_size=(0, 3))
    with pytest.raises(ValueError, match='grid_size'):
        CrossCorrelationBlock(8, grid_size=(1, 1))
    with pytest.raises(ValueError, match='ccn.in_channels'):
        CCN(None)


def test_ccn_relation_rows_sum_to_one():
    """Channel-constant input: M x = x (rows of M sum to 1), so out = 2x."""
    block = CrossCorrelationBlock(6, grid_size=(2, 2))
    base = torch.randn(1, 1, 5, 7)
    x = base.expand(1, 6, 5, 7).contiguous()
    d, r = block(x)
    assert torch.allclose(d, 2 * x, atol=1e-5)
    assert torch.allclose(r, 2 * x, atol=1e-5)


def test_ccn_mix_weights_learn():
    block = CrossCorrelationBlock(4, grid_size=(2, 2))
    assert torch.allclose(block.mix_weights, torch.full((2, ), 0.5))
    d, r = block(torch.randn(2, 4, 6, 6))
    (d.square().sum() + r.square().sum()).backward()
    assert block.mix_weights.grad is not None
    assert block.mix_weights.grad.abs().sum() > 0


@pytest.mark.parametrize('size', [(64, 96), (128, 160), (72, 104)])
def test_saan_output_at_stride8(size):
    saan = SAAN(CHANNELS)
    assert saan.out_channels == CHANNELS[0]
    feats = _feats(*size)
    out = saan(feats)
    assert out.shape == (2, CHANNELS[0]) + tuple(feats[0].shape[-2:])
    saan2 = SAAN(CHANNELS, mid_channels=24)
    assert saan2(feats).shape[1] == saan2.out_channels == 24


def test_saan_uses_every_level():
    saan = SAAN(CHANNELS).eval()
    feats = [f.requires_grad_() for f in _feats(64, 96)]
    saan(feats).sum().backward()
    for f in feats:
        assert f.grad is not None and f.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='levels'):
        saan(feats[:2])
