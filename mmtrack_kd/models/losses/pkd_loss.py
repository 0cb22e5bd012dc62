"""Pearson-correlation distillation baseline."""
from typing import List, Union

import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

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
    via Pearson Correlation Coefficient", NeurIPS 2022. Both maps are
    standardised per channel over batch and positions, then

    .. math:: L = w \cdot \frac{1}{2}\operatorname{mean}(\hat S - \hat T)^2
              = w \cdot \operatorname{mean}_c (1 - r_c)

    with r_c the Pearson correlation of channel c (population std, so the
    identity is exact). Invariant to any per-channel positive affine map of
    either model's features.

    Args:
        loss_weight (float): weight. Default 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, preds_S: Union[Tensor, List[Tensor]],
                preds_T: Union[Tensor, List[Tensor]]) -> Tensor:
        """Args: preds_S, preds_T: (N, C, H, W) maps of equal shape or lists
        of them (averaged over levels); preds_T is detached here.

        Returns:
            Tensor: scalar loss.
        """
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'PKDLoss')
        total = 0.
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'PKDLoss')
            diff = standardise_channels(s) - standardise_channels(t.detach())
            total = total + 0.5 * (diff**2).mean()
        return self.loss_weight * total / len(levels_S)
