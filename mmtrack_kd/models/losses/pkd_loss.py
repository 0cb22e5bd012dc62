"""Pearson-correlation distillation baseline."""
from typing import List, Union

import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ._levels import check_level_reduction, reduce_levels
from ._utils import as_level_list, check_same_shape


def standardise_channels(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """Zero mean, unit (population) std per channel over (N, H, W)."""
    dims = (0, 2, 3)
    mean = feat.mean(dims, keepdim=True)
    std = feat.std(dims, keepdim=True, unbiased=False)
    return (feat - mean) / (std + eps)


@MODELS.register_module()
class PKDLoss(nn.Module):
    r"""Pearson-correlation KD.

    Cao et al., "PKD: General Distillation Framework for Object Detectors
    via Pearson Correlation Coefficient", NeurIPS 2022. Both maps of a
    level are standardised per channel over batch and positions (zero mean,
    unit variance), then

    .. math:: L_l = \frac{1}{2}\operatorname{mean}(\hat S_l - \hat T_l)^2
              = \operatorname{mean}_c (1 - r_{l,c}), \qquad
              L = w \sum_l L_l

    with :math:`r_{l,c}` the Pearson correlation of channel c (population
    std, so the identity is exact). Invariant to any per-channel positive
    affine map of either model's features. As the reference (mmrazor's
    ``PKDLoss`` summing over the FPN levels it is given, its configs one
    loss per level) the levels are summed; the reference configs use
    ``loss_weight = 10`` per level for the one-stage detectors (RetinaNet,
    FCOS, the family of CSTrack's YOLO head) and 6 for two-stage ones; the
    fragment ``configs/_base_/distill/baselines/pkd.py`` sets 10. The
    student map comes through the distiller's connector (needed here only
    because the channel counts differ).

    Args:
        loss_weight (float): weight w of every level. Default 1.0 (the
            fragment sets the reference's 10).
        reduction (str): over levels, ``'sum'`` (reference) or ``'mean'``.
    """

    def __init__(self, loss_weight: float = 1.0,
                 reduction: str = 'sum') -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.reduction = check_level_reduction(reduction, 'PKDLoss')

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
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'PKDLoss')
        per_level = []
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'PKDLoss')
            diff = standardise_channels(s) - standardise_channels(t.detach())
            per_level.append(0.5 * (diff**2).mean())
        return self.loss_weight * reduce_levels(per_level, self.reduction)
