"""Channel-wise distillation baseline."""
from typing import List, Union

import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._levels import check_level_reduction, reduce_levels
from ._utils import as_level_list, check_same_shape


@MODELS.register_module()
class CWDLoss(nn.Module):
    r"""Channel-wise knowledge distillation.

    Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction",
    ICCV 2021. Each channel of a (N, C, H, W) map is turned into a
    distribution over its H W positions; per level l:

    .. math::
        L_l = \frac{\tau^2}{N C} \sum_{n, c}
            KL(softmax_{HW}(T_{nc}/\tau) \| softmax_{HW}(S_{nc}/\tau)),
        \qquad L = w \sum_l L_l

    As the reference (mmrazor's ``ChannelWiseDivergence``, one loss per
    FPN level whose values add up) the levels are summed; its detection
    configs (RetinaNet and Faster R-CNN FPN distillation) use
    :math:`\tau = 1` and ``loss_weight = 10`` per level, the values of
    ``configs/_base_/distill/baselines/cwd.py``. The student map comes
    through the distiller's connector (the paper's 1x1 alignment conv).

    Args:
        tau (float): temperature. Default 1.0.
        loss_weight (float): weight w of every level. Default 1.0 (the
            fragment sets the reference's 10).
        reduction (str): over levels, ``'sum'`` (reference) or ``'mean'``.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0,
                 reduction: str = 'sum') -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'CWDLoss: tau must be > 0, got {tau}')
        self.tau = float(tau)
        self.loss_weight = float(loss_weight)
        self.reduction = check_level_reduction(reduction, 'CWDLoss')

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
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'CWDLoss')
        per_level = []
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'CWDLoss')
            n, c = s.shape[:2]
            log_s = F.log_softmax(s.reshape(n * c, -1) / self.tau, dim=1)
            log_t = F.log_softmax(
                t.detach().reshape(n * c, -1) / self.tau, dim=1)
            kl = (log_t.exp() * (log_t - log_s)).sum()
            per_level.append(self.tau**2 * kl / (n * c))
        return self.loss_weight * reduce_levels(per_level, self.reduction)
