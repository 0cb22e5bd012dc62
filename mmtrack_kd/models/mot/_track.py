"""The frame-by-frame tracking loop the JDE-family models share."""
from torch import Tensor

from .split import track_frame


def track_clip(model, name: str, inputs: Tensor, data_samples: list,
               rescale: bool, **kwargs) -> list:
    """Detect, embed and track every frame of one video clip, through the
    model's :class:`~mmtrack_kd.models.mot.split.FrameSplit` (its network,
    then its post-processing with ``model.test_cfg``, then
    ``model.tracker``).

    Args:
        model: the tracker model (``with_tracker``, ``tracker``,
            ``test_cfg``, ``frame_split()``).
        name: the model's name, for the errors.
        inputs: (1, T, 3, H, W) normalised frames.
        data_samples: one ``TrackDataSample`` with T frames; each frame's
            metainfo has ``frame_id`` (0 resets the tracker) and
            ``scale_factor`` (w, h) from the resize.
        rescale: map boxes back to the original image with
            ``scale_factor``.

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
    split = model.frame_split()
    track_sample = data_samples[0]
    for t in range(len(track_sample)):
        img = inputs[:, t].contiguous()
        track_frame(split, model.tracker, split.network(img), img,
                    track_sample[t], model.test_cfg, rescale, **kwargs)
    return [track_sample]
