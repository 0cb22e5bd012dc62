"""Channel-wise distillation baseline."""
from typing import List, Union

import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._utils import as_level_list, check_same_shape


@MODELS.register_module()
class CWDLoss(nn.Module):
    r"""Channel-wise knowledge distillation.

    Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction",
    ICCV 2021. Each channel is turned into a distribution over positions:

    .. math::
        L = w \frac{\tau^2}{N C} \sum_{n, c}
            KL(softmax_{HW}(T_{nc}/\tau) \| softmax_{HW}(S_{nc}/\tau))

    Args:
        tau (float): temperature. Default 1.0.
        loss_weight (float): weight. Default 1.0.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'CWDLoss: tau must be > 0, got {tau}')
        self.tau = float(tau)
        self.loss_weight = float(loss_weight)

    def forward(self, preds_S: Union[Tensor, List[Tensor]],
                preds_T: Union[Tensor, List[Tensor]]) -> Tensor:
        """Args: preds_S, preds_T: (N, C, H, W) maps of equal shape or lists
        of them (averaged over levels); preds_T is detached here.

        Returns:
            Tensor: scalar loss.
        """
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'CWDLoss')
        total = 0.
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'CWDLoss')
            n, c = s.shape[:2]
            log_s = F.log_softmax(s.reshape(n * c, -1) / self.tau, dim=1)
            log_t = F.log_softmax(
                t.detach().reshape(n * c, -1) / self.tau, dim=1)
            kl = (log_t.exp() * (log_t - log_s)).sum()
            total = total + self.tau**2 * kl / (n * c)
        return self.loss_weight * total / len(levels_S)
