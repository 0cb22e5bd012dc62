"""Distillation losses (plain registered ``nn.Module``s).

Ours: ``IDResponseConsistencyLoss``, ``KeyFeatureLoss``,
``PredictionDifferenceLoss``.
"""
from .id_response_loss import IDResponseConsistencyLoss
from .key_feature_loss import KeyFeatureLoss, spatial_channel_attention
from .prediction_difference_loss import (PredictionDifferenceLoss,
                                         bernoulli_kl_with_logits)

__all__ = [
    'IDResponseConsistencyLoss', 'KeyFeatureLoss', 'PredictionDifferenceLoss',
    'spatial_channel_attention', 'bernoulli_kl_with_logits'
]
