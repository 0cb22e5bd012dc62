from .cstrack import CSTrack

__all__ = ['CSTrack']
