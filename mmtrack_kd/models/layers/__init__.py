from .ccn import CCN, CrossCorrelationBlock
from .saan import SAAN, ChannelAttention, SpatialAttention
from .window_pool import WindowMaxPool2d, use_window_max_pools, window_max

__all__ = [
    'CCN', 'CrossCorrelationBlock', 'SAAN', 'ChannelAttention',
    'SpatialAttention', 'WindowMaxPool2d', 'use_window_max_pools',
    'window_max'
]
