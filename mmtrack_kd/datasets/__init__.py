from .mot_io import MOTFormatError, read_mot_txt, write_mot_txt

__all__ = ['MOTFormatError', 'read_mot_txt', 'write_mot_txt']
