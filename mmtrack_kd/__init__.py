"""Knowledge distillation for OpenMMLab multi-object tracking.

Importing this package registers every component in mmdet's registries.
"""
__version__ = '0.1.0'

from .utils.compat import (allow_mmengine_checkpoints,  # noqa: E402
                           fast_track_data_sample_setter)

allow_mmengine_checkpoints()
fast_track_data_sample_setter()

from . import datasets, engine, evaluation, models  # noqa: F401,E402
