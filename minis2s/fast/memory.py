"""Freed host memory kept for the next training step (glibc's malloc only).

A training step allocates and frees the same large arrays at every step: the GRU caches and
packed buffers, the loss's blocks of (N, V) rows, every temporary above 128 KiB. By default
glibc's malloc serves such an allocation with a fresh ``mmap`` and hands it back to the kernel
when it is freed (or trims the top of its heap), so the next step writes to new pages, and the
kernel zeroes and maps each 4 KiB page again on first touch: a minor page fault each. On the
AMD EPYC VM of docs/benchmarks.md, configuration A took about 1,000 of them a step, and they
made its step time both longer and more variable ("Freed memory kept for the next step").

:func:`keep_freed_memory` sets the two thresholds that decide this, once per process, as the
environment variables ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` would:

- ``M_MMAP_THRESHOLD`` = 1 GiB: allocations below it come from malloc's heap, not from
  ``mmap``;
- ``M_TRIM_THRESHOLD`` = 2 GiB − 1: malloc gives free memory at the top of its heap back to
  the kernel only beyond that.

Both are needed: either alone leaves the faults (setting one also stops glibc from adapting the
other). Freed memory then stays in the process for the next step. The peak does not grow (the
same arrays are reused, not added), but the memory is not handed back after training either.

Every optimizer calls it when it is created (training is about to start), so the explicit loop
of the README gets it too. It does nothing, and returns False, when:

- the C library is not glibc (macOS, Windows, musl);
- ``MINIS2S_KEEP_MEMORY=0`` is set (``1``, or unset, lets it act);
- the user set either threshold already, through those environment variables or
  ``GLIBC_TUNABLES``: theirs wins.

It changes no result: only where freed memory waits. The math never depends on it.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

__all__ = ["keep_freed_memory", "ENV_VAR", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

ENV_VAR = "MINIS2S_KEEP_MEMORY"
MMAP_THRESHOLD = 1 << 30  # bytes
TRIM_THRESHOLD = (1 << 31) - 1  # bytes; the largest value of mallopt's int argument
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_USER_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")

_lock = threading.Lock()
_applied = None  # None: not asked yet; then True or False for the rest of the process


def _wanted():
    value = os.environ.get(ENV_VAR, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{ENV_VAR} must be 0 or 1; got {value!r}")
    if value == "0":
        return False
    if any(os.environ.get(v) for v in _USER_SETTINGS):
        return False
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return not any(t in tunables for t in _USER_TUNABLES)


def _mallopt():
    """glibc's ``mallopt``, or None where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Keep freed host memory in the process for reuse (see the module docstring).

    Returns:
        True if the thresholds are set (now or by an earlier call), False if this process leaves
        its allocator alone (not glibc, ``MINIS2S_KEEP_MEMORY=0``, or the user's own settings).

    Raises:
        ValueError: ``MINIS2S_KEEP_MEMORY`` is neither 0 nor 1.
    """
    global _applied
    with _lock:
        if _applied is None:
            mallopt = _mallopt() if _wanted() else None
            _applied = bool(
                mallopt is not None
                and mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD))
                and mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(TRIM_THRESHOLD)))
        return _applied
