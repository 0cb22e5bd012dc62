"""DLA (Deep Layer Aggregation, Yu et al., CVPR 2018) backbone.

Written from the paper's description of DLA-34: a stem, two plain conv
levels, then four levels of hierarchical (tree) aggregation of residual
basic blocks whose aggregation nodes ("roots") fuse the outputs of the
blocks below them, with iterative deep aggregation carrying the level's
input forward ("level root").
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                  stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                  padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class DLABasicBlock(nn.Module):
    """Residual block of two 3x3 convs; the shortcut may be given by the
    caller (the tree passes a pooled/projected input when shapes change).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, shortcut: Optional[Tensor] = None) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H/s, W/s); ``shortcut`` defaults
        to ``x`` (shapes must then agree)."""
        shortcut = x if shortcut is None else shortcut
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class DLARoot(nn.Module):
    """Aggregation node: concatenate its inputs, 1x1 conv + BN, add the
    first input (residual aggregation), ReLU.

    Args:
        in_channels (int): Sum of the channels of the aggregated inputs.
        out_channels (int): Output channels (= those of the first input
            when ``residual``).
        residual (bool): Add the first input to the fused map.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 residual: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual

    def forward(self, *inputs: Tensor) -> Tensor:
        out = self.bn(self.conv(torch.cat(inputs, 1)))
        if self.residual:
            out = out + inputs[0]
        return self.relu(out)


class DLATree(nn.Module):
    """Hierarchical deep aggregation of ``2 ** depth`` basic blocks.

    A tree of depth 1 is two blocks whose outputs (plus any carried
    ``children``) meet in a :class:`DLARoot`; a deeper tree is two subtrees,
    the first one's output being carried to the second one's root. A
    ``level_root`` tree also carries its (down-sampled) input to its root:
    that is the iterative deep aggregation between stages.

    Args:
        depth (int): Tree depth (>= 1).
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Down-sampling of the first block (max-pool on the
            shortcut).
        level_root (bool): Carry the input to the root.
        root_channels (int): Input channels of the root; 0 computes them.
        root_residual (bool): Residual root.
    """

    def __init__(self,
                 depth: int,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 level_root: bool = False,
                 root_channels: int = 0,
                 root_residual: bool = False) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f'DLATree depth must be >= 1, got {depth}')
        if root_channels == 0:
            root_channels = 2 * out_channels
            if level_root:
                root_channels += in_channels
        self.depth = depth
        self.level_root = level_root
        if depth == 1:
            self.tree1 = DLABasicBlock(in_channels, out_channels, stride)
            self.tree2 = DLABasicBlock(out_channels, out_channels, 1)
            self.root = DLARoot(root_channels, out_channels, root_residual)
        else:
            self.tree1 = DLATree(depth - 1, in_channels, out_channels, stride,
                                 root_channels=0,
                                 root_residual=root_residual)
            self.tree2 = DLATree(depth - 1, out_channels, out_channels, 1,
                                 root_channels=root_channels + out_channels,
                                 root_residual=root_residual)
        self.downsample = (nn.MaxPool2d(stride, stride)
                           if stride > 1 else nn.Identity())
        self.project = (nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels))
                        if in_channels != out_channels else nn.Identity())

    def forward(self,
                x: Tensor,
                shortcut: Optional[Tensor] = None,
                children: Optional[List[Tensor]] = None) -> Tensor:
        """Args:
            x: (N, C_in, H, W).
            shortcut: unused (a tree makes its own shortcut); kept so a
                tree and a block are called alike.
            children: maps carried to this tree's root.

        Returns:
            Tensor: (N, C_out, H/stride, W/stride).
        """
        children = [] if children is None else children
        bottom = self.downsample(x)
        residual = self.project(bottom)
        if self.level_root:
            children.append(bottom)
        x1 = self.tree1(x, residual)
        if self.depth == 1:
            x2 = self.tree2(x1)
            return self.root(x2, x1, *children)
        children.append(x1)
        return self.tree2(x1, children=children)


@MODELS.register_module()
class DLA(nn.Module):
    """Deep Layer Aggregation backbone (DLA-34 by default).

    Six levels at strides 1, 2, 4, 8, 16, 32: a 7x7 stem and levels 0-1 of
    plain 3x3 convs, levels 2-5 :class:`DLATree` s of basic blocks (levels
    3-5 with iterative deep aggregation).

    Args:
        levels (Sequence[int]): Per level, the number of conv layers
            (levels 0-1) or the tree depth (levels 2-5). DLA-34:
            (1, 1, 1, 2, 2, 1).
        channels (Sequence[int]): Per level channels. DLA-34:
            (16, 32, 64, 128, 256, 512); smaller widths give a small DLA.
        out_indices (Sequence[int]): Levels returned. Defaults to all six
            (what the DLA up-sampling neck takes).
        residual_root (bool): Residual aggregation nodes (False in DLA-34).
        init_cfg: unused; the layers keep PyTorch's default initialisation.

    Attributes:
        out_channels (list[int]): channels of the returned levels.
        strides (list[int]): strides of the returned levels.
    """

    def __init__(self,
                 levels: Sequence[int] = (1, 1, 1, 2, 2, 1),
                 channels: Sequence[int] = (16, 32, 64, 128, 256, 512),
                 out_indices: Sequence[int] = (0, 1, 2, 3, 4, 5),
                 residual_root: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__()
        if len(levels) != 6 or len(channels) != 6:
            raise ValueError('DLA: backbone.levels and backbone.channels '
                             'need 6 entries, got '
                             f'{list(levels)} and {list(channels)}')
        if not out_indices or any(not 0 <= i < 6 for i in out_indices):
            raise ValueError('DLA: backbone.out_indices must be levels in '
                             f'0..5, got {list(out_indices)}')
        levels = [int(v) for v in levels]
        channels = [int(c) for c in channels]
        self.base_layer = _conv_bn_relu(3, channels[0], 7)
        self.level0 = self._conv_level(channels[0], channels[0], levels[0], 1)
        self.level1 = self._conv_level(channels[0], channels[1], levels[1], 2)
        self.level2 = DLATree(levels[2], channels[1], channels[2], 2,
                              level_root=False, root_residual=residual_root)
        self.level3 = DLATree(levels[3], channels[2], channels[3], 2,
                              level_root=True, root_residual=residual_root)
        self.level4 = DLATree(levels[4], channels[3], channels[4], 2,
                              level_root=True, root_residual=residual_root)
        self.level5 = DLATree(levels[5], channels[4], channels[5], 2,
                              level_root=True, root_residual=residual_root)
        self.out_indices = tuple(int(i) for i in out_indices)
        self.out_channels = [channels[i] for i in self.out_indices]
        self.strides = [2**i for i in self.out_indices]

    @staticmethod
    def _conv_level(in_channels: int, out_channels: int, num_convs: int,
                    stride: int) -> nn.Sequential:
        layers = []
        for i in range(num_convs):
            layers.append(
                _conv_bn_relu(in_channels if i == 0 else out_channels,
                              out_channels, 3, stride if i == 0 else 1))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args:
            x: (N, 3, H, W), H and W multiples of 32.

        Returns:
            tuple[Tensor]: the ``out_indices`` levels, level i of shape
            (N, channels[i], H / 2**i, W / 2**i).
        """
        outs = []
        x = self.base_layer(x)
        for i in range(6):
            x = getattr(self, f'level{i}')(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
