from .mot_dataset import MOTAnnotationError, MOTKDDataset
from .mot_io import MOTFormatError, read_mot_txt, write_mot_txt
from .synthmot import generate_synthmot

__all__ = [
    'MOTFormatError', 'read_mot_txt', 'write_mot_txt', 'MOTKDDataset',
    'MOTAnnotationError', 'generate_synthmot'
]
