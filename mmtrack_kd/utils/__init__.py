from .batch import box_tensor, fold_video_inputs, video_frames
from .config import count_identities, load_config, resolve_num_ids
from .io import atomic_write

__all__ = [
    'atomic_write', 'box_tensor', 'count_identities', 'fold_video_inputs',
    'load_config', 'resolve_num_ids', 'video_frames'
]
