"""Small I/O helpers shared by the whole package."""
import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'w', **open_kwargs) -> Iterator:
    """Open a temporary file beside ``path`` and rename it onto ``path``
    only when the ``with`` block finishes without an exception.

    A crash or an error half-way leaves any previous ``path`` untouched.

    Example:
        >>> with atomic_write('out.json') as f:
        ...     f.write('{}')
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600 files: give the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
