"""Hinton-style logit distillation on YOLO objectness."""
from typing import Optional, Sequence

import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ._utils import YOLODecoder, detach_preds
from .prediction_difference_loss import bernoulli_kl_with_logits


@MODELS.register_module()
class ObjectnessKDLoss(nn.Module):
    r"""Logit KD on every prior's objectness.

    Hinton et al., "Distilling the Knowledge in a Neural Network", NIPS
    2014 Deep Learning Workshop (arXiv:1503.02531), with the two-class
    (sigmoid) softmax of an objectness logit:

    .. math::
        L = w\,\tau^2 \operatorname{mean}_{n, m}
            KL(\sigma(o_T/\tau) \| \sigma(o_S/\tau))

    The KL equals BCE(sigma(o_S/tau), sigma(o_T/tau)) minus the teacher's
    entropy: the same gradient as that BCE against the teacher, but 0
    when S == T. Every prior counts equally (the plain baseline that our
    ``PredictionDifferenceLoss`` improves on).

    Args:
        decoder (dict): as in ``PredictionDifferenceLoss``:
            ``dict(type='yolov5', anchors, strides, num_classes=1)`` or
            ``dict(type='yolox', strides)``.
        temperature (float): tau. Default 1.0.
        loss_weight (float): weight. Default 1.0.
    """

    def __init__(self,
                 decoder: dict,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.decoder = YOLODecoder(decoder, 'ObjectnessKDLoss')
        if temperature <= 0:
            raise ValueError('ObjectnessKDLoss: temperature must be > 0, got '
                             f'{temperature}')
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)

    def forward(self, preds_S, preds_T,
                batch_input_shape: Optional[Sequence[int]] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds_S: raw student head outputs (yolov5: list of (N, A*(5+C),
                H_l, W_l); yolox: (cls_scores, bbox_preds, objectnesses)).
            preds_T: raw teacher head outputs, same layout; detached here.
            batch_input_shape: unused; accepted for the common signature.

        Returns:
            Tensor: scalar loss.
        """
        _, obj_S, _ = self.decoder(preds_S)
        _, obj_T, _ = self.decoder(detach_preds(preds_T))
        if obj_S.shape != obj_T.shape:
            raise ValueError('ObjectnessKDLoss: student and teacher decode '
                             f'to {tuple(obj_S.shape)} and '
                             f'{tuple(obj_T.shape)} priors')
        tau = self.temperature
        kl = bernoulli_kl_with_logits(obj_S / tau, obj_T / tau)
        return self.loss_weight * tau**2 * kl.mean()
