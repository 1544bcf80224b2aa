"""Training steps of one framework alone: time a step, and count its minor page faults.

    python benchmarks/steps_alone.py --config A --steps 150                  # minis2s
    MINIS2S_KEEP_MEMORY=0 python benchmarks/steps_alone.py --config A        # allocator untouched
    python benchmarks/steps_alone.py --config A --framework torch
    python benchmarks/steps_alone.py --config A --framework torch --keep-memory   # torch with
                                                     # the thresholds minis2s sets (for comparison)

The steps are those of ``vs_torch.py`` (the same data, batches, weights, optimizer and
clipping: its ``_step_function``), after 3 warm-up steps. Run it in alternating fresh processes
to compare settings: the machine's speed drifts between runs, and a process keeps its allocator
settings for life. ``--keep-memory`` sets glibc's two thresholds in this process as
``minis2s.fast.memory`` does (it is how torch can be given the same setting).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="A", choices=("A", "B", "BR", "R"))
    ap.add_argument("--framework", default="minis2s", choices=("minis2s", "torch"))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=None, help="override the config's pairs")
    ap.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--keep-memory", action="store_true",
                    help="set glibc's thresholds here as minis2s.fast.memory does")
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy loads its BLAS
    if args.keep_memory:
        from minis2s.fast import memory

        print("thresholds set:", memory.keep_freed_memory())
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import vs_torch

    cfg = dict(vs_torch.CONFIGS[args.config], threads=args.threads, device="cpu",
               bucket=args.bucket)
    if args.n_train is not None:
        cfg["n_train"] = args.n_train
    n, step = vs_torch._step_function(cfg, args.framework)
    for i in range(3):
        step(i % n)
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    for i in range(3, 3 + args.steps):
        step(i % n)
    dt = time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
    print(f"{args.framework} {args.config} ({'bucketed' if args.bucket else 'unbucketed'}, "
          f"{args.threads} threads): {dt / args.steps * 1e3:.2f} ms a step, "
          f"{faults / args.steps:.0f} minor page faults a step, peak RSS "
          f"{vs_torch.rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
