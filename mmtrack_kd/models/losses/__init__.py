"""Distillation losses (plain registered ``nn.Module``s).

Ours: ``IDResponseConsistencyLoss``, ``KeyFeatureLoss``,
``PredictionDifferenceLoss``. Baselines: ``FitNetsLoss``, ``CWDLoss``,
``PKDLoss``, ``MGDLoss``, ``FGDLoss``, ``ObjectnessKDLoss``.
"""
from .attention_guided_kd_loss import AttentionGuidedKDLoss
from .cross_model_feature_loss import CrossModelFeatureLoss
from .cwd_loss import CWDLoss
from .fgd_loss import FGDLoss, GlobalContextRelation
from .fitnets_loss import FitNetsLoss
from .id_response_loss import IDResponseConsistencyLoss
from .key_feature_loss import KeyFeatureLoss, spatial_channel_attention
from .mgd_loss import MGDLoss
from .objectness_kd_loss import ObjectnessKDLoss
from .pkd_loss import PKDLoss, standardise_channels
from .prediction_difference_loss import (
                                         PredictionDifferenceLoss,
                                         bernoulli_kl_with_logits,
)

__all__ = [
    'IDResponseConsistencyLoss', 'KeyFeatureLoss', 'PredictionDifferenceLoss',
    'FitNetsLoss', 'CWDLoss', 'PKDLoss', 'MGDLoss', 'FGDLoss',
    'ObjectnessKDLoss', 'GlobalContextRelation', 'spatial_channel_attention',
    'standardise_channels', 'bernoulli_kl_with_logits',
    'AttentionGuidedKDLoss', 'CrossModelFeatureLoss'
]
