"""Trackers registered in mmdet's ``MODELS``: ``JDETracker``."""
from .jde_track import JDETrack
from .jde_tracker import JDETracker, linear_assignment

__all__ = ['JDETrack', 'JDETracker', 'linear_assignment']
