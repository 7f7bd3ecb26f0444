"""The engine process's heap: freed stream buffers are kept for reuse, not handed back.

A backup or restore moves gigabytes through buffers of a few MiB (a part, a zstd frame,
a read from the tool's pipe), allocated in one thread and freed in another. With
glibc's defaults the heap gives such memory back to the kernel as soon as it is freed
(and maps buffers above its sliding threshold afresh), so every next buffer is faulted
in and zeroed by the kernel again: about one page fault per 4 KiB stored, 0.7 core-s
per 4 GiB backup on the bench's machine. Fixing the two thresholds keeps what was freed,
up to `TRIM_THRESHOLD` at the top of each heap, for the next buffer. The working set is
bounded by the pipelines themselves, so the peak RSS grows by at most about that much.

Only glibc has `mallopt`; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

#: glibc's parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: buffers up to this size come from the heap (glibc's own upper bound for the sliding
#: threshold on 64-bit): parts of 16 MiB, frames of 4 MiB
MMAP_THRESHOLD = 32 << 20
#: freed memory kept at the top of a heap before any is given back
TRIM_THRESHOLD = 64 << 20


def keep_freed_buffers() -> bool:
    """Set the heap's thresholds for streaming; True when glibc took both."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        logger.debug("no mallopt in this C library: the heap keeps its defaults")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    taken = [
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    ]
    return taken == [1, 1]
