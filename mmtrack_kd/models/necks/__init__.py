"""Necks written for this package (mmdet's are used by config)."""
from .dla_up import DLAUpNeck, IDAUp

__all__ = ['DLAUpNeck', 'IDAUp']
