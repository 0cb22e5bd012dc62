"""Distillation core: the distiller model, recorders, connectors and
loss-forward mappings (see docs/design.md, "Distillation")."""
from .checkpoint import (load_strict, model_state_from_checkpoint,
                         read_checkpoint)
from .connectors import ConvBNConnector, IdentityConnector, MLPConnector
from .distiller import MOTDistiller, tensor_forward
from .errors import DistillConfigError
from .mappings import (DATA_KEYS, check_loss_forward_mappings,
                       collect_batch_data)
from .recorders import (ModuleInputsRecorder, ModuleOutputsRecorder,
                        RecorderManager)

__all__ = [
    'MOTDistiller', 'tensor_forward', 'ModuleOutputsRecorder',
    'ModuleInputsRecorder', 'RecorderManager', 'ConvBNConnector',
    'IdentityConnector', 'MLPConnector', 'DistillConfigError', 'DATA_KEYS',
    'check_loss_forward_mappings', 'collect_batch_data', 'load_strict',
    'read_checkpoint', 'model_state_from_checkpoint'
]
