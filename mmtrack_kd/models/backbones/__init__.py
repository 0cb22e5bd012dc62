"""Backbones written for this package (mmdet's are used by config)."""
from .dla import DLA

__all__ = ['DLA']
