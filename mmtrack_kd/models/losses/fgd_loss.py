"""Focal and global distillation baseline."""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._levels import check_level_reduction, reduce_levels
from ._utils import as_level_list, box_cell_masks, check_same_shape
from .key_feature_loss import spatial_channel_attention


class GlobalContextRelation(nn.Module):
    """GcBlock-style global relation: x + transform(attention-pooled x).

    Context: softmax over positions of a 1x1 conv (C -> 1), pooled into a
    (N, C, 1, 1) vector; transform: conv1x1 (C -> C/2) - LayerNorm - ReLU -
    conv1x1 (C/2 -> C), the last conv zero-initialised so the block starts
    as the identity.

    Args:
        channels (int): C.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // 2, 1)
        self.conv_mask = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        nn.init.kaiming_normal_(self.conv_mask.weight, mode='fan_in')
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        n, c, h, w = x.shape
        att = F.softmax(self.conv_mask(x).view(n, 1, h * w), dim=2)
        # (1, HW) by (HW, C): as (C, HW) by (HW, 1) the product took about
        # 10x longer on the CPU
        context = torch.bmm(att, x.view(n, c, h * w).transpose(1, 2))
        return x + self.transform(context.view(n, c, 1, 1))


@MODELS.register_module()
class FGDLoss(nn.Module):
    r"""Focal and global distillation.

    Yang et al., "Focal and Global Knowledge Distillation for Detectors",
    CVPR 2022. With the teacher's spatial attention :math:`A_s` (H W
    softmax of mean |F| / T) and channel attention :math:`A_c` (C softmax),
    a foreground mask :math:`M_{fg}` = 1 / (cells of the box) on each box's
    cells (max over overlapping boxes), a background mask :math:`M_{bg}` = 1
    off the boxes normalised to sum 1 per image:

    .. math::
        L_{fg} = \frac{1}{N}\sum M_{fg} A^T_s A^T_c (F_S - F_T)^2,\quad
        L_{bg} = \frac{1}{N}\sum M_{bg} A^T_s A^T_c (F_S - F_T)^2

    .. math::
        L_{at} = \frac{1}{N}(\sum|A^S_s - A^T_s| + \sum|A^S_c - A^T_c|),
        \quad L_{gl} = \frac{1}{N}\sum (G_S(F_S) - G_T(F_T))^2

    .. math::
        L = w \sum_l (\alpha L^l_{fg} + \beta L^l_{bg} + \gamma L^l_{at}
            + \lambda L^l_{gl})

    The paper computes these on every FPN level and adds them up (its
    configs put one FGD loss on each level, the losses adding up), so the
    default reduction over levels is ``'sum'``. The attentions keep the
    paper's scale (spatial: H W times the softmax, channel: C times the
    softmax, mean 1). Defaults are the paper's RetinaNet-family values
    (one-stage, as CSTrack's YOLO head): temperature 0.5,
    :math:`\alpha = 10^{-3}`, :math:`\beta = 5 \times 10^{-4}`,
    :math:`\gamma = 10^{-3}`, :math:`\lambda = 5 \times 10^{-6}`.

    G_S and G_T are two learnable GcBlock relations
    (:class:`GlobalContextRelation`), one per level, kept inside this
    module (they must reach the optimizer); the teacher map is detached
    before G_T. The student map comes through the distiller's connector with
    the teacher's shape.

    Args:
        channels (int | Sequence[int]): teacher channels (one per level).
        temperature (float): attention temperature. Default 0.5.
        alpha_fgd (float): fg weight. Default 1e-3.
        beta_fgd (float): bg weight. Default 5e-4.
        gamma_fgd (float): attention weight. Default 1e-3.
        lambda_fgd (float): global weight. Default 5e-6.
        loss_weight (float): overall weight. Default 1.0.
        reduction (str): over levels, ``'sum'`` (paper) or ``'mean'``.
    """

    def __init__(self,
                 channels: Union[int, Sequence[int]],
                 temperature: float = 0.5,
                 alpha_fgd: float = 1e-3,
                 beta_fgd: float = 5e-4,
                 gamma_fgd: float = 1e-3,
                 lambda_fgd: float = 5e-6,
                 loss_weight: float = 1.0,
                 reduction: str = 'sum') -> None:
        super().__init__()
        chans = [channels] if isinstance(channels, int) else list(channels)
        if not chans or any(int(c) < 1 for c in chans):
            raise ValueError(f'FGDLoss: channels must be a positive int or a '
                             f'list of them, got {channels!r}')
        if temperature <= 0:
            raise ValueError(f'FGDLoss: temperature must be > 0, got '
                             f'{temperature}')
        self.channels = [int(c) for c in chans]
        self.global_S = nn.ModuleList(
            GlobalContextRelation(c) for c in self.channels)
        self.global_T = nn.ModuleList(
            GlobalContextRelation(c) for c in self.channels)
        self.temperature = float(temperature)
        self.alpha_fgd = float(alpha_fgd)
        self.beta_fgd = float(beta_fgd)
        self.gamma_fgd = float(gamma_fgd)
        self.lambda_fgd = float(lambda_fgd)
        self.loss_weight = float(loss_weight)
        self.reduction = check_level_reduction(reduction, 'FGDLoss')

    @staticmethod
    def masks(gt_bboxes: Sequence[Tensor], n: int, h: int, w: int,
              batch_input_shape: Sequence[int],
              device) -> Tuple[Tensor, Tensor]:
        """Foreground (N, H, W) = max over boxes of 1/cells, and background
        (N, H, W) = 1 off the boxes, normalised to sum 1 per image."""
        fg = torch.zeros(n, h, w, device=device)
        for i, boxes in enumerate(gt_bboxes):
            if len(boxes) == 0:
                continue
            m = box_cell_masks(boxes.to(device), (h, w), batch_input_shape)
            m = m / m.flatten(1).sum(1)[:, None, None]
            fg[i] = m.max(0).values
        bg = (fg == 0).float()
        bg = bg / bg.flatten(1).sum(1).clamp(min=1)[:, None, None]
        return fg, bg

    def _single_level(self, s: Tensor, t: Tensor, level: int,
                      gt_bboxes: Sequence[Tensor],
                      batch_input_shape: Sequence[int]) -> Tensor:
        check_same_shape(s, t, 'FGDLoss')
        if s.shape[1] != self.channels[level]:
            raise ValueError(f'FGDLoss: level {level} has {s.shape[1]} '
                             f'channels, config channels says '
                             f'{self.channels[level]}')
        n, _, h, w = s.shape
        if len(gt_bboxes) != n:
            raise ValueError(f'FGDLoss: {len(gt_bboxes)} gt_bboxes for a '
                             f'batch of {n}')
        t = t.detach()
        sp_T, ch_T = spatial_channel_attention(t, self.temperature)
        sp_S, ch_S = spatial_channel_attention(s, self.temperature)
        fg, bg = self.masks(gt_bboxes, n, h, w, batch_input_shape, s.device)
        sq = (s - t)**2 * sp_T[:, None] * ch_T[:, :, None, None]
        loss_fg = (sq * fg[:, None]).sum() / n
        loss_bg = (sq * bg[:, None]).sum() / n
        loss_at = ((sp_S - sp_T).abs().sum() + (ch_S - ch_T).abs().sum()) / n
        loss_gl = ((self.global_S[level](s) -
                    self.global_T[level](t))**2).sum() / n
        return (self.alpha_fgd * loss_fg + self.beta_fgd * loss_bg +
                self.gamma_fgd * loss_at + self.lambda_fgd * loss_gl)

    def forward(self, preds_S: Union[Tensor, List[Tensor]],
                preds_T: Union[Tensor, List[Tensor]],
                gt_bboxes: Sequence[Tensor],
                batch_input_shape: Sequence[int]) -> Tensor:
        """Compute the loss.

        Args:
            preds_S: (N, C, H, W) student map(s) after the connector, one per
                level.
            preds_T: teacher map(s) of the same shapes; detached here.
            gt_bboxes: per frame (K_i, 4) x1, y1, x2, y2 in input pixels.
            batch_input_shape: (H_in, W_in) of the padded batch.

        Returns:
            Tensor: scalar loss, levels reduced by ``reduction``.
        """
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'FGDLoss')
        if len(levels_S) != len(self.channels):
            raise ValueError(f'FGDLoss: got {len(levels_S)} levels but '
                             f'channels lists {len(self.channels)}')
        per_level = [
            self._single_level(s, t, i, gt_bboxes, batch_input_shape)
            for i, (s, t) in enumerate(zip(levels_S, levels_T))
        ]
        return self.loss_weight * reduce_levels(per_level, self.reduction)
