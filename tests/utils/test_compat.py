"""mmtrack_kd.utils.compat: the TrackDataSample setter fix."""
import pytest
from mmdet.structures import DetDataSample, TrackDataSample

import mmtrack_kd  # noqa: F401  (applies the fixes)
from mmtrack_kd.utils.compat import fast_track_data_sample_setter


def test_setter_does_not_format_the_sample(monkeypatch):
    fast_track_data_sample_setter()  # idempotent
    monkeypatch.setattr(DetDataSample, '__repr__', lambda self: pytest.fail(
        'repr called'))
    a, b = DetDataSample(), DetDataSample()
    sample = TrackDataSample()
    sample.video_data_samples = [a, b]
    assert sample.video_data_samples == [a, b]
    assert len(sample) == 2
    sample.video_data_samples = a  # a single sample becomes a list
    assert sample.video_data_samples == [a]


@pytest.mark.parametrize('value', [(DetDataSample(), ), [], [1]])
def test_setter_still_rejects_bad_values(value):
    with pytest.raises(AssertionError):
        TrackDataSample().video_data_samples = value
