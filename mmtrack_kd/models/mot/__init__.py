from .cstrack import CSTrack

__all__ = ['CSTrack']
from .fairmot import FairMOT  # noqa: E402,F401
