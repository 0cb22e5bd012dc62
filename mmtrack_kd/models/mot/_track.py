"""The frame-by-frame tracking loop the JDE-family models share."""
from typing import Callable

from mmengine.structures import InstanceData
from torch import Tensor


def track_clip(model, name: str, inputs: Tensor, data_samples: list,
               rescale: bool, detect: Callable[[Tensor], InstanceData],
               **kwargs) -> list:
    """Detect, embed and track every frame of one video clip.

    Args:
        model: the tracker model (``with_tracker``, ``tracker``).
        name: the model's name, for the errors.
        inputs: (1, T, 3, H, W) normalised frames.
        data_samples: one ``TrackDataSample`` with T frames; each frame's
            metainfo has ``frame_id`` (0 resets the tracker) and
            ``scale_factor`` (w, h) from the resize.
        rescale: map boxes back to the original image with
            ``scale_factor``.
        detect: one frame (1, 3, H, W) -> ``InstanceData`` (bboxes in input
            pixels, scores, labels, embeds).

    Returns:
        list: the same ``TrackDataSample``; each frame gets
        ``pred_instances`` and ``pred_track_instances`` from the tracker.
    """
    if inputs.dim() != 5 or inputs.size(0) != 1 or len(data_samples) != 1:
        raise ValueError(f'{name}.predict takes one video per batch: '
                         'inputs (1, T, 3, H, W) and one TrackDataSample '
                         f'(got {tuple(inputs.shape)})')
    if not model.with_tracker:
        raise ValueError(f'{name}.predict needs model.tracker')
    track_sample = data_samples[0]
    for t in range(len(track_sample)):
        frame = track_sample[t]
        pred = detect(inputs[:, t].contiguous())
        if rescale and 'scale_factor' in frame.metainfo:
            sf = pred.bboxes.new_tensor(frame.metainfo['scale_factor'])
            pred.bboxes = pred.bboxes / sf.repeat(2)
        frame.pred_instances = pred
        frame.pred_track_instances = model.tracker.track(
            data_sample=frame, **kwargs)
    return [track_sample]
