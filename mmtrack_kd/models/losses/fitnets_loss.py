"""FitNets feature-imitation baseline."""
from typing import List, Union

import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ._levels import check_level_reduction, reduce_levels
from ._utils import as_level_list, check_same_shape


@MODELS.register_module()
class FitNetsLoss(nn.Module):
    r"""FitNets hint loss.

    Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015. The
    paper's hint loss is :math:`\frac{1}{2}\|u_h - r(v_g)\|^2` between the
    teacher's hint layer and the regressor r on the student's guided layer;
    with several hint pairs (here one per neck level) each pair is its own
    loss and the losses add up (as every per-pair distillation config of
    mmrazor does), so the default reduction over levels is ``'sum'``:

    .. math:: L = w \sum_l \frac{1}{2} \operatorname{mean}(F^l_S - F^l_T)^2

    The regressor r (the paper's convolutional regressor) is the
    distiller's connector, so ``preds_S`` arrives with the teacher's shape.
    Where we depart from the paper: the squared error is averaged over the
    elements of a level (the paper sums them; its hint stage is trained
    alone, so it needs no balance against other losses, while here the
    hint is trained jointly with the tracking losses and a sum would scale
    with the map size).

    Args:
        loss_weight (float): weight w. Default 1.0 (the paper has none: the
            hint stage is a separate training).
        reduction (str): over levels, ``'sum'`` (reference) or ``'mean'``.
    """

    def __init__(self, loss_weight: float = 1.0,
                 reduction: str = 'sum') -> None:
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.reduction = check_level_reduction(reduction, 'FitNetsLoss')

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
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'FitNetsLoss')
        per_level = []
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'FitNetsLoss')
            per_level.append(0.5 * ((s - t.detach())**2).mean())
        return self.loss_weight * reduce_levels(per_level, self.reduction)
