"""FairMOT: one-shot anchor-free detection and re-ID at stride 4."""
import copy
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.mot.base import BaseMOTModel
from mmdet.registry import MODELS
from mmdet.structures import TrackSampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.structures import InstanceData
from torch import Tensor

from ...utils.batch import box_tensor, fold_video_inputs, video_frames
from .. import backbones, necks  # noqa: F401  (register DLA, DLAUpNeck)
from ..dense_heads import fairmot_head  # noqa: F401  (register the heads)
from ..task_modules import centernet_decoder  # noqa: F401  ('centernet')
from ..task_modules.centernet_decode import decode_centernet, gather_cells
from ..task_modules.grid import map_stride
from ._track import track_clip
from .split import JDESplitMixin

DEFAULT_TEST_CFG = dict(score_thr=0.4, max_per_img=500, nms_kernel=3)


@MODELS.register_module()
class FairMOT(JDESplitMixin, BaseMOTModel):
    """FairMOT (Zhang et al., IJCV 2021): CenterNet detection and re-ID
    embeddings from one stride-4 map, tracked by a JDE-style tracker.

    backbone (e.g. :class:`~mmtrack_kd.models.backbones.DLA` DLA-34, or
    mmdet ``ResNet``) -> neck (:class:`~mmtrack_kd.models.necks.DLAUpNeck`,
    or mmdet ``CTResNetNeck``) -> one map (N, C, H/4, W/4) -> ``bbox_head``
    (:class:`FairMOTDetHead`: heatmap, size, offset) and ``id_head``
    (:class:`FairMOTIDHead`: embedding map) -> ``JDETracker``.

    ``neck.in_channels`` (when None or left out), ``bbox_head.in_channels``
    and ``id_head.in_channels`` are read from a dry run of the built
    backbone/neck on a 64x64 input at construction time, and
    ``bbox_head.stride`` from the neck's stride.

    Args:
        backbone: backbone config.
        neck: neck config; its output is one map (a Tensor or a 1-tuple).
        bbox_head: ``FairMOTDetHead`` config.
        id_head: ``FairMOTIDHead`` config (needs ``num_ids``).
        tracker: tracker config (``JDETracker``); only needed by predict.
        data_preprocessor: ``TrackDataPreprocessor`` config.
        train_cfg: unused; kept for config symmetry.
        test_cfg: ``score_thr`` (0.4, FairMOT's ``conf_thres``),
            ``max_per_img`` (500, the top-K peaks), ``nms_kernel`` (3, the
            heatmap max-pool).
        loss_balance: ``'uncertainty'`` (FairMOT) learns the task weights:
            0.5 * (exp(-s_det) L_det + exp(-s_id) L_id + s_det + s_id) with
            s_det, s_id initialised to -1.85, -1.05 (the last term is
            reported as ``loss_uncertainty``); ``'fixed'`` adds the ID loss
            times ``id_head.loss_weight``.
        init_cfg: initialisation config.

    Attributes:
        out_channels (int): channels of the neck map.
        neck_channels (list[int]): ``[out_channels]``.
        strides (list[int]): ``[stride of the neck map]`` (4).
        embed_channels (int): D of the embedding map.
    """

    default_test_cfg = DEFAULT_TEST_CFG

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 bbox_head: dict,
                 id_head: dict,
                 tracker: Optional[dict] = None,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 loss_balance: str = 'uncertainty',
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor, init_cfg)
        if loss_balance not in ('fixed', 'uncertainty'):
            raise ValueError("model.loss_balance must be 'fixed' or "
                             f"'uncertainty', got {loss_balance!r}")
        self.backbone = MODELS.build(backbone)
        neck = copy.deepcopy(dict(neck))
        if neck.get('in_channels') is None:
            neck['in_channels'] = [
                int(f.shape[1]) for f in self._dry_run(self.backbone)
            ]
        self.neck = MODELS.build(neck)
        outs = self._dry_run(nn.Sequential(self.backbone, self.neck))
        if len(outs) != 1:
            raise ValueError(f'model.neck must give one map, gives '
                             f'{len(outs)}')
        self.out_channels = int(outs[0].shape[1])
        self.neck_channels = [self.out_channels]
        self.strides = [64 // int(outs[0].shape[-1])]

        bbox_head = copy.deepcopy(dict(bbox_head))
        if bbox_head.get('in_channels') is None:
            bbox_head['in_channels'] = self.out_channels
        bbox_head.setdefault('stride', self.strides[0])
        self.bbox_head = MODELS.build(bbox_head)
        if list(self.bbox_head.strides) != self.strides:
            raise ValueError(
                f'model.bbox_head.stride {self.bbox_head.strides[0]} differs '
                f'from the neck stride {self.strides[0]}')
        id_head = copy.deepcopy(dict(id_head))
        if id_head.get('in_channels') is None:
            id_head['in_channels'] = self.out_channels
        self.id_head = MODELS.build(id_head)
        self.embed_channels = self.id_head.embed_channels
        if tracker is not None:
            self.tracker = MODELS.build(tracker)
        self.train_cfg = train_cfg
        self.test_cfg = self.merged_test_cfg(test_cfg)
        self.loss_balance = loss_balance
        if loss_balance == 'uncertainty':
            self.s_det = nn.Parameter(torch.tensor(-1.85))
            self.s_id = nn.Parameter(torch.tensor(-1.05))

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
        return (outs, ) if isinstance(outs, Tensor) else tuple(outs)

    # --------------------------------------------------------------- forward
    def _forward(self, inputs: Tensor, data_samples=None,
                 **kwargs) -> Dict[str, Tensor]:
        """Network forward without post-processing or loss.

        Args:
            inputs: (N, 3, H, W) or (N, T, 3, H, W) (T folded into N).

        Returns:
            dict: ``heatmap`` (N, C, H/4, W/4) logits, ``wh`` (N, 4 or 2,
            H/4, W/4), ``offset`` (N, 2, H/4, W/4) and ``id_map`` (N, D,
            H/4, W/4) raw embeddings.
        """
        x = fold_video_inputs(inputs, 'FairMOT inputs')
        feats = self.neck(self.backbone(x))
        heatmap, wh, offset = self.bbox_head(feats)
        return dict(heatmap=heatmap, wh=wh, offset=offset,
                    id_map=self.id_head(feats))

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
            dict: ``loss_heatmap``, ``loss_wh``, ``loss_offset``,
            ``loss_id`` (and ``loss_uncertainty`` with uncertainty
            balancing).
        """
        frames = video_frames(data_samples)
        x = fold_video_inputs(inputs, 'FairMOT inputs')
        if len(frames) != x.shape[0]:
            raise ValueError(f'{len(frames)} frames in data_samples for '
                             f'{x.shape[0]} images')
        outs = self._forward(x)
        gt_bboxes = [box_tensor(f.gt_instances.bboxes) for f in frames]
        gt_labels = [f.gt_instances.labels for f in frames]
        gt_ids = [f.gt_instances.instances_ids for f in frames]
        batch_input_shape = tuple(x.shape[-2:])
        losses = self.bbox_head.loss(
            (outs['heatmap'], outs['wh'], outs['offset']), gt_bboxes,
            gt_labels, batch_input_shape)
        loss_id = self.id_head.loss(outs['id_map'], gt_bboxes, gt_ids,
                                    batch_input_shape)['loss_id']
        if self.loss_balance == 'fixed':
            losses['loss_id'] = loss_id * self.id_head.loss_weight
        else:
            det_w = 0.5 * torch.exp(-self.s_det)
            losses = {k: v * det_w for k, v in losses.items()}
            losses['loss_id'] = 0.5 * torch.exp(-self.s_id) * loss_id
            losses['loss_uncertainty'] = 0.5 * (self.s_det + self.s_id)
        return losses

    # --------------------------------------------------------------- predict
    def decode_frame(self, outs: Dict[str, Tensor],
                     batch_input_shape: Tuple[int, int],
                     test_cfg: Optional[dict] = None) -> InstanceData:
        """:meth:`_postprocess` of one frame's :meth:`_forward` outputs."""
        return self._postprocess(outs, batch_input_shape, test_cfg)

    def _postprocess(self, outs: Dict[str, Tensor],
                     batch_input_shape: Tuple[int, int],
                     test_cfg: Optional[dict] = None) -> InstanceData:
        """Detections with embeddings for one image (input pixels).

        Args:
            outs: :meth:`_forward` output for one image.
            batch_input_shape: (H_in, W_in).
            test_cfg: the settings (``score_thr``, ``max_per_img``,
                ``nms_kernel``); None: the model's ``test_cfg``.

        Returns:
            InstanceData: bboxes (K, 4), scores (K,), labels (K,), embeds
            (K, D) L2-normalised, read at the heatmap peaks; sorted by
            score, scores above ``test_cfg.score_thr``.
        """
        cfg = self.test_cfg if test_cfg is None else test_cfg
        heatmap = outs['heatmap']
        # input pixels per heatmap cell (from the heights, as FairMOT)
        stride = map_stride(heatmap.shape[-2:], batch_input_shape)[1]
        bboxes, scores, labels, inds = decode_centernet(
            heatmap, outs['wh'], outs['offset'], stride,
            k=cfg['max_per_img'], ltrb=self.bbox_head.ltrb,
            nms_kernel=cfg['nms_kernel'])
        embeds = gather_cells(outs['id_map'], inds)[0]
        keep = scores[0] > cfg['score_thr']
        return InstanceData(
            bboxes=bboxes[0][keep],
            scores=scores[0][keep],
            labels=labels[0][keep],
            embeds=F.normalize(embeds[keep], dim=1))

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
        return track_clip(self, 'FairMOT', inputs, data_samples, rescale,
                          **kwargs)
