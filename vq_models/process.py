"""Process-wide memory settings of glibc's malloc for the ``vqedit`` commands (Linux only; elsewhere no-ops).

Training and rendering allocate and free the same frame- and activation-sized buffers every step. glibc hands
blocks above its mmap threshold straight back to the kernel on ``free``, so the next step's allocation of the
same size is a fresh mapping whose every page faults in (and is zeroed) again: a Stage II step on 2 cores made
~10k page faults and ran about 10 % slower than with the memory kept (``benchmarks/README.md``). Keeping freed
memory in the heap costs nothing but holding the process's peak, which a training run or a render server
reaches every step anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers from <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

# Blocks up to this size come from the heap (and are reused) instead of a private mapping per allocation.
MMAP_THRESHOLD_BYTES = 1 << 30
# Freed heap memory is kept unless this much sits unused at the top.
TRIM_THRESHOLD_BYTES = 1 << 31
# Each heap growth asks the kernel for this much extra, so growing never happens in small steps.
TOP_PAD_BYTES = 256 << 20


def _mallopt(param: int, value: int) -> bool:
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(name).mallopt(param, value))
    except (OSError, AttributeError):
        return False


def keep_freed_memory() -> bool:
    """Reuse freed memory instead of returning it to the kernel (see the module docstring). True if applied."""
    ok = _mallopt(_M_MMAP_THRESHOLD, min(MMAP_THRESHOLD_BYTES, 2**31 - 1))
    ok = _mallopt(_M_TRIM_THRESHOLD, min(TRIM_THRESHOLD_BYTES, 2**31 - 1)) and ok
    return _mallopt(_M_TOP_PAD, TOP_PAD_BYTES) and ok


def one_malloc_arena() -> bool:
    """Renders run on worker threads; glibc gives each thread its own malloc arena, where every frame-sized
    array is a fresh mmap (page faults on each render) instead of reused heap memory as on the main thread:
    render_frame at 1024² ran ~30 % slower on a worker than on the main thread. One arena for the process
    (set before any worker starts) makes them equal. True if applied."""
    return _mallopt(_M_ARENA_MAX, 1)
