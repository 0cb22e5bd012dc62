"""AttTrack's cross-model feature learning (Nalaie and Zheng, 2022)."""
from typing import List, Union

import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._levels import check_level_reduction, reduce_levels
from ._utils import as_level_list, check_same_shape


def attention_map(feat: Tensor) -> Tensor:
    """Activation-based attention: mean over channels of the squared map,
    flattened and L2-normalised per image.

    Args:
        feat (Tensor): (N, C, H, W).

    Returns:
        Tensor: (N, H*W), unit L2 norm per row.
    """
    return F.normalize(feat.pow(2).mean(1).flatten(1), dim=1)


@MODELS.register_module()
class CrossModelFeatureLoss(nn.Module):
    r"""Cross-model feature learning of AttTrack.

    Nalaie and Zheng, "AttTrack: Online Deep Attention Transfer for
    Multi-object Tracking", arXiv:2210.08648, 2022. No code of the paper is
    public.

    What the paper says: of AttTrack's three parts (cross-model feature
    learning at training; interleaving teacher and student at inference;
    the teacher's updated predictions as priors of the student), only the
    first is a training loss: it aligns the intermediate (high-level)
    representations of the student with the teacher's, the student's going
    through a connector that maps them to the teacher's shape. The two
    inference-time parts change the tracker, not training, and are not
    part of this benchmark.

    What we chose where the description is silent: the aligned
    representations are the three neck levels (the same maps as every
    other feature baseline here); the connector is the distiller's
    ``ConvBNConnector``; the alignment is the mean squared error per level;
    an optional activation-attention term (attention transfer of Zagoruyko
    and Komodakis, ICLR 2017, which the title's "attention transfer"
    recalls) compares unit-normalised :math:`q = \mathrm{vec}(\mathrm{mean}_C
    F^2)`; it is off by default (``att_weight=0``) since the paper does
    not describe it as part of the loss. Per level, with :math:`S` the
    student map through the connector and :math:`T` the teacher's
    (detached):

    .. math::
        L_l = \lambda_f \operatorname{mean}(S - T)^2
            + \lambda_a \frac{1}{N}\sum_n \|q(S_n) - q(T_n)\|_2^2,
        \qquad L = w \sum_l L_l

    Args:
        feat_weight (float): :math:`\lambda_f`. Default 1.0.
        att_weight (float): :math:`\lambda_a`. Default 0.0 (off).
        loss_weight (float): w. Default 1.0.
        reduction (str): over levels, ``'sum'`` or ``'mean'``.
    """

    def __init__(self,
                 feat_weight: float = 1.0,
                 att_weight: float = 0.0,
                 loss_weight: float = 1.0,
                 reduction: str = 'sum') -> None:
        super().__init__()
        if feat_weight < 0 or att_weight < 0:
            raise ValueError('CrossModelFeatureLoss: feat_weight and '
                             'att_weight must be >= 0, got '
                             f'{feat_weight} and {att_weight}')
        self.feat_weight = float(feat_weight)
        self.att_weight = float(att_weight)
        self.loss_weight = float(loss_weight)
        self.reduction = check_level_reduction(reduction,
                                               'CrossModelFeatureLoss')

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
                                           'CrossModelFeatureLoss')
        per_level = []
        for s, t in zip(levels_S, levels_T):
            check_same_shape(s, t, 'CrossModelFeatureLoss')
            t = t.detach()
            loss = self.feat_weight * ((s - t)**2).mean()
            if self.att_weight > 0:
                diff = attention_map(s) - attention_map(t)
                loss = loss + self.att_weight * diff.pow(2).sum(1).mean()
            per_level.append(loss)
        return self.loss_weight * reduce_levels(per_level, self.reduction)
