"""YOLOv5 anchor-based detection head with its training loss.

Predictions are decoded by
:func:`mmtrack_kd.models.task_modules.yolo_decode.decode_yolov5`, so the head,
the tracker and the distillation losses agree on one decoding.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

# Pedestrian anchors (about 1:3) of CSTrack for 1088x608 inputs, per level
# a flat [w1, h1, w2, h2, w3, h3] in input pixels.
PEDESTRIAN_ANCHORS_1088x608 = ((8, 24, 11, 34, 16, 48),
                               (32, 96, 45, 135, 64, 192),
                               (128, 384, 180, 540, 256, 640))


def bbox_ciou(box1: Tensor, box2: Tensor, eps: float = 1e-7) -> Tensor:
    """Complete IoU of paired boxes given as (cx, cy, w, h).

    Args:
        box1: (K, 4) boxes.
        box2: (K, 4) boxes, same units.
        eps: numerical guard.

    Returns:
        Tensor: (K,) CIoU in [-1.5, 1] (IoU minus centre-distance and
        aspect-ratio penalties).
    """
    b1x1, b1x2 = box1[:, 0] - box1[:, 2] / 2, box1[:, 0] + box1[:, 2] / 2
    b1y1, b1y2 = box1[:, 1] - box1[:, 3] / 2, box1[:, 1] + box1[:, 3] / 2
    b2x1, b2x2 = box2[:, 0] - box2[:, 2] / 2, box2[:, 0] + box2[:, 2] / 2
    b2y1, b2y2 = box2[:, 1] - box2[:, 3] / 2, box2[:, 1] + box2[:, 3] / 2
    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * \
        (torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)).clamp(0)
    w1, h1 = box1[:, 2], box1[:, 3] + eps
    w2, h2 = box2[:, 2], box2[:, 3] + eps
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    diag2 = cw**2 + ch**2 + eps
    dist2 = (box1[:, 0] - box2[:, 0])**2 + (box1[:, 1] - box2[:, 1])**2
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1))**2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (dist2 / diag2 + v * alpha)


@MODELS.register_module()
class YOLOv5Head(nn.Module):
    """YOLOv5 detection head: per level a 1x1 conv to A*(5+C) channels.

    Args:
        num_classes: C. CSTrack uses 1 (pedestrian).
        in_channels: channels per level; CSTrack fills them from the neck
            when None.
        anchors: per level a flat list [w1, h1, ...] in input pixels. The
            default is CSTrack's pedestrian set for 1088x608; scale it with
            the input size in configs.
        strides: per level stride in input pixels.
        anchor_thr: max ratio between a GT side and an anchor side for the
            anchor to be assigned (YOLOv5 ``anchor_t``).
        neighbour_offset: a GT is also assigned to the neighbouring cells
            whose border lies within this fraction of a cell of its centre.
        obj_balance: per-level weight of the objectness loss.
        iou_smooth: objectness target = (1 - s) + s * IoU(pred, GT) detached
            (YOLOv5 ``gr``; 1.0 = pure IoU target).
        loss_box_weight, loss_obj_weight, loss_cls_weight: weights of the
            three terms (YOLOv5 hyp: 0.05, 1.0, 0.5). YOLOv5/CSTrack further
            multiply the summed loss by the batch size; we do not, so scale
            the learning rate or these weights accordingly.
        prior_img_size: image size assumed for the objectness bias prior
            (about 8 objects per image at 640 px, YOLOv5's init).

    Attributes:
        anchors, strides, num_classes, num_anchors, in_channels.
    """

    def __init__(self,
                 num_classes: int = 1,
                 in_channels: Optional[Sequence[int]] = None,
                 anchors: Sequence[Sequence[float]] = (
                     PEDESTRIAN_ANCHORS_1088x608),
                 strides: Sequence[int] = (8, 16, 32),
                 anchor_thr: float = 4.0,
                 neighbour_offset: float = 0.5,
                 obj_balance: Sequence[float] = (4.0, 1.0, 0.4),
                 iou_smooth: float = 1.0,
                 loss_box_weight: float = 0.05,
                 loss_obj_weight: float = 1.0,
                 loss_cls_weight: float = 0.5,
                 prior_img_size: int = 640) -> None:
        super().__init__()
        if in_channels is None:
            raise ValueError('bbox_head.in_channels is None: build the head '
                             'through CSTrack or set it in the config')
        if not (len(in_channels) == len(anchors) == len(strides) ==
                len(obj_balance)):
            raise ValueError(
                'bbox_head.anchors, bbox_head.strides, bbox_head.obj_balance '
                f'and in_channels must have one entry per level, got '
                f'{len(anchors)}, {len(strides)}, {len(obj_balance)}, '
                f'{len(in_channels)}')
        num_anchors = {len(a) for a in anchors}
        if len(num_anchors) != 1 or next(iter(num_anchors)) % 2:
            raise ValueError('bbox_head.anchors: every level needs the same '
                             'number of (w, h) pairs')
        self.num_classes = int(num_classes)
        self.in_channels = [int(c) for c in in_channels]
        self.anchors = [[float(v) for v in a] for a in anchors]
        self.strides = [int(s) for s in strides]
        self.num_anchors = next(iter(num_anchors)) // 2
        self.num_outputs = 5 + self.num_classes
        self.anchor_thr = float(anchor_thr)
        self.neighbour_offset = float(neighbour_offset)
        self.obj_balance = [float(b) for b in obj_balance]
        self.iou_smooth = float(iou_smooth)
        self.loss_box_weight = float(loss_box_weight)
        self.loss_obj_weight = float(loss_obj_weight)
        self.loss_cls_weight = float(loss_cls_weight)
        self.prior_img_size = int(prior_img_size)
        self.convs = nn.ModuleList([
            nn.Conv2d(c, self.num_anchors * self.num_outputs, 1)
            for c in self.in_channels
        ])
        self._init_biases()

    def _init_biases(self) -> None:
        """YOLOv5 prior: objectness ~ 8 objects per image, classes ~ 0.6."""
        with torch.no_grad():
            for conv, stride in zip(self.convs, self.strides):
                b = conv.bias.view(self.num_anchors, self.num_outputs)
                b[:, 4] = math.log(8 / (self.prior_img_size / stride)**2)
                b[:, 5:] = math.log(0.6 / (self.num_classes - 0.99))

    def init_weights(self) -> None:
        """Re-apply the bias prior (called by mmengine after init_cfg)."""
        self._init_biases()

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Args:
            feats: per level (N, C_l, H_l, W_l).

        Returns:
            list[Tensor]: per level (N, A*(5+C), H_l, W_l), channels grouped by
            anchor as x, y, w, h, objectness, class logits.
        """
        if len(feats) != len(self.convs):
            raise ValueError(f'bbox_head got {len(feats)} levels, built for '
                             f'{len(self.convs)}')
        return [conv(f) for conv, f in zip(self.convs, feats)]

    # ------------------------------------------------------------------ loss
    def _build_targets(self, pred_shape: Tuple[int, int], level: int,
                       gts: Tensor) -> Tuple[Tensor, ...]:
        """YOLOv5 assignment on one level.

        Args:
            pred_shape: (H_l, W_l).
            level: level index.
            gts: (K, 6) rows (image index, class, cx, cy, w, h) in input
                pixels.

        Returns:
            tuple: image idx (P,), anchor idx (P,), row (P,), col (P,),
            target box (P, 4) as (dx, dy, w, h) in cells relative to the cell
            corner, anchor wh (P, 2) in cells, class (P,).
        """
        h, w = pred_shape
        stride = self.strides[level]
        anc = gts.new_tensor(self.anchors[level]).view(-1, 2) / stride
        num_a = anc.shape[0]
        k = gts.shape[0]
        # (A, K, 7): gts in cells with the anchor index appended
        g = gts.clone()
        g[:, 2:6] /= stride
        g = torch.cat([
            g.unsqueeze(0).expand(num_a, k, 6),
            torch.arange(num_a, device=gts.device,
                         dtype=gts.dtype).view(num_a, 1, 1).expand(num_a, k, 1)
        ], 2)
        ratio = g[:, :, 4:6] / anc[:, None]
        keep = torch.max(ratio, 1 / ratio).amax(2) < self.anchor_thr
        g = g[keep]  # (P0, 7)
        off = self.neighbour_offset
        gxy = g[:, 2:4]
        gxy_inv = gxy.new_tensor([w, h]) - gxy
        left, up = ((gxy % 1 < off) & (gxy > 1)).T
        right, down = ((gxy_inv % 1 < off) & (gxy_inv > 1)).T
        masks = torch.stack(
            [torch.ones_like(left), left, up, right, down])  # (5, P0)
        offsets = gxy.new_tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]
                                  ]) * off
        g = g.unsqueeze(0).expand(5, -1, -1)[masks]
        shift = offsets[:, None].expand(-1, masks.shape[1], -1)[masks]
        gxy = g[:, 2:4]
        gij = (gxy - shift).long()
        gi = gij[:, 0].clamp(0, w - 1)
        gj = gij[:, 1].clamp(0, h - 1)
        tbox = torch.cat([gxy - torch.stack([gi, gj], 1).to(gxy), g[:, 4:6]],
                         1)
        a_idx = g[:, 6].long()
        return (g[:, 0].long(), a_idx, gj, gi, tbox, anc[a_idx],
                g[:, 1].long())

    def loss(self, preds: Sequence[Tensor], gt_bboxes: Sequence[Tensor],
             gt_labels: Sequence[Tensor]) -> Dict[str, Tensor]:
        """YOLOv5 loss.

        Args:
            preds: per level (N, A*(5+C), H_l, W_l) from :meth:`forward`.
            gt_bboxes: per image (K_i, 4) x1, y1, x2, y2 in input pixels.
            gt_labels: per image (K_i,) class indices in [0, C).

        Returns:
            dict: ``loss_box`` (1 - CIoU), ``loss_obj`` (balanced BCE) and,
            when C > 1, ``loss_cls`` (BCE), each weighted; finite when no
            image has a GT.

        Raises:
            ValueError: a label outside [0, C) when C > 1 (with C = 1 labels
            are ignored).
        """
        gts = []
        for i, (boxes, labels) in enumerate(zip(gt_bboxes, gt_labels)):
            boxes = boxes.to(preds[0]).view(-1, 4)
            if boxes.numel() == 0:
                continue
            cxcy = (boxes[:, :2] + boxes[:, 2:]) / 2
            wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3)
            idx = boxes.new_full((boxes.shape[0], 1), i)
            lab = labels.to(boxes).view(-1, 1)
            if self.num_classes > 1 and (lab.min() < 0 or
                                         lab.max() >= self.num_classes):
                raise ValueError(
                    f'GT label {int(lab.min())}..{int(lab.max())} outside '
                    f'[0, {self.num_classes}): check bbox_head.num_classes')
            gts.append(torch.cat([idx, lab, cxcy, wh], 1))
        gts = torch.cat(gts) if gts else preds[0].new_zeros((0, 6))

        loss_box = preds[0].new_zeros(())
        loss_obj = preds[0].new_zeros(())
        loss_cls = preds[0].new_zeros(())
        for lvl, pred in enumerate(preds):
            n, _, h, w = pred.shape
            p = pred.view(n, self.num_anchors, self.num_outputs, h, w)
            p = p.permute(0, 1, 3, 4, 2)  # (N, A, H, W, 5+C)
            tobj = torch.zeros_like(p[..., 4])
            b, a, gj, gi, tbox, anc, cls = self._build_targets((h, w), lvl,
                                                               gts)
            if b.numel():
                ps = p[b, a, gj, gi]  # (P, 5+C)
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2)**2 * anc
                ciou = bbox_ciou(torch.cat([pxy, pwh], 1), tbox)
                loss_box = loss_box + (1.0 - ciou).mean()
                score = ciou.detach().clamp(0).to(tobj)
                tobj[b, a, gj, gi] = (1.0 - self.iou_smooth) + \
                    self.iou_smooth * score
                if self.num_classes > 1:
                    tcls = torch.zeros_like(ps[:, 5:])
                    tcls[torch.arange(cls.numel()), cls] = 1.0
                    loss_cls = loss_cls + F.binary_cross_entropy_with_logits(
                        ps[:, 5:], tcls)
            else:
                # keep every prediction in the graph when nothing is assigned
                loss_box = loss_box + p.sum() * 0
            loss_obj = loss_obj + self.obj_balance[lvl] * \
                F.binary_cross_entropy_with_logits(p[..., 4], tobj)
        losses = dict(
            loss_box=loss_box * self.loss_box_weight,
            loss_obj=loss_obj * self.loss_obj_weight)
        if self.num_classes > 1:
            losses['loss_cls'] = loss_cls * self.loss_cls_weight
        return losses
