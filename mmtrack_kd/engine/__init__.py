from .hooks import TrackFPSHook

__all__ = ['TrackFPSHook']
