from .ccn import CCN, CrossCorrelationBlock
from .saan import SAAN, ChannelAttention, SpatialAttention

__all__ = [
    'CCN', 'CrossCorrelationBlock', 'SAAN', 'ChannelAttention',
    'SpatialAttention'
]
