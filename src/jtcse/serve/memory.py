"""Giving freed heap memory back to the OS between batches (glibc only).

Activations of ever-different shapes (batch size x sequence length) leave glibc's heap fragmented: freed
pages stay resident, and a long mixed load would see the server's RSS creep up. ``malloc_trim(0)`` returns
free pages to the OS; the worker calls it between batches, at most once per interval (it costs about a
millisecond), so memory stays flat under load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time

TRIM_INTERVAL_S = 2.0


class HeapTrimmer:
    def __init__(self, interval_s: float = TRIM_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last = time.monotonic()
        self._trim = _malloc_trim()

    def maybe_trim(self) -> None:
        if self._trim is None or time.monotonic() - self._last < self.interval_s:
            return
        self._trim(0)
        self._last = time.monotonic()


def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc; absent on musl
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim
