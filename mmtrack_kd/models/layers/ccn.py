"""Cross-correlation network (CCN) of CSTrack.

CSTrack (Liang et al., "Rethinking the competition between detection and
ReID in multi-object tracking", IEEE TIP 2022) splits each neck level into a
detection feature and a ReID feature. Each split learns channel relations on
a coarse token grid: a self relation (within one branch) and a cross relation
(between the two branches), mixed by a learnable weight.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor


class _TokenBranch(nn.Module):
    """3x3 conv -> InstanceNorm -> LeakyReLU on the pooled token grid."""

    def __init__(self, channels: int, negative_slope: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = nn.InstanceNorm2d(channels, affine=True)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, h, w) -> (N, C, h*w) token features."""
        return self.act(self.norm(self.conv(x))).flatten(2)


@MODELS.register_module()
class CrossCorrelationBlock(nn.Module):
    """CCN for one feature level.

    Given x (N, C, H, W), pools it to a ``grid_size`` token grid, computes two
    token features Y1, Y2 (N, C, T) and the channel relation matrices
    ``M_t,k = softmax(Y_k Y_k^T)`` (self) and ``M_s,k = softmax(Y_k Y_j^T)``
    (cross, j the other branch), each (N, C, C) with rows summing to one.
    The two outputs are ``x_k = x + (w_k M_t,k + (1 - w_k) M_s,k) x``.

    Args:
        channels: C, channels of the input (and of both outputs).
        grid_size: (h, w) of the token grid; adaptive average pooling makes it
            independent of the input size. Defaults to (6, 10) as published
            for 1088x608 inputs.
        negative_slope: LeakyReLU slope of the token branches.
        init_weight: initial value of the learnable mixing weights w_1, w_2.
    """

    def __init__(self,
                 channels: int,
                 grid_size: Sequence[int] = (6, 10),
                 negative_slope: float = 0.3,
                 init_weight: float = 0.5) -> None:
        super().__init__()
        if len(grid_size) != 2 or min(grid_size) < 1 or \
                grid_size[0] * grid_size[1] < 2:
            raise ValueError('ccn.grid_size must be (h, w) with at least 2 '
                             f'tokens (InstanceNorm), got {grid_size}')
        self.channels = channels
        self.out_channels = channels
        self.grid_size = tuple(int(g) for g in grid_size)
        self.pool = nn.AdaptiveAvgPool2d(self.grid_size)
        self.branch1 = _TokenBranch(channels, negative_slope)
        self.branch2 = _TokenBranch(channels, negative_slope)
        self.mix_weights = nn.Parameter(torch.full((2, ), init_weight))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Split one level.

        Args:
            x: (N, C, H, W) neck feature.

        Returns:
            tuple: detection feature and ReID feature, each (N, C, H, W).
        """
        n, c, h, w = x.shape
        tokens = self.pool(x)
        y1 = self.branch1(tokens)
        y2 = self.branch2(tokens)
        flat = x.flatten(2)  # (N, C, HW)
        outs = []
        for k, (ya, yb) in enumerate(((y1, y2), (y2, y1))):
            m_self = F.softmax(torch.bmm(ya, ya.transpose(1, 2)), dim=-1)
            m_cross = F.softmax(torch.bmm(ya, yb.transpose(1, 2)), dim=-1)
            wk = self.mix_weights[k]
            relation = wk * m_self + (1 - wk) * m_cross
            outs.append(x + torch.bmm(relation, flat).view(n, c, h, w))
        return outs[0], outs[1]


@MODELS.register_module()
class CCN(nn.Module):
    """Cross-correlation network over all neck levels (one block per level).

    Args:
        in_channels: channels per level; CSTrack fills them from the neck when
            the config leaves them None.
        grid_size: token grid (h, w), see :class:`CrossCorrelationBlock`.
        negative_slope: LeakyReLU slope of the token branches.
        init_weight: initial mixing weight.

    Attributes:
        out_channels (list[int]): channels per level, equal to in_channels.
    """

    def __init__(self,
                 in_channels: Optional[Sequence[int]] = None,
                 grid_size: Sequence[int] = (6, 10),
                 negative_slope: float = 0.3,
                 init_weight: float = 0.5) -> None:
        super().__init__()
        if in_channels is None:
            raise ValueError('ccn.in_channels is None: build CCN through '
                             'CSTrack (which fills it from the neck) or set '
                             'it in the config')
        self.in_channels = [int(c) for c in in_channels]
        self.out_channels = list(self.in_channels)
        self.blocks = nn.ModuleList([
            CrossCorrelationBlock(c, grid_size, negative_slope, init_weight)
            for c in self.in_channels
        ])

    def forward(self,
                feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Args:
            feats: per level (N, C_l, H_l, W_l).

        Returns:
            tuple: (det_feats, reid_feats), lists of per-level maps with the
            input shapes.
        """
        if len(feats) != len(self.blocks):
            raise ValueError(f'CCN got {len(feats)} levels, built for '
                             f'{len(self.blocks)} (ccn.in_channels)')
        det_feats, reid_feats = [], []
        for feat, block in zip(feats, self.blocks):
            d, r = block(feat)
            det_feats.append(d)
            reid_feats.append(r)
        return det_feats, reid_feats
