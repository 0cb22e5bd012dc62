"""Scale-aware attention network (SAAN) of CSTrack.

Fuses the three ReID maps of the CCN at stride 8: each level is projected,
upsampled to the finest level, re-weighted by a spatial attention, then the
concatenation is re-weighted by a channel attention and fused by a 3x3 conv.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


def conv_bn_act(in_channels: int,
                out_channels: int,
                kernel_size: int,
                groups: int = 1) -> nn.Sequential:
    """Conv (same padding, no bias) -> BatchNorm -> SiLU."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            groups=groups,
            bias=False), nn.BatchNorm2d(out_channels, momentum=0.03, eps=1e-3),
        nn.SiLU(inplace=True))


class SpatialAttention(nn.Module):
    """x * a + x with a = sigmoid(conv7x7([mean_c(z), max_c(z)])), z = 1x1(x).

    Args:
        channels: C of the input.
        reduction: z has C // reduction channels (at least 1).
        kernel_size: kernel of the attention conv.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 4,
                 kernel_size: int = 7) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, max(channels // reduction, 1), 1)
        self.attn = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        z = self.reduce(x)
        desc = torch.cat([z.mean(1, keepdim=True), z.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.attn(desc)) + x


class ChannelAttention(nn.Module):
    """x * sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))), shared MLP.

    Args:
        channels: C of the input.
        reduction: hidden width C // reduction (at least 1).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, channels))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        avg = self.mlp(x.mean((2, 3)))
        mx = self.mlp(x.amax((2, 3)))
        return x * torch.sigmoid(avg + mx)[:, :, None, None]


@MODELS.register_module()
class SAAN(nn.Module):
    """Scale-aware attention network.

    Args:
        in_channels: channels of the ReID maps per level (finest first);
            filled by CSTrack from the neck when None.
        mid_channels: width of each projected level and of the output. None
            takes ``in_channels[0]`` (256 at YOLOv5-L with a 256-channel P3,
            so it scales with the model width as the published 256 should).
        spatial_reduction: channel reduction inside the spatial attention.
        channel_reduction: hidden reduction of the channel attention MLP.

    Attributes:
        out_channels (int): mid_channels; the output is (N, mid, H_0, W_0) at
            the resolution of the first (stride-8) level.
    """

    def __init__(self,
                 in_channels: Optional[Sequence[int]] = None,
                 mid_channels: Optional[int] = None,
                 spatial_reduction: int = 4,
                 channel_reduction: int = 16) -> None:
        super().__init__()
        if in_channels is None:
            raise ValueError('id_head.saan.in_channels is None: build SAAN '
                             'through CSTrack or set it in the config')
        self.in_channels = [int(c) for c in in_channels]
        mid = int(mid_channels or self.in_channels[0])
        self.mid_channels = mid
        self.out_channels = mid
        num_levels = len(self.in_channels)
        self.projs = nn.ModuleList(
            [conv_bn_act(c, mid, 3) for c in self.in_channels])
        # depthwise transposed convs bring level l (stride 8 * 2^l) to level 0
        self.upsamples = nn.ModuleList([nn.Identity()] + [
            nn.ConvTranspose2d(
                mid, mid, 2**lvl, stride=2**lvl, groups=mid, bias=False)
            for lvl in range(1, num_levels)
        ])
        self.spatial = nn.ModuleList([
            SpatialAttention(mid, spatial_reduction)
            for _ in range(num_levels)
        ])
        self.channel = ChannelAttention(mid * num_levels, channel_reduction)
        self.fuse = conv_bn_act(mid * num_levels, mid, 3)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args:
            feats: per level (N, C_l, H_l, W_l), finest level first.

        Returns:
            Tensor: (N, mid_channels, H_0, W_0).
        """
        if len(feats) != len(self.projs):
            raise ValueError(f'SAAN got {len(feats)} levels, built for '
                             f'{len(self.projs)} (saan.in_channels)')
        size = feats[0].shape[-2:]
        fused: List[Tensor] = []
        for feat, proj, up, att in zip(feats, self.projs, self.upsamples,
                                       self.spatial):
            x = up(proj(feat))
            if x.shape[-2:] != size:
                # inputs not divisible by 32: align to the stride-8 grid
                x = F.interpolate(
                    x, size=size, mode='bilinear', align_corners=False)
            fused.append(att(x))
        return self.fuse(self.channel(torch.cat(fused, 1)))
