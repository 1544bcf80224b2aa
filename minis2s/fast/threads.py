"""Elementwise work over blocks, spread over the cores (NumPy only).

NumPy runs each ufunc on one thread, while PyTorch spreads its elementwise kernels over all of
its threads. But NumPy releases the GIL inside a ufunc, so Python threads that call ufuncs on
*disjoint* blocks of arrays run in parallel. :func:`run` does that for a list of independent
jobs (Adam's blocks, the loss's blocks of softmax rows): each thread takes every k-th job, the
calling thread included. Every job computes exactly what it computes alone, so the results are
bit-identical whatever the number of threads (tests check this).

The number of threads follows the BLAS setting, so that ``OPENBLAS_NUM_THREADS=1`` really means
one core: ``MINIS2S_THREADS``, else ``OPENBLAS_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the
cores this process may use. On CuPy everything runs in the calling thread (the GPU is parallel
already).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import backend

__all__ = ["num_threads", "run"]

_THREAD_VARS = ("MINIS2S_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
_pool = None
_pool_size = 0
_lock = threading.Lock()


def num_threads() -> int:
    """The threads that :func:`run` uses on NumPy (see the module docstring)."""
    for var in _THREAD_VARS:
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _helpers(k):
    """A pool of at least ``k`` helper threads (made once, grown when asked for more)."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < k:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool, _pool_size = ThreadPoolExecutor(k, thread_name_prefix="minis2s"), k
        return _pool


def _forget_pool():  # a forked child has none of its parent's threads
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _run_all(fn, jobs):
    for job in jobs:
        fn(job)


def run(fn, jobs):
    """Call ``fn(job)`` for every job in the list ``jobs``, over :func:`num_threads` threads.

    The jobs must be independent (each writes only its own block). Exceptions propagate.
    """
    k = 1 if backend.name == "cupy" else min(num_threads(), len(jobs))
    if k <= 1:
        _run_all(fn, jobs)
        return
    pool = _helpers(k - 1)
    futures = [pool.submit(_run_all, fn, jobs[i::k]) for i in range(1, k)]
    try:
        _run_all(fn, jobs[0::k])
    finally:
        for f in futures:
            f.result()
