"""Small I/O helpers shared by the whole package."""
import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary file name beside ``path`` for a writer that needs a
    file name (``torch.onnx.export``, ``torch.save`` ...); when the ``with``
    block finishes without an exception the file is fsynced, given the
    usual umask-based permissions and renamed onto ``path``.

    A crash or an error half-way removes the temporary file and leaves any
    previous ``path`` untouched.

    Example:
        >>> with atomic_path('model.onnx') as tmp:
        ...     torch.onnx.export(model, args, tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # mkstemp creates 0600 files: give the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'w', **open_kwargs) -> Iterator:
    """Open a temporary file beside ``path`` and rename it onto ``path``
    only when the ``with`` block finishes without an exception (see
    :func:`atomic_path`).

    A crash or an error half-way leaves any previous ``path`` untouched.

    Example:
        >>> with atomic_write('out.json') as f:
        ...     f.write('{}')
    """
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f
