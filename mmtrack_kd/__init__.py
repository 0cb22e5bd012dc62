"""Knowledge distillation for OpenMMLab multi-object tracking.

Importing this package registers every component in mmdet's registries.
"""
__version__ = '0.1.0'

from . import datasets, engine, evaluation, models  # noqa: F401,E402
