"""Masked generative distillation baseline."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ._levels import check_level_reduction, reduce_levels
from ._utils import as_level_list, check_same_shape


@MODELS.register_module()
class MGDLoss(nn.Module):
    r"""Masked generative distillation.

    Yang et al., "Masked Generative Distillation", ECCV 2022. A random
    spatial mask M (each position dropped with probability
    :math:`\lambda`) hides part of the student map, and a generator
    G = conv3x3-ReLU-conv3x3 must rebuild the teacher's full map from the
    rest:

    .. math:: L_l = \frac{1}{N} \sum_{n,c,h,w} (G_l(S_l \odot M) - T_l)^2,
              \qquad L = w\,\alpha \sum_l L_l

    The paper sums the squared error over every element of every level
    (its distillation loss is one sum over the FPN levels, scaled by
    :math:`\alpha`), and so does the reference (mmrazor's ``MGDLoss``,
    one per level, adding up); its detection defaults are
    :math:`\alpha = 2 \times 10^{-5}` and :math:`\lambda = 0.65`, the
    values of ``configs/_base_/distill/baselines/mgd.py``. The mask drops
    whole positions (all channels of a cell at once), as the paper's.
    The paper's 1x1 alignment conv is the distiller's connector, so
    ``preds_S`` has the teacher's channels; the generator lives here and is
    trained through this loss (its parameters must reach the optimizer,
    which happens when the loss module is a child of the distiller).

    Args:
        channels (int | Sequence[int]): teacher channels, one per level when
            a list of levels is passed (one generator per level).
        alpha_mgd (float): loss scale (paper: 2e-5 for the sum reduction).
            Default 2e-5.
        lambda_mgd (float): masked ratio. Default 0.65.
        seed (int, optional): seed of the mask generator, for reproducible
            masks. Default None (torch's global RNG).
        loss_weight (float): weight. Default 1.0.
        reduction (str): over levels, ``'sum'`` (paper and reference) or
            ``'mean'``.
    """

    def __init__(self,
                 channels: Union[int, Sequence[int]],
                 alpha_mgd: float = 2e-5,
                 lambda_mgd: float = 0.65,
                 seed: Optional[int] = None,
                 loss_weight: float = 1.0,
                 reduction: str = 'sum') -> None:
        super().__init__()
        chans = [channels] if isinstance(channels, int) else list(channels)
        if not chans or any(int(c) < 1 for c in chans):
            raise ValueError(f'MGDLoss: channels must be a positive int or a '
                             f'list of them, got {channels!r}')
        if not 0 <= lambda_mgd < 1:
            raise ValueError(f'MGDLoss: lambda_mgd must be in [0, 1), got '
                             f'{lambda_mgd}')
        self.channels = [int(c) for c in chans]
        self.generators = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1)) for c in self.channels)
        self.alpha_mgd = float(alpha_mgd)
        self.lambda_mgd = float(lambda_mgd)
        self.loss_weight = float(loss_weight)
        self.reduction = check_level_reduction(reduction, 'MGDLoss')
        self._rng = None
        if seed is not None:
            self._rng = torch.Generator().manual_seed(int(seed))

    def random_mask(self, n: int, h: int, w: int, device) -> Tensor:
        """(N, 1, H, W) mask: 0 with probability lambda_mgd, else 1."""
        rand = torch.rand(n, 1, h, w, generator=self._rng)
        return (rand >= self.lambda_mgd).float().to(device)

    def forward(self, preds_S: Union[Tensor, List[Tensor]],
                preds_T: Union[Tensor, List[Tensor]]) -> Tensor:
        """Compute the loss.

        Args:
            preds_S: (N, C, H, W) student map(s) after the connector, one per
                level (one generator each).
            preds_T: teacher map(s) of the same shapes; detached here.

        Returns:
            Tensor: scalar loss, levels reduced by ``reduction``.
        """
        levels_S, levels_T = as_level_list(preds_S, preds_T, 'MGDLoss')
        if len(levels_S) != len(self.generators):
            raise ValueError(f'MGDLoss: got {len(levels_S)} levels but '
                             f'channels lists {len(self.generators)}')
        per_level = []
        for s, t, gen, c in zip(levels_S, levels_T, self.generators,
                                self.channels):
            check_same_shape(s, t, 'MGDLoss')
            if s.shape[1] != c:
                raise ValueError(f'MGDLoss: map has {s.shape[1]} channels, '
                                 f'config channels says {c}')
            n, _, h, w = s.shape
            rebuilt = gen(s * self.random_mask(n, h, w, s.device))
            per_level.append(((rebuilt - t.detach())**2).sum() / n)
        return self.loss_weight * self.alpha_mgd * reduce_levels(
            per_level, self.reduction)
