"""Checkpoint reading for distillation: the project's one reader,
:mod:`mmtrack_kd.utils.checkpoint`, re-exported here for older imports."""
from mmtrack_kd.utils.checkpoint import (CheckpointError, load_strict,
                                         model_state_from_checkpoint,
                                         read_checkpoint)

__all__ = [
    'CheckpointError', 'load_strict', 'model_state_from_checkpoint',
    'read_checkpoint'
]
