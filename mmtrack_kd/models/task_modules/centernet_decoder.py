"""Response decoder of CenterNet-style heads (FairMOT), ``'centernet'``.

Every cell of the stride-4 map is one prior: its box is the cell plus the
predicted centre offset, extended by the predicted sides (``ltrb``) or
width/height; its class logits are the heatmap logits and its objectness
logit is the largest of them (the heatmap is CenterNet's only confidence).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import TASK_UTILS
from torch import Tensor

from .grid import cell_grid
from .response_decoders import BaseResponseDecoder


@TASK_UTILS.register_module(name=['CenterNetResponseDecoder', 'centernet'])
class CenterNetResponseDecoder(BaseResponseDecoder):
    """FairMOT's ``FairMOTDetHead``: preds = (heatmap (N, C, H, W),
    wh (N, 4 or 2, H, W), offset (N, 2, H, W)), sizes and offsets in map
    cells.

    Args:
        strides (Sequence[int]): The one stride of the map (``[4]``);
            filled from the student's ``bbox_head.strides`` when None.
        ltrb (bool): ``wh`` holds the distances to the four sides (FairMOT)
            instead of width/height; filled from ``bbox_head.ltrb`` when
            None.
    """

    head_attrs = ('strides', 'ltrb')

    def __init__(self,
                 strides: Optional[Sequence[int]] = None,
                 ltrb: Optional[bool] = True) -> None:
        super().__init__(strides)
        if len(self.strides) != 1:
            raise ValueError('decoder.strides: a CenterNet head has one '
                             f'level, got {self.strides}')
        self.ltrb = True if ltrb is None else bool(ltrb)

    def levels(self, preds: Sequence[Tensor]) -> List[Tensor]:
        return [preds[0]]

    def __call__(self,
                 preds: Sequence[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Returns boxes (N, H*W, 4) x1y1x2y2 in input pixels, objectness
        logits (N, H*W) and class logits (N, H*W, C), cells in row-major
        order."""
        if not isinstance(preds, (tuple, list)) or len(preds) != 3:
            raise ValueError(f'{self.owner}: centernet preds must be the '
                             'tuple (heatmap, wh, offset)')
        heatmap, wh, offset = preds
        n, c, h, w = heatmap.shape
        size_channels = 4 if self.ltrb else 2
        if wh.shape[1] != size_channels:
            raise ValueError(
                f'{self.owner}: wh has {wh.shape[1]} channels, decoder.ltrb='
                f'{self.ltrb} needs {size_channels}')
        xs, ys = cell_grid(h, w, heatmap.device, offset.dtype)
        centre = torch.stack([xs, ys], 0)[None] + offset  # (N, 2, H, W)
        centre = centre.flatten(2).transpose(1, 2)
        size = wh.flatten(2).transpose(1, 2)
        if self.ltrb:
            boxes = torch.cat([centre - size[..., :2],
                               centre + size[..., 2:]], -1)
        else:
            boxes = torch.cat([centre - size / 2, centre + size / 2], -1)
        cls = heatmap.flatten(2).transpose(1, 2)
        return boxes * self.strides[0], cls.max(-1).values, cls

    def box_priors(self, preds: Sequence[Tensor]) -> Tensor:
        """(N, H*W) bool: the heatmap's peaks, the cells holding the
        largest logit of their 3x3 neighbourhood (CenterNet's decoding).

        CenterNet trains its size and offset at the box centres only, so
        the box decoded at any other cell is untrained output; the peaks
        are where the model means a box."""
        heat = preds[0].max(1, keepdim=True).values  # (N, 1, H, W)
        peaks = heat == F.max_pool2d(heat, 3, stride=1, padding=1)
        return peaks.flatten(1)
