"""Attention-guided feature distillation for MOT (Liang et al., 2023)."""
from typing import List, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._levels import check_level_reduction, reduce_levels
from ._utils import as_level_list, check_same_shape


def spatial_softmax_attention(value: Tensor, temperature: float) -> Tensor:
    """H W times the softmax over positions of a (N, H, W) map (mean 1).

    Args:
        value (Tensor): (N, H, W).
        temperature (float): softmax temperature.

    Returns:
        Tensor: (N, H, W) attention, positive, mean 1 per image.
    """
    n, h, w = value.shape
    return h * w * F.softmax(value.reshape(n, -1) / temperature,
                             dim=1).view(n, h, w)


@MODELS.register_module()
class AttentionGuidedKDLoss(nn.Module):
    r"""Attention-guided feature distillation with a teacher foreground mask.

    Liang et al., "Compressing the Multiobject Tracking Model via Knowledge
    Distillation", IEEE Trans. Computational Social Systems, 2023
    (doi:10.1109/TCSS.2023.3293882). No code of the paper is public.

    What the paper says: MOT models are more sensitive to foreground than
    classifiers, so the feature distillation is *attention-guided*: it
    focuses the student on the crucial regions of the teacher's feature
    map, the foreground and the regions where the student disagrees most
    with the teacher; and a *foreground mask*, made from the teacher's
    knowledge, filters out the low-quality soft labels (teacher targets) of
    the background.

    What we chose where the description is silent (per level, with
    :math:`T` the teacher map, detached, and :math:`S` the student map
    through the distiller's connector, both (N, C, H, W)):

    * foreground attention: FGD's spatial attention of the teacher,
      :math:`A_T = HW\,\mathrm{softmax}_{HW}(\mathrm{mean}_C|T| / \tau)`;
    * discrepancy attention, the same form on the (detached) error,
      :math:`A_D = HW\,\mathrm{softmax}_{HW}(\mathrm{mean}_C|S - T| /
      \tau)`; both have mean 1 per image and are averaged,
      :math:`A = (A_T + A_D) / 2`, with no gradient through them;
    * foreground mask: the positions where the teacher's attention is at
      least ``fg_thr`` times its mean, :math:`M = [A_T \ge \theta]`
      (binary: the background's soft labels are dropped, not down-weighted);
    * the loss of a level averages the attention-weighted squared error
      over the channels and the kept positions of each image, then over the
      images:

    .. math::
        L_l = \frac{1}{N}\sum_n \frac{\sum_{c,h,w} M A (S - T)^2}
              {C \max(1, \sum_{h,w} M)}, \qquad L = w \sum_l L_l

    (``reduction='sum'``, as the other per-level baselines; ``'mean'``
    averages the levels). With :math:`\theta \le 0` nothing is dropped.

    Args:
        temperature (float): :math:`\tau` of both attentions. Default 0.5
            (FGD's).
        fg_thr (float): :math:`\theta`, on the teacher attention of mean 1.
            Default 1.0 (the positions of above-average teacher attention).
        loss_weight (float): w. Default 1.0.
        reduction (str): over levels, ``'sum'`` or ``'mean'``.
    """

    def __init__(self,
                 temperature: float = 0.5,
                 fg_thr: float = 1.0,
                 loss_weight: float = 1.0,
                 reduction: str = 'sum') -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError('AttentionGuidedKDLoss: temperature must be > 0, '
                             f'got {temperature}')
        self.temperature = float(temperature)
        self.fg_thr = float(fg_thr)
        self.loss_weight = float(loss_weight)
        self.reduction = check_level_reduction(reduction,
                                               'AttentionGuidedKDLoss')

    def guidance(self, s: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        """The attention and the foreground mask of one level.

        Args:
            s (Tensor): (N, C, H, W) student map.
            t (Tensor): (N, C, H, W) teacher map.

        Returns:
            tuple: (N, H, W) attention :math:`A` and (N, H, W) float mask
            :math:`M`, both without gradient.
        """
        with torch.no_grad():
            att_T = spatial_softmax_attention(t.abs().mean(1),
                                              self.temperature)
            att_D = spatial_softmax_attention((s - t).abs().mean(1),
                                              self.temperature)
            mask = (att_T >= self.fg_thr).to(s.dtype)
        return (att_T + att_D) / 2, mask

    def forward(self, preds_S: Union[Tensor, List[Tensor]],
                preds_T: Union[Tensor, List[Tensor]]) -> Tensor:
        """Compute the loss.

        Args:
            preds_S: (N, C, H, W) student map(s) after the connector, one per
                level.
            preds_T: teacher map(s) of the same shapes; detached here.

        Returns:
            Tensor: scalar loss, levels reduced by ``reduction``.
        """
        levels_S, levels_T = as_level_list(preds_S, preds_T,
                                           'AttentionGuidedKDLoss')
        per_level = []
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'AttentionGuidedKDLoss')
            t = t.detach()
            n, c = s.shape[:2]
            att, mask = self.guidance(s, t)
            weighted = ((s - t)**2).sum(1) * att * mask
            kept = mask.flatten(1).sum(1).clamp(min=1)
            per_level.append(
                (weighted.flatten(1).sum(1) / (c * kept)).sum() / n)
        return self.loss_weight * reduce_levels(per_level, self.reduction)
