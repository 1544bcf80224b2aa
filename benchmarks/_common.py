"""Shared by the benchmark scripts: their common flags, writing results as JSON with the
machine they ran on, and running jobs in processes a few at a time."""

import json
import os
import platform
import sys


def machine():
    try:
        from minis2s import backend
    except ImportError:  # a parent that only starts children (alternate.py with PYTHONPATH)
        backend = None
    return dict(python=platform.python_version(), machine=platform.machine(),
                cpus=os.cpu_count(), backend=getattr(backend, "name", None))


def write_json(path, **fields):
    """Write ``fields`` plus ``machine`` to ``path`` (creating its directory) and say so."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(fields, machine=machine()), f, indent=1)
    print(f"wrote {path}")


def add_common_args(p):
    """The flags every training benchmark takes: --clip, --dtype, --seed, --backend,
    --progress and --json."""
    p.add_argument("--clip", type=float, default=5.0, help="gradient clipping norm (default 5)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")


def run_in_processes(target, jobs, at_once, context="spawn"):
    """Call ``target(*job, queue)`` for every tuple ``job`` of ``jobs``, each in a fresh spawned
    process (its own BLAS threads, nothing shared), ``at_once`` at a time. Each call puts one
    result on its queue; the results come back in the order of ``jobs``.

    If a run fails, or the parent is interrupted (Ctrl-C), the runs still going are terminated
    before the error goes on, so no child is left training on its own. On Linux a child also
    ends when the parent is killed outright (SIGKILL), which the parent cannot catch: see
    :func:`_die_with_parent`."""
    import multiprocessing as mp

    ctx = mp.get_context(context)
    pending, running, results = list(jobs), [], []
    try:
        while pending or running:
            while pending and len(running) < at_once:
                q = ctx.Queue()
                p = ctx.Process(target=_guarded, args=(os.getpid(), target, *pending.pop(0), q),
                                daemon=True)
                p.start()
                running.append((p, q))
            p, q = running[0]
            results.append(result_of(p, q))
            running.pop(0)
    except BaseException:
        for p, _ in running:
            if p.is_alive():
                p.terminate()
            p.join()
        raise
    return results


def _die_with_parent(parent_pid):
    """On Linux, ask the kernel to send this process SIGTERM when its parent dies, however it
    dies (``prctl(PR_SET_PDEATHSIG)``); if the parent is already gone, end now. Elsewhere,
    nothing: there the parent's own clean-up (:func:`run_in_processes`) is all there is."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):  # no prctl in this C library: keep running
        return
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os._exit(1)


def _guarded(parent_pid, target, *args):
    """A child of :func:`run_in_processes`: ends with its parent, then runs ``target``."""
    _die_with_parent(parent_pid)
    target(*args)


def result_of(process, queue, poll_s=5.0):
    """The one result ``process`` puts on ``queue``, then join it. If the process ends without
    putting one (it raised, or was killed), raise RuntimeError with its exit code instead of
    waiting forever."""
    import queue as queue_module

    while True:
        try:
            res = queue.get(timeout=poll_s)
            break
        except queue_module.Empty:
            if not process.is_alive():
                try:  # it may have put its result just before it ended
                    res = queue.get(timeout=poll_s)
                    break
                except queue_module.Empty:
                    raise RuntimeError(f"the benchmark's child process ended with exit code "
                                       f"{process.exitcode} and gave no result (its traceback "
                                       f"is above)") from None
    process.join()
    return res
