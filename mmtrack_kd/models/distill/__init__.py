"""Distillation core: the distiller model, recorders, connectors and
loss-forward mappings (see docs/design.md, "Distillation")."""
from mmtrack_kd.utils.checkpoint import (  # noqa: F401
                                         load_strict,
                                         model_state_from_checkpoint,
                                         read_checkpoint,
)

from .channels import channels_of, dry_run, student_loss_names
from .connectors import (
                                         ConvBNConnector,
                                         ConvConnector,
                                         IdentityConnector,
                                         MLPConnector,
                                         apply_connectors,
                                         end_warmups,
)
from .distiller import MOTDistiller
from .errors import DistillConfigError
from .families import (
                                         detection_head,
                                         dry_run_batch,
                                         fill_decoders,
                                         tensor_forward,
)
from .fragments import build_distill_losses, merge_distill_cfgs
from .mappings import (
                                         DATA_KEYS,
                                         check_loss_forward_mappings,
                                         collect_batch_data,
)
from .recorders import (
                                         ModuleInputsRecorder,
                                         ModuleOutputsRecorder,
                                         RecorderManager,
)
from .teacher import TeacherBox, TeacherInputs, build_frozen_teacher

__all__ = [
    'MOTDistiller', 'tensor_forward', 'ModuleOutputsRecorder',
    'ModuleInputsRecorder', 'RecorderManager', 'ConvBNConnector',
    'ConvConnector',
    'IdentityConnector', 'MLPConnector', 'apply_connectors', 'end_warmups',
    'DistillConfigError', 'DATA_KEYS', 'check_loss_forward_mappings',
    'collect_batch_data', 'load_strict', 'read_checkpoint',
    'model_state_from_checkpoint', 'channels_of', 'dry_run',
    'student_loss_names', 'detection_head', 'dry_run_batch', 'fill_decoders',
    'build_distill_losses', 'merge_distill_cfgs', 'TeacherBox',
    'TeacherInputs', 'build_frozen_teacher'
]
