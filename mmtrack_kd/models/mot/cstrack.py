"""CSTrack: joint detection and embedding with a CCN/SAAN split."""
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import batched_nms
from mmdet.models.mot.base import BaseMOTModel
from mmdet.registry import MODELS
from mmdet.structures import TrackSampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.batch import box_tensor, fold_video_inputs, video_frames
from ..dense_heads.cstrack_id_head import gather_embeddings
from ..layers.window_pool import use_window_max_pools
from ..task_modules.yolo_decode import decode_yolov5
from ._track import track_clip
from .split import JDESplitMixin

DEFAULT_TEST_CFG = dict(
    score_thr=0.5, nms=dict(type='nms', iou_threshold=0.6), max_per_img=500)


@MODELS.register_module()
class CSTrack(JDESplitMixin, BaseMOTModel):
    """CSTrack (Liang et al., IEEE TIP 2022), a JDE-style tracker.

    backbone -> neck (3 levels, strides 8/16/32) -> CCN splits every level
    into a detection and a ReID feature -> YOLOv5 head on the detection
    features, SAAN + embedding conv on the ReID features (stride-8 map) ->
    JDE tracker.

    Channels flow automatically: ``neck.in_channels``, ``ccn.in_channels``,
    ``bbox_head.in_channels`` and ``id_head.in_channels`` may be left None
    (or out) in the config; they are read from a dry run of the built
    backbone/neck on a 64x64 input at construction time.

    Args:
        backbone: e.g. mmdet ``CSPDarknet`` with YOLOv5 deepen/widen factors
            (n 0.33/0.25, s 0.33/0.5, m 0.67/0.75, l 1.0/1.0).
        neck: e.g. mmdet ``YOLOXPAFPN``.
        bbox_head: ``YOLOv5Head`` config.
        id_head: ``CSTrackIDHead`` config (needs ``num_ids``).
        ccn: ``CCN`` config. Defaults to ``dict(type='CCN')``.
        tracker: tracker config (``JDETracker``); only needed by predict.
        data_preprocessor: ``TrackDataPreprocessor`` config.
        train_cfg: unused; kept for config symmetry.
        test_cfg: ``score_thr`` (0.5), ``nms`` (``dict(type='nms',
            iou_threshold=0.6)``, mmcv ``batched_nms`` cfg), ``max_per_img``
            (500).
        loss_balance: ``'fixed'`` multiplies the ID loss by
            ``id_head.loss_weight``; ``'uncertainty'`` learns the JDE task
            weights: 0.5 * (exp(-s_det) L_det + exp(-s_id) L_id + s_det +
            s_id), with s_det, s_id initialised to -4.85, -4.15 as in JDE
            (the last term is reported as ``loss_uncertainty``).
        loss_scale_by_batch: multiply every loss by the number of frames in
            the batch, as YOLOv5 and the published CSTrack do (their SGD lr
            0.005 assumes it). Set False for per-frame mean losses.
        init_cfg: initialisation config.

    Attributes:
        neck_channels (list[int]): channels of each neck level.
        strides (list[int]): strides of the neck levels.
        embed_channels (int): D of the embedding map.
    """

    default_test_cfg = DEFAULT_TEST_CFG

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 bbox_head: dict,
                 id_head: dict,
                 ccn: Optional[dict] = None,
                 tracker: Optional[dict] = None,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 loss_balance: str = 'fixed',
                 loss_scale_by_batch: bool = True,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        if loss_balance not in ('fixed', 'uncertainty'):
            raise ValueError("model.loss_balance must be 'fixed' or "
                             f"'uncertainty', got {loss_balance!r}")
        self.backbone = MODELS.build(backbone)
        # SPP's max pools by 1-D window maxima where no gradient flows
        # (a frozen teacher, inference): the same values, far faster on CPU
        use_window_max_pools(self.backbone)
        neck = copy.deepcopy(dict(neck))
        if neck.get('in_channels') is None:
            neck['in_channels'] = [
                f.shape[1] for f in self._dry_run(self.backbone)
            ]
        self.neck = MODELS.build(neck)
        neck_outs = self._dry_run(nn.Sequential(self.backbone, self.neck))
        if len(neck_outs) != 3:
            raise ValueError(f'model.neck must give 3 levels, gives '
                             f'{len(neck_outs)}')
        self.neck_channels = [int(f.shape[1]) for f in neck_outs]
        self.strides = [64 // int(f.shape[-1]) for f in neck_outs]

        self.ccn = MODELS.build(
            self._fill(ccn or dict(type='CCN'), self.neck_channels))
        self.bbox_head = MODELS.build(
            self._fill(bbox_head, self.neck_channels))
        if list(self.bbox_head.strides) != self.strides:
            raise ValueError(
                f'model.bbox_head.strides {self.bbox_head.strides} differ '
                f'from the neck strides {self.strides}')
        self.id_head = MODELS.build(self._fill(id_head, self.neck_channels))
        self.embed_channels = self.id_head.embed_channels
        if tracker is not None:
            self.tracker = MODELS.build(tracker)
        self.train_cfg = train_cfg
        self.test_cfg = self.merged_test_cfg(test_cfg)
        self.loss_balance = loss_balance
        self.loss_scale_by_batch = bool(loss_scale_by_batch)
        if loss_balance == 'uncertainty':
            self.s_det = nn.Parameter(torch.tensor(-4.85))
            self.s_id = nn.Parameter(torch.tensor(-4.15))

    @staticmethod
    def _fill(cfg: dict, channels: List[int]) -> dict:
        cfg = copy.deepcopy(dict(cfg))
        if cfg.get('in_channels') is None:
            cfg['in_channels'] = list(channels)
        return cfg

    @staticmethod
    def _dry_run(module: nn.Module) -> Tuple[Tensor, ...]:
        """Run ``module`` on a 1x3x64x64 zero image in eval mode, no grad."""
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                outs = module(torch.zeros(1, 3, 64, 64))
        finally:
            module.train(was_training)
        return tuple(outs)

    # --------------------------------------------------------------- forward
    @staticmethod
    def _fold(inputs: Tensor) -> Tensor:
        """(N, T, 3, H, W) -> (N*T, 3, H, W); 4D inputs pass through (see
        :func:`mmtrack_kd.utils.batch.fold_video_inputs`)."""
        return fold_video_inputs(inputs, 'CSTrack inputs')

    def _forward(self, inputs: Tensor, data_samples=None,
                 **kwargs) -> Dict[str, Union[List[Tensor], Tensor]]:
        """Network forward without post-processing or loss.

        Args:
            inputs: (N, 3, H, W) or (N, T, 3, H, W) (T folded into N).

        Returns:
            dict: ``det_preds`` list of 3 maps (N, A*(5+C), H_l, W_l) and
            ``id_map`` (N, D, H/8, W/8) raw embeddings.
        """
        x = self._fold(inputs)
        feats = self.neck(self.backbone(x))
        det_feats, reid_feats = self.ccn(feats)
        return dict(
            det_preds=self.bbox_head(det_feats),
            id_map=self.id_head(reid_feats))

    # ------------------------------------------------------------------ loss
    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> Dict[str, Tensor]:
        """Training losses.

        Args:
            inputs: (N, 1, 3, H, W) (or (N, 3, H, W)) normalised images.
            data_samples: N ``TrackDataSample`` (one ``DetDataSample`` each,
                with ``gt_instances.bboxes`` (K, 4) input-pixel x1y1x2y2,
                ``labels`` (K,), ``instances_ids`` (K,)).

        Returns:
            dict: ``loss_box``, ``loss_obj``, (``loss_cls`` when C > 1),
            ``loss_id`` (and ``loss_uncertainty`` with uncertainty
            balancing).
        """
        frames = video_frames(data_samples)
        x = self._fold(inputs)
        if len(frames) != x.shape[0]:
            raise ValueError(f'{len(frames)} frames in data_samples for '
                             f'{x.shape[0]} images')
        outs = self._forward(x)
        gt_bboxes = [box_tensor(f.gt_instances.bboxes) for f in frames]
        gt_labels = [f.gt_instances.labels for f in frames]
        gt_ids = [f.gt_instances.instances_ids for f in frames]
        batch_input_shape = tuple(x.shape[-2:])
        losses = self.bbox_head.loss(outs['det_preds'], gt_bboxes, gt_labels)
        loss_id = self.id_head.loss(outs['id_map'], gt_bboxes, gt_ids,
                                    batch_input_shape)['loss_id']
        if self.loss_scale_by_batch:
            losses = {k: v * x.shape[0] for k, v in losses.items()}
            loss_id = loss_id * x.shape[0]
        if self.loss_balance == 'fixed':
            losses['loss_id'] = loss_id * self.id_head.loss_weight
        else:
            det_w = 0.5 * torch.exp(-self.s_det)
            losses = {k: v * det_w for k, v in losses.items()}
            losses['loss_id'] = 0.5 * torch.exp(-self.s_id) * loss_id
            losses['loss_uncertainty'] = 0.5 * (self.s_det + self.s_id)
        return losses

    # --------------------------------------------------------------- predict
    def decode_frame(self, outs: Dict[str, Union[List[Tensor], Tensor]],
                     batch_input_shape: Tuple[int, int],
                     test_cfg: Optional[dict] = None) -> InstanceData:
        """:meth:`_postprocess` of one frame's :meth:`_forward` outputs."""
        return self._postprocess(outs['det_preds'], outs['id_map'],
                                 batch_input_shape, test_cfg)

    def _postprocess(self, det_preds: List[Tensor], id_map: Tensor,
                     batch_input_shape: Tuple[int, int],
                     test_cfg: Optional[dict] = None) -> InstanceData:
        """Detections with embeddings for one image (input pixels).

        Args:
            det_preds: per level (1, A*(5+C), H_l, W_l).
            id_map: (1, D, H_0, W_0).
            batch_input_shape: (H_in, W_in).
            test_cfg: the settings (``score_thr``, ``nms``,
                ``max_per_img``); None: the model's ``test_cfg``.

        Returns:
            InstanceData: bboxes (K, 4), scores (K,), labels (K,), embeds
            (K, D) L2-normalised, sorted by score.
        """
        cfg = self.test_cfg if test_cfg is None else test_cfg
        head = self.bbox_head
        boxes, obj, cls = decode_yolov5(det_preds, head.anchors, head.strides,
                                        head.num_classes)
        boxes, obj, cls = boxes[0], obj[0], cls[0]
        if head.num_classes == 1:
            scores = obj.sigmoid()
            labels = torch.zeros_like(scores, dtype=torch.long)
        else:
            scores, labels = (obj.sigmoid()[:, None] * cls.sigmoid()).max(1)
        keep = scores > cfg['score_thr']
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        if boxes.numel():
            _, keep = batched_nms(boxes, scores, labels, cfg['nms'])
            keep = keep[:cfg['max_per_img']]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        embeds = gather_embeddings(id_map[0], centres, batch_input_shape)
        return InstanceData(
            bboxes=boxes,
            scores=scores,
            labels=labels,
            embeds=F.normalize(embeds, dim=1))

    def predict(self,
                inputs: Tensor,
                data_samples: TrackSampleList,
                rescale: bool = True,
                **kwargs) -> TrackSampleList:
        """Detect, embed and track every frame of one video clip.

        Args:
            inputs: (1, T, 3, H, W) normalised frames.
            data_samples: one ``TrackDataSample`` with T frames; each frame's
                metainfo has ``frame_id`` (0 resets the tracker) and
                ``scale_factor`` (w, h) from the resize.
            rescale: map boxes back to the original image with
                ``scale_factor``.

        Returns:
            list: the same ``TrackDataSample``; each frame gets
            ``pred_instances`` (bboxes, scores, labels, embeds) and
            ``pred_track_instances`` from the tracker.
        """
        return track_clip(self, 'CSTrack', inputs, data_samples, rescale,
                          **kwargs)
