"""FitNets feature-imitation baseline."""
from typing import List, Union

import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ._utils import as_level_list, check_same_shape


@MODELS.register_module()
class FitNetsLoss(nn.Module):
    r"""FitNets hint loss.

    Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.

    .. math:: L = w \cdot \frac{1}{2} \operatorname{mean}(F_S - F_T)^2

    The paper's regressor r (a 1x1 conv) is the distiller's connector, so
    ``preds_S`` arrives with the teacher's shape. The mean over all elements
    (instead of the paper's sum) keeps the scale independent of map size.

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
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'FitNetsLoss')
        total = 0.
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'FitNetsLoss')
            total = total + 0.5 * ((s - t.detach())**2).mean()
        return self.loss_weight * total / len(levels_S)
