"""FairMOT heads: CenterNet-style detection branches and the re-ID branch.

Both work on one stride-4 map. The detection head predicts a class heatmap
(Gaussian focal loss at object centres), the box size (distances to the
four sides, ``ltrb``, or width/height) and the sub-cell centre offset (L1
at the centre cells); the ID head predicts a D-channel embedding map that
is read at object centres and classified into the training identities
(cross-entropy on L2-normalised, scaled embeddings).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.utils import gaussian_radius, gen_gaussian_target
from mmdet.registry import MODELS
from torch import Tensor

from mmtrack_kd.utils.config import checked_num_ids

from ..task_modules.grid import map_stride


def _branch(in_channels: int, head_conv: int, out_channels: int) -> nn.Module:
    """3x3 conv + ReLU + 1x1 conv (a 1x1 conv alone when head_conv is 0)."""
    if head_conv <= 0:
        return nn.Conv2d(in_channels, out_channels, 1)
    return nn.Sequential(
        nn.Conv2d(in_channels, head_conv, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(head_conv, out_channels, 1))


def _last_conv(branch: nn.Module) -> nn.Conv2d:
    return branch[-1] if isinstance(branch, nn.Sequential) else branch


def _single_map(feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    """The one map of a neck output given as a Tensor or a 1-tuple."""
    if isinstance(feats, Tensor):
        return feats
    if len(feats) != 1:
        raise ValueError(f'FairMOT heads take one feature map, got '
                         f'{len(feats)} levels')
    return feats[0]


def centre_cells(bboxes: Tensor, feat_hw: Sequence[int],
                 stride: float) -> Dict[str, Tensor]:
    """Centre cells of boxes on a stride-``stride`` map, as FairMOT does.

    Boxes are mapped to map units and clipped to the map; boxes with no
    width or height left are invalid.

    Args:
        bboxes: (K, 4) x1y1x2y2 in input pixels.
        feat_hw: (H, W) of the map.
        stride: input pixels per map cell.

    Returns:
        dict: ``boxes`` (K, 4) clipped map-unit boxes, ``centre`` (K, 2)
        float centres (x, y), ``cell`` (K, 2) long integer cells,
        ``index`` (K,) flat index y * W + x, ``valid`` (K,) bool.
    """
    h, w = int(feat_hw[0]), int(feat_hw[1])
    boxes = bboxes.float().view(-1, 4) / stride
    boxes = torch.stack([
        boxes[:, 0].clamp(0, w - 1), boxes[:, 1].clamp(0, h - 1),
        boxes[:, 2].clamp(0, w - 1), boxes[:, 3].clamp(0, h - 1)
    ], dim=1)
    valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    cell = centre.floor().long()
    index = cell[:, 1] * w + cell[:, 0]
    return dict(boxes=boxes, centre=centre, cell=cell, index=index,
                valid=valid)


@MODELS.register_module()
class FairMOTDetHead(nn.Module):
    """CenterNet detection branches of FairMOT.

    Args:
        num_classes (int): Heatmap channels (1 for pedestrians).
        in_channels (int): Channels of the neck map; FairMOT fills it.
        head_conv (int): Hidden channels of each branch (256 in FairMOT for
            DLA-34; 0: a single 1x1 conv).
        ltrb (bool): Regress the distances from the centre to the four
            sides (FairMOT's default) instead of width/height.
        stride (int): Stride of the map (4).
        min_overlap (float): IoU target of the CornerNet Gaussian radius.
        loss_heatmap (dict): mmdet ``GaussianFocalLoss`` (alpha 2, gamma 4),
            averaged over the number of objects.
        loss_wh (dict): mmdet ``L1Loss``, weight 0.1 as FairMOT.
        loss_offset (dict): mmdet ``L1Loss``, weight 1.
        heatmap_bias (float): Initial bias of the heatmap logits (-2.19, a
            prior probability of 0.1).

    Attributes:
        strides (list[int]): ``[stride]``.
        wh_channels (int): 4 (ltrb) or 2.
    """

    def __init__(self,
                 num_classes: int = 1,
                 in_channels: Optional[int] = None,
                 head_conv: int = 256,
                 ltrb: bool = True,
                 stride: int = 4,
                 min_overlap: float = 0.7,
                 loss_heatmap: Optional[dict] = None,
                 loss_wh: Optional[dict] = None,
                 loss_offset: Optional[dict] = None,
                 heatmap_bias: float = -2.19) -> None:
        super().__init__()
        if in_channels is None:
            raise ValueError('bbox_head.in_channels is None: build the head '
                             'through FairMOT or set it in the config')
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.ltrb = bool(ltrb)
        self.wh_channels = 4 if self.ltrb else 2
        self.strides = [int(stride)]
        self.min_overlap = float(min_overlap)
        self.heatmap_head = _branch(self.in_channels, head_conv,
                                    self.num_classes)
        self.wh_head = _branch(self.in_channels, head_conv, self.wh_channels)
        self.offset_head = _branch(self.in_channels, head_conv, 2)
        nn.init.constant_(_last_conv(self.heatmap_head).bias, heatmap_bias)
        for branch in (self.wh_head, self.offset_head):
            for m in branch.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.constant_(m.bias, 0)
        self.loss_heatmap = MODELS.build(
            loss_heatmap or dict(type='GaussianFocalLoss', loss_weight=1.0))
        self.loss_wh = MODELS.build(
            loss_wh or dict(type='L1Loss', loss_weight=0.1))
        self.loss_offset = MODELS.build(
            loss_offset or dict(type='L1Loss', loss_weight=1.0))

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """Args:
            feats: the neck map (N, C, H, W), or a 1-tuple of it.

        Returns:
            tuple: ``heatmap`` (N, num_classes, H, W) logits, ``wh``
            (N, 4 or 2, H, W) in map cells, ``offset`` (N, 2, H, W).
        """
        x = _single_map(feats)
        return self.heatmap_head(x), self.wh_head(x), self.offset_head(x)

    def get_targets(self, gt_bboxes: Sequence[Tensor],
                    gt_labels: Sequence[Tensor], feat_hw: Sequence[int],
                    stride: float) -> Dict[str, Tensor]:
        """Heatmap, size and offset targets.

        Args:
            gt_bboxes: per image (K_i, 4) x1y1x2y2 in input pixels.
            gt_labels: per image (K_i,) classes.
            feat_hw: (H, W) of the map.
            stride: input pixels per cell.

        Returns:
            dict: ``heatmap`` (N, C, H, W); for the M valid objects of the
            batch ``img`` (M,) image index, ``index`` (M,) flat cell,
            ``wh`` (M, 4 or 2) and ``offset`` (M, 2) targets in cells.
        """
        h, w = int(feat_hw[0]), int(feat_hw[1])
        device = gt_bboxes[0].device if len(gt_bboxes) else 'cpu'
        heatmap = torch.zeros(len(gt_bboxes), self.num_classes, h, w,
                              device=device)
        imgs, index, wh, offset = [], [], [], []
        for i, (boxes, labels) in enumerate(zip(gt_bboxes, gt_labels)):
            if boxes.numel() == 0:
                continue
            cells = centre_cells(boxes.to(device), (h, w), stride)
            labels = labels.to(device).long().view(-1)
            valid = cells['valid']
            b, ctr = cells['boxes'][valid], cells['centre'][valid]
            cell = cells['cell'][valid]
            for box, c, lab in zip(b.tolist(), cell.tolist(),
                                   labels[valid].tolist()):
                bw, bh = box[2] - box[0], box[3] - box[1]
                radius = gaussian_radius((math.ceil(bh), math.ceil(bw)),
                                         self.min_overlap)
                gen_gaussian_target(heatmap[i, lab], c, max(0, int(radius)))
            if self.ltrb:
                wh.append(torch.cat([ctr - b[:, :2], b[:, 2:] - ctr], 1))
            else:
                wh.append(b[:, 2:] - b[:, :2])
            offset.append(ctr - cell.float())
            index.append(cells['index'][valid])
            imgs.append(torch.full_like(index[-1], i))
        if index:
            return dict(heatmap=heatmap, img=torch.cat(imgs),
                        index=torch.cat(index), wh=torch.cat(wh),
                        offset=torch.cat(offset))
        return dict(
            heatmap=heatmap,
            img=torch.zeros(0, dtype=torch.long, device=device),
            index=torch.zeros(0, dtype=torch.long, device=device),
            wh=torch.zeros(0, self.wh_channels, device=device),
            offset=torch.zeros(0, 2, device=device))

    def loss(self, preds: Tuple[Tensor, Tensor, Tensor],
             gt_bboxes: Sequence[Tensor], gt_labels: Sequence[Tensor],
             batch_input_shape: Sequence[int]) -> Dict[str, Tensor]:
        """Detection losses.

        Args:
            preds: the output of :meth:`forward`.
            gt_bboxes: per image (K_i, 4) x1y1x2y2 in input pixels.
            gt_labels: per image (K_i,).
            batch_input_shape: (H_in, W_in).

        Returns:
            dict: ``loss_heatmap`` (focal loss / number of objects),
            ``loss_wh`` and ``loss_offset`` (L1 per element at the centre
            cells); finite (zero for the regressions) with no objects.
        """
        heatmap, wh, offset = preds
        feat_hw = heatmap.shape[-2:]
        t = self.get_targets(gt_bboxes, gt_labels, feat_hw,
                             map_stride(feat_hw, batch_input_shape)[1])
        num_pos = t['index'].numel()
        prob = heatmap.sigmoid().clamp(1e-4, 1 - 1e-4)
        loss_heatmap = self.loss_heatmap(
            prob, t['heatmap'].to(prob), avg_factor=max(num_pos, 1))
        if num_pos == 0:
            zero = wh.sum() * 0 + offset.sum() * 0
            return dict(loss_heatmap=loss_heatmap, loss_wh=zero,
                        loss_offset=zero.clone())
        pred_wh = _cells(wh, t['img'], t['index'])
        pred_off = _cells(offset, t['img'], t['index'])
        loss_wh = self.loss_wh(
            pred_wh, t['wh'].to(pred_wh),
            avg_factor=num_pos * self.wh_channels)
        loss_offset = self.loss_offset(
            pred_off, t['offset'].to(pred_off), avg_factor=num_pos * 2)
        return dict(loss_heatmap=loss_heatmap, loss_wh=loss_wh,
                    loss_offset=loss_offset)


def _cells(feat: Tensor, img: Tensor, index: Tensor) -> Tensor:
    """(N, D, H, W) read at (image, flat cell) pairs -> (M, D)."""
    n, d = feat.shape[:2]
    return feat.view(n, d, -1)[img, :, index]


@MODELS.register_module()
class FairMOTIDHead(nn.Module):
    """Re-ID branch of FairMOT: embedding map and identity classifier.

    Args:
        num_ids (int): Training identities (classifier width); GT ids
            outside [0, num_ids) raise, negative ids are ignored.
        in_channels (int): Channels of the neck map; FairMOT fills it.
        embed_channels (int): D (128 in FairMOT).
        head_conv (int): Hidden channels of the branch (256 for DLA-34).
        classifier_bias (bool): Bias of the linear classifier (FairMOT's
            ``nn.Linear`` has one).
        loss_weight (float): Weight of the ID loss when the model balances
            losses with fixed weights.

    Attributes:
        embed_channels (int), num_ids (int), embed_scale (float): the
        sqrt(2) * ln(num_ids - 1) scale of the normalised embeddings (num_ids
        - 1 floored at 2).
    """

    def __init__(self,
                 num_ids: int,
                 in_channels: Optional[int] = None,
                 embed_channels: int = 128,
                 head_conv: int = 256,
                 classifier_bias: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if in_channels is None:
            raise ValueError('id_head.in_channels is None: build the head '
                             'through FairMOT or set it in the config')
        num_ids = checked_num_ids(num_ids)
        self.in_channels = int(in_channels)
        self.num_ids = int(num_ids)
        self.embed_channels = int(embed_channels)
        self.loss_weight = float(loss_weight)
        self.embed = _branch(self.in_channels, head_conv, self.embed_channels)
        for m in self.embed.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.constant_(m.bias, 0)
        self.classifier = nn.Linear(
            self.embed_channels, self.num_ids, bias=classifier_bias)
        self.embed_scale = math.sqrt(2) * math.log(max(self.num_ids - 1, 2))

    def forward(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Args:
            feats: the neck map (N, C, H, W), or a 1-tuple of it.

        Returns:
            Tensor: (N, D, H, W) raw embedding map.
        """
        return self.embed(_single_map(feats))

    def loss(self, id_map: Tensor, gt_bboxes: Sequence[Tensor],
             gt_ids: Sequence[Tensor],
             batch_input_shape: Sequence[int]) -> Dict[str, Tensor]:
        """Identity cross-entropy at the objects' centre cells.

        Args:
            id_map: (N, D, H, W) from :meth:`forward`.
            gt_bboxes: per image (K_i, 4) x1y1x2y2 in input pixels.
            gt_ids: per image (K_i,) identity labels; < 0 ignored.
            batch_input_shape: (H_in, W_in).

        Returns:
            dict: ``loss_id``, unweighted mean cross-entropy; zero with
            gradient 0 when no object has an identity.

        Raises:
            ValueError: an id >= num_ids.
        """
        feat_hw = id_map.shape[-2:]
        stride = map_stride(feat_hw, batch_input_shape)[1]
        embeds: List[Tensor] = []
        labels: List[Tensor] = []
        for emb_map, boxes, ids in zip(id_map, gt_bboxes, gt_ids):
            if boxes.numel() == 0:
                continue
            ids = ids.to(id_map.device).long().view(-1)
            if ids.numel() and ids.max() >= self.num_ids:
                raise ValueError(
                    f'GT identity {int(ids.max())} outside [0, '
                    f'{self.num_ids}): set id_head.num_ids to the number of '
                    'training identities')
            cells = centre_cells(boxes.to(id_map.device), feat_hw, stride)
            keep = cells['valid'] & (ids >= 0)
            if not keep.any():
                continue
            embeds.append(emb_map.flatten(1)[:, cells['index'][keep]].t())
            labels.append(ids[keep])
        if not embeds:
            zero = id_map.sum() * 0 + sum(
                p.sum() * 0 for p in self.classifier.parameters())
            return dict(loss_id=zero)
        emb = F.normalize(torch.cat(embeds), dim=1) * self.embed_scale
        logits = self.classifier(emb)
        return dict(loss_id=F.cross_entropy(logits, torch.cat(labels)))
