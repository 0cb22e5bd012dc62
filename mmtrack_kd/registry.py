"""The ``mmtrack_kd`` registry scope.

Every component of this package registers in mmdet's registries (configs
use ``default_scope = 'mmdet'``). This module adds one child registry per
mmdet registry under the scope ``mmtrack_kd``, the way downstream OpenMMLab
packages do. They hold nothing themselves: a lookup falls back to mmdet's
registry (and so to mmengine's). They exist so that a config which inherits
ours through ``_base_ = ['mmtrack_kd::_base_/distill/id_response.py']``
builds: mmengine marks every dict of such a base with
``_scope_='mmtrack_kd'`` and then looks for this module and this scope.
"""
from mmdet import registry as _mmdet
from mmengine.registry import Registry

_NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
          'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
          'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
          'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS',
          'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS',
          'LOG_PROCESSORS')


def _child(name: str) -> Registry:
    parent = getattr(_mmdet, name)
    return Registry(parent.name, parent=parent, scope='mmtrack_kd',
                    locations=['mmtrack_kd'])


RUNNERS = _child('RUNNERS')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS')
LOOPS = _child('LOOPS')
HOOKS = _child('HOOKS')
DATASETS = _child('DATASETS')
DATA_SAMPLERS = _child('DATA_SAMPLERS')
TRANSFORMS = _child('TRANSFORMS')
MODELS = _child('MODELS')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS')
OPTIMIZERS = _child('OPTIMIZERS')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS')
METRICS = _child('METRICS')
EVALUATOR = _child('EVALUATOR')
TASK_UTILS = _child('TASK_UTILS')
VISUALIZERS = _child('VISUALIZERS')
VISBACKENDS = _child('VISBACKENDS')
LOG_PROCESSORS = _child('LOG_PROCESSORS')
