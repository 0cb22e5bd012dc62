from .config import count_identities, resolve_num_ids
from .io import atomic_write

__all__ = ['atomic_write', 'count_identities', 'resolve_num_ids']
