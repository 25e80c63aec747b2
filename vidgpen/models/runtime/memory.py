"""How the process allocator treats GPEN's activations on the CPU (no torch import: the CLI calls it first)."""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc's mallopt parameters


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS; True if applied.

    GPEN allocates and frees hundreds of MB of activations per face. By default glibc
    hands every block over 32 MB back with ``munmap`` and the next face page-faults it in
    again, zeroed: at 2048 that is half the forward's time on a 2-core CPU. Here large
    blocks come from one heap (one arena: the restore thread's blocks would otherwise
    sit in a 64 MB per-thread arena and be mapped anyway) that is never trimmed, so
    after the first face the process reuses its own pages (bench/gpen.py --allocator).
    The cost: the process keeps its peak size until it exits, which a restore run
    reaches on the first face anyway. A no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (present only in glibc)
    except (OSError, AttributeError):
        return False
    biggest = ctypes.c_int(2**31 - 1)
    return all(
        libc.mallopt(option, value) == 1
        for option, value in ((_M_ARENA_MAX, ctypes.c_int(1)), (_M_MMAP_THRESHOLD, biggest),
                              (_M_TRIM_THRESHOLD, biggest))
    )
