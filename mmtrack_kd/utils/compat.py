"""Compatibility of the pinned OpenMMLab stack with current torch/numpy."""
import numpy as np
import torch


def allow_mmengine_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` (the default since torch 2.6)
    read the checkpoints that mmengine 0.10 writes.

    mmengine stores its ``MessageHub`` (``HistoryBuffer`` objects holding
    numpy arrays and scalars) in every checkpoint and loads checkpoints with
    a plain ``torch.load``; without this allow-list every resume and every
    ``load_from`` fails with ``Weights only load failed``. Only these data
    types are allowed (``getattr`` is how numpy 2 pickles its dtype
    classes), not arbitrary callables.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    safe = [HistoryBuffer, np.ndarray, np.dtype,
            np._core.multiarray._reconstruct, np._core.multiarray.scalar,
            getattr]
    safe += [type(np.dtype(t)) for t in (
        np.float64, np.float32, np.float16, np.int64, np.int32, np.int16,
        np.int8, np.uint8, np.bool_)]
    torch.serialization.add_safe_globals(safe)


def fast_track_data_sample_setter() -> None:
    """Stop mmdet 3.3's ``TrackDataSample.video_data_samples`` setter from
    formatting the whole first ``DetDataSample`` on every assignment.

    In mmdet 3.3 the f-string meant for the assert message is a separate
    statement, so each assignment builds ``repr`` of a sample (all its
    instances): measured 14 % of ``tools/test.py`` time and 7 % of a
    training step on the small SynthMOT models. The replacement checks the
    same things and stores the same field.
    """
    from mmdet.structures import DetDataSample, TrackDataSample
    prop = TrackDataSample.__dict__['video_data_samples']
    if getattr(prop.fset, '_mmtrack_kd_fast', False):
        return

    def fset(self, value):
        if isinstance(value, DetDataSample):
            value = [value]
        assert isinstance(value, list), 'video_data_samples must be a list'
        assert value and isinstance(value[0], DetDataSample), (
            'video_data_samples must be a list of DetDataSample, but got '
            f'{type(value[0]).__name__ if value else "an empty list"}')
        self.set_field(value, '_video_data_samples', dtype=list)

    fset._mmtrack_kd_fast = True
    TrackDataSample.video_data_samples = property(prop.fget, fset,
                                                  prop.fdel, prop.__doc__)
