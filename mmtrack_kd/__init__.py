"""Knowledge distillation for OpenMMLab multi-object tracking.

Importing this package registers every component in mmdet's registries and
applies the compatibility patches listed in :mod:`mmtrack_kd.utils.compat`
(see ``mmtrack_kd.utils.compat.patch_status()``).
"""
__version__ = '0.1.0'

from .utils.compat import apply_patches  # noqa: E402

apply_patches()

from . import datasets, engine, evaluation, models, registry  # noqa: F401,E402,E501
