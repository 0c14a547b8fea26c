"""The C allocator's settings for training on the CPU: keep freed memory for the next step.

A training step at a large batch allocates and frees the same big activation buffers (model H-95 at batch
1024: hundreds of MB each) every step. glibc's malloc serves such sizes with fresh mmap calls and gives
them back with munmap when freed, so every step pays the kernel to map and zero-fill the pages again: on an
AMD EPYC Zen 4 with 2 threads, H-95's step spent a quarter of its time in the kernel (6.0 s a step, 4.5 with
the setting below; H 2.2 -> 2.0 s; benchmarks/h_step_time.py). Serving them from the heap and never trimming
it keeps the pages mapped from one step to the next, the effect of the MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_ environment settings (or of jemalloc or tcmalloc, which PyTorch's CPU tuning guide
advises) set from inside the process. The process's peak memory stays reserved (H-95: 2.9 GB against 2.5).
What training computes does not change: only where its buffers live.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes: freed memory at the top of the heap is kept


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc serve large blocks from the heap and keep what is freed (once per process);
    False where the C library is not glibc (nothing changes there)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
