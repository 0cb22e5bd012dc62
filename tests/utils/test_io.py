"""Tests of mmtrack_kd/utils/io.py."""
import os
import stat

import pytest

from mmtrack_kd.utils.io import atomic_path, atomic_write


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_path_renames_with_umask_mode(tmp_path):
    out = tmp_path / 'sub' / 'model.bin'
    with atomic_path(str(out)) as tmp:
        assert os.path.dirname(tmp) == str(out.parent)
        assert not out.exists()
        with open(tmp, 'wb') as f:
            f.write(b'abc')
    assert out.read_bytes() == b'abc'
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(out) == 0o666 & ~umask
    assert os.listdir(out.parent) == ['model.bin']


def test_error_keeps_previous_file_and_removes_temp(tmp_path):
    out = tmp_path / 'a.txt'
    with atomic_write(str(out)) as f:
        f.write('one')
    for ctx in (atomic_write(str(out)), atomic_path(str(out))):
        with pytest.raises(KeyError):
            with ctx as handle:
                if isinstance(handle, str):
                    with open(handle, 'w') as g:
                        g.write('two')
                else:
                    handle.write('two')
                raise KeyError('boom')
        assert out.read_text() == 'one'
        assert os.listdir(tmp_path) == ['a.txt']


def test_atomic_write_binary_mode(tmp_path):
    out = tmp_path / 'b.bin'
    with atomic_write(str(out), 'wb') as f:
        f.write(b'\x00\x01')
    assert out.read_bytes() == b'\x00\x01'
