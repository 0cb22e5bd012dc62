"""How the feature baselines combine their per-level losses."""
from typing import List, Union

from torch import Tensor

LEVEL_REDUCTIONS = ('sum', 'mean')


def check_level_reduction(reduction: str, name: str) -> str:
    """Return ``reduction`` when it is ``'sum'`` or ``'mean'``.

    Raises:
        ValueError: naming the loss and its ``reduction`` key otherwise.
    """
    if reduction not in LEVEL_REDUCTIONS:
        raise ValueError(f'{name}: reduction must be one of '
                         f'{LEVEL_REDUCTIONS} (over levels), got '
                         f'{reduction!r}')
    return reduction


def reduce_levels(per_level: List[Union[Tensor, float]],
                  reduction: str) -> Union[Tensor, float]:
    """Sum (the references' choice) or average the per-level losses."""
    total = sum(per_level)
    return total if reduction == 'sum' else total / len(per_level)
