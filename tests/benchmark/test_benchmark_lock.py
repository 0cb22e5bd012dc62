"""mmtrack_kd.benchmark.lock: one benchmark process per run folder."""
import json
import os
import socket
import subprocess
import sys

import pytest

from mmtrack_kd.benchmark.lock import (
    LOCK_NAME,
    RunFolderBusyError,
    folder_lock,
)


def test_second_holder_is_refused_and_the_lock_is_released(tmp_path):
    out = str(tmp_path / 'run')
    with folder_lock(out) as path:
        assert os.path.isfile(path)
        with open(path) as f:
            assert json.load(f)['pid'] == os.getpid()
        # the same process counts as alive: a nested holder is refused
        with pytest.raises(RunFolderBusyError, match=r'in use by process'):
            with folder_lock(out):
                pass
    assert not os.path.exists(path)


def test_released_on_error(tmp_path):
    with pytest.raises(KeyError):
        with folder_lock(str(tmp_path)):
            raise KeyError('x')
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    proc = subprocess.run(
        [sys.executable, '-c', 'import os; print(os.getpid())'],
        capture_output=True, text=True, check=True)
    dead = int(proc.stdout)  # that process has exited
    (tmp_path / LOCK_NAME).write_text(json.dumps(
        dict(pid=dead, host=socket.gethostname(), command='old')))
    with folder_lock(str(tmp_path)):
        pass
    assert 'taking over' in capsys.readouterr().out
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_benchmark_run_refuses_a_busy_folder(tmp_path, repo_root):
    """Benchmark.run takes the lock before anything else: a folder held by
    a live process (this one) is refused, nothing is made."""
    out = tmp_path / 'run'
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps(
        dict(pid=os.getpid(), host=socket.gethostname(), command='me')))
    proc = subprocess.run(
        [sys.executable, '-c',
         'import sys; from mmtrack_kd.benchmark.runner import Benchmark, '
         'run_benchmark; run_benchmark(Benchmark(sys.argv[1], "micro", 1, '
         '[]))', str(out)],
        cwd=repo_root, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'RunFolderBusyError' in proc.stderr
    assert f'in use by process {os.getpid()}' in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
