"""Identity-embedding head of CSTrack: SAAN, embedding conv, ID classifier."""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from mmtrack_kd.utils.config import checked_num_ids

from ..task_modules.grid import point_cells


def gather_embeddings(id_map: Tensor, centres: Tensor,
                      batch_input_shape: Sequence[int]) -> Tensor:
    """Read the embedding map at points given in input pixels.

    The map's stride is computed from the input and map sizes, so any input
    size works; points outside the map are clamped to its border.

    Args:
        id_map: (D, H, W) embedding map of one image.
        centres: (K, 2) points (x, y) in input pixels.
        batch_input_shape: (H_in, W_in) of the network input.

    Returns:
        Tensor: (K, D) raw (not normalised) embeddings.
    """
    idx = point_cells(centres, id_map.shape[-2:], batch_input_shape)
    return id_map.flatten(1)[:, idx].t()


@MODELS.register_module()
class CSTrackIDHead(nn.Module):
    """SAAN -> 1x1 embedding conv, with a bias-free identity classifier.

    Args:
        num_ids: number of training identities (classifier width); GT ids
            must lie in [0, num_ids).
        in_channels: ReID map channels per level; CSTrack fills them from
            the neck when None.
        embed_channels: D, embedding width (512 in the paper).
        saan: config of the fusion module (``SAAN``); its ``in_channels`` is
            filled from ``in_channels``.
        loss_weight: weight of the ID cross-entropy when the model balances
            losses with fixed weights. Default 0.02, the published CSTrack
            value against YOLOv5's (0.05, 1.0, 0.5) detection weights.

    Attributes:
        embed_channels (int), num_ids (int), embed_scale (float): the
        sqrt(2) * ln(num_ids - 1) scale of normalised embeddings before the
        classifier (num_ids - 1 is floored at 2 so tiny id sets still learn).
    """

    def __init__(self,
                 num_ids: int,
                 in_channels: Optional[Sequence[int]] = None,
                 embed_channels: int = 512,
                 saan: Optional[dict] = None,
                 loss_weight: float = 0.02) -> None:
        super().__init__()
        if in_channels is None:
            raise ValueError('id_head.in_channels is None: build the head '
                             'through CSTrack or set it in the config')
        num_ids = checked_num_ids(num_ids)
        self.in_channels = [int(c) for c in in_channels]
        self.num_ids = int(num_ids)
        self.embed_channels = int(embed_channels)
        self.loss_weight = float(loss_weight)
        saan_cfg = dict(type='SAAN')
        saan_cfg.update(saan or {})
        saan_cfg['in_channels'] = self.in_channels
        self.saan = MODELS.build(saan_cfg)
        self.embed = nn.Conv2d(self.saan.out_channels, self.embed_channels, 1)
        self.classifier = nn.Linear(
            self.embed_channels, self.num_ids, bias=False)
        self.embed_scale = math.sqrt(2) * math.log(max(self.num_ids - 1, 2))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args:
            feats: ReID maps per level (N, C_l, H_l, W_l), stride 8 first.

        Returns:
            Tensor: (N, D, H_0, W_0) raw embedding map at the first level's
            resolution (stride 8).
        """
        return self.embed(self.saan(feats))

    def loss(self, id_map: Tensor, gt_bboxes: Sequence[Tensor],
             gt_ids: Sequence[Tensor],
             batch_input_shape: Tuple[int, int]) -> Dict[str, Tensor]:
        """Identity classification loss at GT centres.

        Args:
            id_map: (N, D, H, W) from :meth:`forward`.
            gt_bboxes: per image (K_i, 4) x1, y1, x2, y2 in input pixels.
            gt_ids: per image (K_i,) identity labels in [0, num_ids).
            batch_input_shape: (H_in, W_in).

        Returns:
            dict: ``loss_id``, unweighted cross-entropy averaged over GTs (the
            model applies the weight); zero with gradient 0 when no GT.

        Raises:
            ValueError: an id outside [0, num_ids).
        """
        embeds, labels = [], []
        for emb_map, boxes, ids in zip(id_map, gt_bboxes, gt_ids):
            boxes = boxes.to(id_map).view(-1, 4)
            if boxes.numel() == 0:
                continue
            ids = ids.to(id_map.device).long().view(-1)
            if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_ids):
                raise ValueError(
                    f'GT identity {int(ids.min())}..{int(ids.max())} outside '
                    f'[0, {self.num_ids}): set id_head.num_ids to the number '
                    'of training identities')
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            embeds.append(
                gather_embeddings(emb_map, centres, batch_input_shape))
            labels.append(ids)
        if not embeds:
            zero = id_map.sum() * 0 + self.classifier.weight.sum() * 0
            return dict(loss_id=zero)
        emb = F.normalize(torch.cat(embeds), dim=1) * self.embed_scale
        logits = self.classifier(emb)
        return dict(loss_id=F.cross_entropy(logits, torch.cat(labels)))
