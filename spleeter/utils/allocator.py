"""Keep freed memory in the process for the next segment (glibc only, the CLI only).

glibc hands a freed block above its mmap threshold straight back to the kernel, and trims the
heap's free top; a separation allocates and frees the same 8 to 16 MB arrays for every segment
(STFTs, masks, frames), so each one is faulted in again page by page, and on a virtual machine
a page fault is costly. Serving such blocks from the heap (up to glibc's 32 MB limit) and
trimming only beyond 1 GiB measured 3.5 % of a cold 60 s 4-stem run on 2 cores (3.91 -> 3.77 s,
5 runs each; docs/performance.md), peak memory unchanged. A library does not change its host
process's allocator, so only ``spleeter``'s entry point calls this.
"""

import ctypes

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as above: True when both settings took (False on another C
    library, which has no ``mallopt`` or refuses them)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError, TypeError):  # no mallopt: not glibc (or not Unix)
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )
