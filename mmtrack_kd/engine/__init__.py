from .checkpoint import (
                         AtomicCheckpointHook,
                         AtomicRunner,
                         is_local_path,
                         save_atomically,
)
from .dist import auto_dist_backend
from .hooks import DistillStopHook, GradClipMonitorHook, TrackFPSHook
from .nonfinite import NonFiniteLossError, NonFiniteLossHook, non_finite_terms
from .rng_state import RNGStateHook, get_rng_state, set_rng_state

__all__ = [
    'TrackFPSHook', 'DistillStopHook', 'GradClipMonitorHook',
    'AtomicCheckpointHook', 'AtomicRunner',
    'is_local_path', 'save_atomically', 'auto_dist_backend',
    'NonFiniteLossError', 'NonFiniteLossHook', 'non_finite_terms',
    'RNGStateHook', 'get_rng_state', 'set_rng_state'
]
