"""Up-sampling neck of DLA-34 as used by CenterNet and FairMOT.

Written from the DLA paper's iterative deep aggregation (IDA) and the
CenterNet/FairMOT description of "DLA-34 with up-sampling": deep levels are
projected, up-sampled by a bilinear-initialised depth-wise transposed conv
and merged into the next shallower level by an aggregation node, first
pairwise from the deepest level down (DLA-up), then once more across the
resulting stride 4/8/16 maps (IDA-up), giving one stride-4 map. The
projection and aggregation convs are 3x3 deformable convs (DCNv2) in the
published model (``use_dcn=True``), plain 3x3 convs otherwise.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor


class DLAUpConv(nn.Module):
    """3x3 conv (deformable when ``use_dcn``) + BN + ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        use_dcn (bool): Use mmcv's ``ModulatedDeformConv2dPack`` (DCNv2).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 use_dcn: bool = True) -> None:
        super().__init__()
        if use_dcn:
            # imported here: the module must import without compiled ops
            from mmcv.ops import ModulatedDeformConv2dPack
            self.conv = ModulatedDeformConv2dPack(
                in_channels, out_channels, 3, stride=1, padding=1)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


def _bilinear_upsampling(deconv: nn.ConvTranspose2d) -> None:
    """Set a depth-wise transposed conv to bilinear interpolation."""
    weight = deconv.weight.data
    k = weight.size(-1)
    factor = math.ceil(k / 2)
    centre = (2 * factor - 1 - factor % 2) / (2.0 * factor)
    for i in range(k):
        for j in range(k):
            weight[0, 0, i, j] = ((1 - abs(i / factor - centre)) *
                                  (1 - abs(j / factor - centre)))
    weight[:, 0] = weight[0, 0]


class IDAUp(nn.Module):
    """Iterative deep aggregation up-sampling over consecutive levels.

    Levels ``start + 1 .. end - 1`` of a list are each projected to
    ``out_channels``, up-sampled by its ``up_factors`` entry to the scale of
    the list's level ``start`` and aggregated with the previous (already
    merged) level; the list is updated in place.

    Args:
        out_channels (int): Channels of the merged maps.
        in_channels (Sequence[int]): Channels of the levels, shallowest
            first (entry 0 is the reference level, not projected).
        up_factors (Sequence[int]): Up-sampling of each level to the
            reference scale (entry 0 is 1).
        use_dcn (bool): Deformable 3x3 convs.
    """

    def __init__(self, out_channels: int, in_channels: Sequence[int],
                 up_factors: Sequence[int], use_dcn: bool = True) -> None:
        super().__init__()
        self.proj = nn.ModuleList()
        self.up = nn.ModuleList()
        self.node = nn.ModuleList()
        for c, f in zip(list(in_channels)[1:], list(up_factors)[1:]):
            f = int(f)
            self.proj.append(DLAUpConv(int(c), out_channels, use_dcn))
            if f > 1:
                up = nn.ConvTranspose2d(
                    out_channels, out_channels, f * 2, stride=f,
                    padding=f // 2, groups=out_channels, bias=False)
                _bilinear_upsampling(up)
            else:
                up = nn.Identity()
            self.up.append(up)
            self.node.append(DLAUpConv(out_channels, out_channels, use_dcn))

    def forward(self, layers: List[Tensor], start: int, end: int) -> None:
        """Merge ``layers[start + 1:end]`` in place (see class doc)."""
        for i in range(start + 1, end):
            k = i - start - 1
            layers[i] = self.up[k](self.proj[k](layers[i]))
            layers[i] = self.node[k](layers[i] + layers[i - 1])


@MODELS.register_module()
class DLAUpNeck(nn.Module):
    """DLA-up followed by IDA-up: backbone levels -> one stride-4 map.

    Args:
        in_channels (Sequence[int]): Channels of all backbone levels
            (e.g. DLA-34: 16, 32, 64, 128, 256, 512 at strides 1..32);
            FairMOT fills them from the backbone when None.
        first_level (int): Index of the output level (2: stride 4).
        last_level (int): One past the deepest level merged by the final
            IDA-up (5: the stride 4, 8, 16 maps, as CenterNet/FairMOT).
        use_dcn (bool): DCNv2 projections and nodes, as published; plain
            3x3 convs when False.
        init_cfg: unused.

    Attributes:
        out_channels (int): channels of the output map
            (``in_channels[first_level]``).
        strides (list[int]): ``[2 ** first_level]``.
    """

    def __init__(self,
                 in_channels: Optional[Sequence[int]] = None,
                 first_level: int = 2,
                 last_level: int = 5,
                 use_dcn: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__()
        if in_channels is None:
            raise ValueError('neck.in_channels is None: build the neck '
                             'through FairMOT or set the backbone channels')
        in_channels = [int(c) for c in in_channels]
        if not 0 <= first_level < last_level <= len(in_channels):
            raise ValueError(
                f'DLAUpNeck: need 0 <= neck.first_level ({first_level}) < '
                f'neck.last_level ({last_level}) <= {len(in_channels)} '
                '(the number of backbone levels)')
        self.first_level = first_level
        self.last_level = last_level
        channels = in_channels[first_level:]
        scales = [2**i for i in range(len(channels))]
        # DLA-up: from the deepest pair upwards, every IDA step merges the
        # levels below j into level j's width and scale
        self.dla_up = nn.ModuleList()
        cur_channels = list(channels)
        cur_scales = list(scales)
        for j in range(len(channels) - 2, -1, -1):
            self.dla_up.append(
                IDAUp(channels[j], cur_channels[j:],
                      [s // cur_scales[j] for s in cur_scales[j:]], use_dcn))
            cur_scales[j + 1:] = [cur_scales[j]] * (len(channels) - j - 1)
            cur_channels[j + 1:] = [channels[j]] * (len(channels) - j - 1)
        n_final = last_level - first_level
        self.ida_up = IDAUp(channels[0], channels[:n_final],
                            [2**i for i in range(n_final)], use_dcn)
        self.out_channels = channels[0]
        self.strides = [2**first_level]

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor]:
        """Args:
            feats: all backbone levels, level i (N, in_channels[i],
                H / 2**i, W / 2**i).

        Returns:
            tuple[Tensor]: one map (N, out_channels, H / 2**first_level,
            W / 2**first_level).
        """
        layers = list(feats[self.first_level:])
        outs = [layers[-1]]
        n = len(layers)
        for i, ida in enumerate(self.dla_up):
            ida(layers, n - i - 2, n)
            outs.insert(0, layers[-1])
        y = list(outs[:self.last_level - self.first_level])
        self.ida_up(y, 0, len(y))
        return (y[-1], )
