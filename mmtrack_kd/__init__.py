"""Knowledge distillation for OpenMMLab multi-object tracking.

Importing this package registers every component in mmdet's registries.
"""
__version__ = '0.1.0'

from .utils.compat import allow_mmengine_checkpoints  # noqa: E402

allow_mmengine_checkpoints()

from . import datasets, engine, evaluation, models  # noqa: F401,E402
