"""Tiny toy models and losses for the distiller tests (registered under
names no real component uses, so the tests do not depend on the real
CSTrack model or the real distillation losses)."""
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.model import BaseModel
from mmengine.structures import InstanceData


class ToyNeck(nn.Module):
    """(N, C, H, W) -> tuple of 2 maps (N, C, H, W), (N, C, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = [channels, channels]
        self.lateral = nn.Conv2d(channels, channels, 3, padding=1)
        self.down = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        p1 = torch.relu(self.lateral(x))
        return p1, torch.relu(self.down(p1))


@MODELS.register_module(name='DistillTestToyNet', force=True)
class ToyNet(BaseModel):
    """Backbone (stride 2) + ToyNeck + a 1x1 head with 5 outputs per level.

    ``_forward`` returns a list of 2 (N, 5, h, w) maps; ``loss`` returns
    ``dict(loss_toy=...)`` that depends on every parameter.
    """

    def __init__(self, width: int = 8, data_preprocessor=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width), nn.ReLU())
        self.neck = ToyNeck(width)
        self.bbox_head = nn.Conv2d(width, 5, 1)

    def _forward(self, inputs, data_samples=None):
        if inputs.dim() == 5:
            inputs = inputs.flatten(0, 1)
        feats = self.neck(self.backbone(inputs))
        return [self.bbox_head(f) for f in feats]

    def loss(self, inputs, data_samples):
        preds = self._forward(inputs)
        return dict(loss_toy=sum((p - 1).pow(2).mean() for p in preds))

    def predict(self, inputs, data_samples):
        return self._forward(inputs)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return self._forward(inputs, data_samples)


@MODELS.register_module(name='DistillTestToyTracker', force=True)
class ToyTracker(BaseModel):
    """A detector-wrapping MOT model, like mmdet's ByteTrack."""

    def __init__(self, detector: dict, data_preprocessor=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.detector = MODELS.build(detector)

    def _forward(self, inputs, data_samples=None):
        raise NotImplementedError('like BaseMOTModel: no tensor mode')

    def loss(self, inputs, data_samples):
        return self.detector.loss(inputs, data_samples)

    def predict(self, inputs, data_samples):
        return self.detector.predict(inputs, data_samples)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.loss(inputs, data_samples)


@MODELS.register_module(name='DistillTestMSELoss', force=True)
class ToyMSELoss(nn.Module):
    """loss_weight * mean squared difference of (lists of) equal maps."""

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, preds_S, preds_T, gt_bboxes=None,
                batch_input_shape=None):
        if isinstance(preds_S, torch.Tensor):
            preds_S, preds_T = [preds_S], [preds_T]
        return self.loss_weight * sum(
            (s - t).pow(2).mean() for s, t in zip(preds_S, preds_T))


@MODELS.register_module(name='DistillTestSpyLoss', force=True)
class ToySpyLoss(nn.Module):
    """Keeps its last keyword arguments; requires gt_bboxes; channel
    agnostic (compares spatial means only)."""

    allow_channel_mismatch = True

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.last = None

    def forward(self, preds_S, preds_T, gt_bboxes, batch_input_shape=None,
                gt_ids=None, gt_labels=None):
        self.last = dict(preds_S=preds_S, preds_T=preds_T,
                         gt_bboxes=gt_bboxes, gt_ids=gt_ids,
                         gt_labels=gt_labels,
                         batch_input_shape=batch_input_shape)
        return self.loss_weight * (preds_S.mean() - preds_T.mean()).pow(2)


@MODELS.register_module(name='DistillTestLearnableLoss', force=True)
class ToyLearnableLoss(nn.Module):
    """A loss with its own parameter (like MGD's generator)."""

    def __init__(self, channels: int = 16, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, preds_S, preds_T):
        return self.loss_weight * (self.proj(preds_S) - preds_T).pow(2).mean()


def make_track_batch(n: int = 2, t: int = 1, size: int = 32, seed: int = 0):
    """(N, T, 3, size, size) inputs and N TrackDataSamples of T frames, each
    frame with 2 boxes, labels and identities."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand(n, t, 3, size, size, generator=g)
    samples = []
    for i in range(n):
        frames = []
        for j in range(t):
            det = DetDataSample(metainfo=dict(
                batch_input_shape=(size, size), img_shape=(size, size),
                frame_id=j))
            det.gt_instances = InstanceData(
                bboxes=torch.tensor([[1., 2., 10., 12.], [5., 5., 20., 30.]])
                + i,
                labels=torch.zeros(2, dtype=torch.long),
                instances_ids=torch.tensor([10 * i, 10 * i + 1]))
            frames.append(det)
        track = TrackDataSample()
        track.video_data_samples = frames
        samples.append(track)
    return inputs, samples
