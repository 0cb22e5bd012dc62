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
