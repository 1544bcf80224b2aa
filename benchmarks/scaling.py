"""Configuration C: how the training step time scales with batch size, hidden size and length.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/scaling.py [--steps 5] \
        [--json docs/scaling.json] [--plot docs/scaling.png]

The model is configuration A's (AttentionSeq2Seq with dot attention, D=16, float32, Adam,
clipping 5.0), on random source/target ids (source length S, target length S/2, vocabulary 40).
One factor varies at a time around B=128, H=256, S=50: B ∈ {32, 128, 512}, H ∈ {128, 256, 512},
S ∈ {20, 50, 100}. For each point minis2s and its PyTorch twin (when torch is installed) train
``--steps`` steps each, alternating, after one warm-up step; the median step time is reported.
Time should grow about linearly with B and S (and faster than linearly with H: the recurrent
matrix product is H × 3H).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BASE = dict(B=128, H=256, S=50)
GRID = dict(B=(32, 128, 512), H=(128, 256, 512), S=(20, 50, 100))
V, D = 40, 16


def batch(B, S, seed=0):
    rng = np.random.default_rng(seed)
    T = S // 2
    src = rng.integers(4, V, size=(B, S))
    tgt = np.concatenate([np.ones((B, 1), int), rng.integers(4, V, size=(B, T)),
                          np.full((B, 1), 2)], axis=1)
    return src, tgt


def minis2s_stepper(B, H, S):
    import minis2s
    from minis2s import optim
    from minis2s.train import train_step

    model = minis2s.AttentionSeq2Seq(V, V, embed_dim=D, hidden_dim=H, attention="dot")
    opt = optim.Adam(model.params, model.grads, lr=1e-3)
    src, tgt = batch(B, S)
    return lambda: train_step(model, opt, src, tgt, 5.0)


def torch_stepper(B, H, S):
    import torch
    from torch_reference import TorchSeq2Seq

    model = TorchSeq2Seq(V, V, D, H, attention="dot")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    src, tgt = (torch.from_numpy(a) for a in batch(B, S))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(src, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    return step


def time_steps(step, n):
    step()  # warm-up
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.no_torch:
            raise ImportError
        import torch

        # the same number of threads as NumPy's BLAS (set OPENBLAS_NUM_THREADS and
        # OMP_NUM_THREADS before starting the script)
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
        frameworks = {"minis2s": minis2s_stepper, "torch": torch_stepper}
    except ImportError:
        frameworks = {"minis2s": minis2s_stepper}
    results = []
    for factor, values in GRID.items():
        for value in values:
            cfg = dict(BASE, **{factor: value})
            steppers = {f: make(**cfg) for f, make in frameworks.items()}
            times = {f: [] for f in steppers}
            for _ in range(2):  # alternate the frameworks, two rounds
                for f, step in steppers.items():
                    times[f] += time_steps(step, args.steps)
            row = dict(factor=factor, **cfg,
                       **{f"{f}_ms": 1000 * statistics.median(t) for f, t in times.items()})
            if "torch_ms" in row:
                row["ratio"] = row["minis2s_ms"] / row["torch_ms"]
            results.append(row)
            print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row.items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        plot(results, args.plot)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, factor in zip(axes, GRID):
        rows = [r for r in results if r["factor"] == factor]
        x = [r[factor] for r in rows]
        for f, style in (("minis2s", "o-"), ("torch", "s--")):
            if f"{f}_ms" in rows[0]:
                ax.plot(x, [r[f"{f}_ms"] for r in rows], style, label=f)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(x)
        ax.set_xticklabels([str(v) for v in x])
        ax.set_xlabel(factor)
        ax.set_ylabel("ms per training step")
        others = ", ".join(f"{k}={v}" for k, v in BASE.items() if k != factor)
        ax.set_title(f"varying {factor} ({others})")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
