"""Keep the memory freed by tensors inside the process (glibc's malloc).

By default glibc serves large blocks with ``mmap`` and hands freed memory
at the top of the heap back to the OS once more than a threshold is free;
both thresholds adapt to the sizes seen. A training step frees most of its
activations at the end of its backward, and a frozen teacher's forward
under ``no_grad`` frees them layer by layer, so the next step takes fresh
pages from the OS again: thousands of page faults a step, each a kernel
entry and a page zeroed. On the benchmark's KD step (CPU, one thread,
``tools/benchmark/kd_step_overhead.py``) that was 6-8k minor page faults and
11-15 ms of system time a step (1-2k faults for a student step alone), and
the KD step took about 6 % less time without them.

:func:`retain_freed_memory` fixes both thresholds: blocks up to 32 MiB
(glibc's upper bound for the mmap threshold on 64-bit) come from the heap,
and the heap is never trimmed. The process then keeps its peak heap (what a
training process reaches at its first step anyway) instead of returning
it between steps. Results do not change: only where memory comes from.
``tools/train.py`` calls it (``--release-memory`` keeps glibc's default).
"""
import ctypes
import ctypes.util
import platform

__all__ = ['retain_freed_memory']

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: the largest int: the heap is never trimmed
TRIM_THRESHOLD = 2**31 - 1


def retain_freed_memory() -> bool:
    """Keep freed memory in the process (see the module docstring).

    Returns:
        bool: True when glibc's ``mallopt`` took both settings; False
        elsewhere (another C library, another OS), where nothing changes.
    """
    if platform.system() != 'Linux':
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error (e.g. a value out of range)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
