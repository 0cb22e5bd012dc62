"""mmtrack_kd.utils.batch: folded inputs, frames and box tensors."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.bbox import HorizontalBoxes

from mmtrack_kd.utils.batch import box_tensor, fold_video_inputs, video_frames


def track_sample(*frames):
    sample = TrackDataSample()
    sample.video_data_samples = list(frames)
    return sample


def test_fold_keeps_frames_video_major():
    x = torch.arange(2 * 3).float().view(2, 3, 1, 1, 1).expand(2, 3, 3, 4, 5)
    folded = fold_video_inputs(x)
    assert folded.shape == (6, 3, 4, 5)
    # frame t of video n at n * T + t
    assert folded[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    images = torch.zeros(2, 3, 4, 5)
    assert fold_video_inputs(images) is images


@pytest.mark.parametrize('shape', [(3, 4, 5), (1, 1, 1, 3, 4, 5)])
def test_fold_rejects_other_shapes_naming_the_owner(shape):
    with pytest.raises(ValueError, match=r'^CSTrack inputs must be'):
        fold_video_inputs(torch.zeros(shape), 'CSTrack inputs')


def test_video_frames_in_folded_order():
    a, b, c, d = (DetDataSample(metainfo=dict(i=i)) for i in range(4))
    frames = video_frames([track_sample(a, b), track_sample(c, d)])
    assert [f.i for f in frames] == [0, 1, 2, 3]
    # DetDataSamples are frames themselves; mixed batches keep their order
    frames = video_frames([a, track_sample(b, c), d])
    assert [f.i for f in frames] == [0, 1, 2, 3]
    assert video_frames([TrackDataSample()]) == []  # no frames set
    assert video_frames([]) == []


def test_box_tensor_unwraps_box_structures_only():
    t = torch.rand(3, 4)
    assert box_tensor(t) is t
    boxes = HorizontalBoxes(t)
    assert box_tensor(boxes) is boxes.tensor
    arr = np.zeros((0, 4))
    assert box_tensor(arr) is arr
