"""One benchmark process per run folder.

Two ``kd_benchmark.py`` processes on one folder would train the same
(method, seed) twice, each wiping the other's half-finished work dir (this
happened: a second invocation deleted a student checkpoint the first was
evaluating). :func:`folder_lock` refuses the second one.
"""
import contextlib
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Iterator, Optional

LOCK_NAME = '.kd_benchmark.lock'


class RunFolderBusyError(RuntimeError):
    """Another live process holds the run folder's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def folder_lock(out: str) -> Iterator[str]:
    """Hold ``OUT/.kd_benchmark.lock`` while the block runs.

    The lock file names the holder (pid, host, start time, command). A
    lock left by a process that is gone (killed, machine restarted) is
    taken over, with a note.

    Raises:
        RunFolderBusyError: a live process on this host holds the lock
            (names the folder, the pid and its command).
    """
    os.makedirs(out, exist_ok=True)
    path = osp.join(out, LOCK_NAME)
    me = dict(pid=os.getpid(), host=socket.gethostname(),
              started=time.strftime('%Y-%m-%d %H:%M:%S'),
              command=' '.join(sys.argv))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            other = _holder(path) or {}
            pid = other.get('pid')
            same_host = other.get('host') == me['host']
            if isinstance(pid, int) and (not same_host or _alive(pid)):
                raise RunFolderBusyError(
                    f'{out} is in use by process {pid} on '
                    f'{other.get("host")} since {other.get("started")} '
                    f'({other.get("command")}); run one kd_benchmark per '
                    f'folder at a time, or remove {path} if that process '
                    'is gone') from None
            print(f'note: taking over the lock {path} left by a process '
                  f'that is gone ({other or "unreadable"})', flush=True)
            os.remove(path)
            continue
        with os.fdopen(fd, 'w') as f:
            json.dump(me, f)
        break
    try:
        yield path
    finally:
        if (_holder(path) or {}).get('pid') == me['pid']:
            os.remove(path)
