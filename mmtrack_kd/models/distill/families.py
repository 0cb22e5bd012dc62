"""What the distiller needs to know about a tracker family, in one place.

- :func:`tensor_forward`: how to run a model's tensor forward (its own
  ``_forward``, or its detector's for mmdet MOT models such as ByteTrack).
- :func:`detection_head`: where its detection head is.
- :func:`fill_decoders`: the response decoders of the losses read their
  values left None from that head; which values each family's decoder reads
  is declared by the decoder class (registered in ``TASK_UTILS``, see
  :mod:`mmtrack_kd.models.task_modules.response_decoders`), so a new family
  adds a decoder class, not a branch here.
- :func:`dry_run_batch`: a batch of one box per image (a detection batch
  for a detector, a one-frame video batch for a tracker), for the
  build-time dry run of the student's ``loss`` (which tells its loss
  names).
"""
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.structures import InstanceData

from mmtrack_kd.utils.batch import fold_video_inputs

from ..task_modules.response_decoders import response_decoder_class
from .errors import DistillConfigError


def tensor_forward(model: nn.Module, inputs: torch.Tensor) -> Any:
    """Run only the tensor forward of a model (no loss, no post-processing).

    (N, T, C, H, W) inputs are folded to (N*T, C, H, W). mmdet MOT models
    that wrap a detector (ByteTrack, OCSORT, ...) run their detector's
    backbone, neck and ``bbox_head``; others run their own ``_forward``.

    Args:
        model (nn.Module): A model with ``_forward`` or ``detector._forward``.
        inputs (Tensor): (N, C, H, W) or (N, T, C, H, W).

    Returns:
        Any: Whatever the tensor forward returns.
    """
    inputs = fold_video_inputs(inputs, 'tensor_forward inputs')
    detector = getattr(model, 'detector', None)
    if isinstance(detector, nn.Module):
        head = getattr(detector, 'bbox_head', None)
        if isinstance(head, nn.Module) and hasattr(detector, 'extract_feat'):
            # mmdet's SingleStageDetector._forward calls bbox_head.forward
            # directly, which skips forward hooks: call the head module
            return head(detector.extract_feat(inputs))
        if hasattr(detector, '_forward'):
            return detector._forward(inputs)
    return model._forward(inputs)


def detection_head(model: nn.Module) -> Optional[nn.Module]:
    """The model's ``bbox_head``, or its detector's; None if it has none."""
    head = getattr(model, 'bbox_head', None)
    if head is None and getattr(model, 'detector', None) is not None:
        head = getattr(model.detector, 'bbox_head', None)
    return head


def fill_decoders(distill_losses: Optional[dict],
                  student: nn.Module) -> dict:
    """Fill the ``decoder`` values left None in loss configs from the
    student's detection head, so that response losses decode exactly as the
    student does.

    Args:
        distill_losses (dict, optional): ``name -> loss config``.
        student (nn.Module): The built student.

    Returns:
        dict: The loss configs, copied, decoders filled.

    Raises:
        DistillConfigError: naming ``distill_losses.<name>.decoder...``.
    """
    head = detection_head(student)
    out = {}
    for name, cfg in (distill_losses or {}).items():
        cfg = dict(cfg)
        dec = cfg.get('decoder')
        if isinstance(dec, dict):
            key = f'distill_losses.{name}.decoder'
            try:
                cls = response_decoder_class(dec, key)
                cfg['decoder'] = cls.fill_from_head(dec, head, key)
            except ValueError as err:
                raise DistillConfigError(str(err)) from err
        out[name] = cfg
    return out


def dry_run_batch(model: nn.Module,
                  shape: Sequence[int]) -> Tuple[torch.Tensor, List[Any]]:
    """A batch for the build-time dry run of a model's ``loss``.

    Args:
        model (nn.Module): The model; an mmdet detector, and an mmdet MOT
            model whose ``loss`` is its detector's (ByteTrack, OCSORT), get
            a detection batch; any other model (CSTrack) a video batch.
        shape (Sequence[int]): (N, C, H, W) of the zero images.

    Returns:
        tuple: zero inputs, (N, C, H, W) and N ``DetDataSample`` for a
        detector, else (N, 1, C, H, W) and N ``TrackDataSample`` of one
        frame; each frame has one box (the central quarter of the image),
        label 0 and identity 0.
    """
    from mmdet.models.detectors import BaseDetector
    from mmdet.models.mot import OCSORT, ByteTrack
    n, c, h, w = (int(v) for v in shape)
    frames = []
    for i in range(n):
        frame = DetDataSample(metainfo=dict(
            img_id=i, frame_id=0, img_shape=(h, w), ori_shape=(h, w),
            pad_shape=(h, w), batch_input_shape=(h, w),
            scale_factor=(1., 1.)))
        frame.gt_instances = InstanceData(
            bboxes=torch.tensor([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]]),
            labels=torch.zeros(1, dtype=torch.long),
            instances_ids=torch.zeros(1, dtype=torch.long))
        frames.append(frame)
    if isinstance(model, (BaseDetector, ByteTrack, OCSORT)):
        return torch.zeros(n, c, h, w), frames
    samples = []
    for frame in frames:
        sample = TrackDataSample()
        sample.video_data_samples = [frame]
        samples.append(sample)
    return torch.zeros(n, 1, c, h, w), samples
