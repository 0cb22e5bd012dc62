"""Reading a batch of the MOT models: folded video inputs, the frames of
the data samples in the same order, and box tensors.

A tracking batch comes as ``inputs`` (N, T, C, H, W) and N
``TrackDataSample`` of T ``DetDataSample`` each; the networks see the T
frames folded into the batch, (N*T, C, H, W), N-major, and per-frame
targets are read from the frames in that order. These are the one place
that does it (the model, the distiller and the inference API use them).
"""
from typing import Any, List, Sequence

from torch import Tensor


def fold_video_inputs(inputs: Tensor, owner: str = 'inputs') -> Tensor:
    """(N, T, C, H, W) -> (N*T, C, H, W); (N, C, H, W) passes through.

    Args:
        inputs: 5-D video batch or 4-D image batch.
        owner: who reads the inputs, named in the error.

    Returns:
        Tensor: (N*T, C, H, W), frame t of video n at index n*T + t (a
        view when ``inputs`` is contiguous).

    Raises:
        ValueError: ``inputs`` is neither 4-D nor 5-D.
    """
    if inputs.dim() == 5:
        return inputs.flatten(0, 1)
    if inputs.dim() != 4:
        raise ValueError(f'{owner} must be (N, C, H, W) or (N, T, C, H, W), '
                         f'got {tuple(inputs.shape)}')
    return inputs


def video_frames(data_samples: Sequence[Any]) -> List[Any]:
    """Every frame of a batch, in the order of :func:`fold_video_inputs`.

    Args:
        data_samples: ``TrackDataSample`` (their frames are taken in order)
            or ``DetDataSample`` (kept as they are), mixed freely.

    Returns:
        list: the frames' ``DetDataSample``; a ``TrackDataSample`` without
        frames contributes none.
    """
    frames = []
    for sample in data_samples:
        # TrackDataSample (and subclasses) define the video_data_samples
        # property; its len() is 0 before frames are set.
        if hasattr(type(sample), 'video_data_samples'):
            frames.extend(sample[i] for i in range(len(sample)))
        else:
            frames.append(sample)
    return frames


def box_tensor(boxes: Any) -> Any:
    """The Tensor of an mmdet box structure (``HorizontalBoxes`` ...);
    Tensors and anything without a ``tensor`` attribute pass through.

    Args:
        boxes: ``BaseBoxes`` with ``tensor`` (K, 4), or a Tensor / array.

    Returns:
        Tensor: (K, 4) (or ``boxes`` itself).
    """
    if isinstance(boxes, Tensor):
        return boxes
    return getattr(boxes, 'tensor', boxes)
