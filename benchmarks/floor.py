"""The floor under an epoch of configuration R (or A): the time NumPy's BLAS needs for the
matrix products alone, plus the time Adam's memory traffic needs at the machine's bandwidth.

    python benchmarks/floor.py --config R --n-train 25000 --threads 1,2
    python benchmarks/floor.py --config R --n-train 25000 --threads 1,2 --no-bucket
    python benchmarks/floor.py --config A --threads 2

For every batch of the epoch (``vs_torch.load_data``: the same batches as ``vs_torch.py``), the
script runs, on random float32 data of that batch's shapes, exactly the matrix products of one
fast-tier training step of AttentionSeq2Seq("dot") with a one-layer unidirectional encoder:

- each GRU (encoder over S steps, decoder over T), packed as the fast tier packs it (the N
  real positions only, the b_t rows still running at step t): the input projection of all
  steps at once, (N, D) × (D, 3H); one (b_t, H) × (H, 3H) product per step forward and one
  (b_t, 3H) × (3H, H) per step backward (these cannot be batched: step t needs step t − 1);
  dW_hh, dW_ih and dx as one product each over the N positions;
- the dot attention: scores and contexts forward (two batched products), four backward;
- the output layer on the N real target tokens only: r̃ W (N, 2H) × (2H, V), G Wᵀ, r̃ᵀ G.

The sum over the epoch is the products' floor. Adam reads θ, g, m, v and writes θ, m, v for
every parameter: 28 bytes a parameter per step; at the bandwidth of a k-thread NumPy triad
(c = a + b over 256 MiB arrays, the blocks spread over k threads as minis2s's Adam spreads
them), that is Adam's floor. Nothing else (no GRU gate, no softmax, no attention weights, no
gradient clipping) is counted, so the sum is below what any implementation on this BLAS and
this memory can reach.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def set_threads(k):
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MINIS2S_THREADS"] = str(k)


def product_seconds(batches, D, H, V, real_only=True, reps=1):
    """Seconds of the products of one epoch over ``batches`` (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(0)
    f32 = np.float32
    W_ih, W_hh = rng.random((D, 3 * H), f32), rng.random((H, 3 * H), f32)
    W_o = rng.random((2 * H, V), f32) * 0.01
    total = 0.0
    for src, tgt in batches:
        B, S = src.shape
        T = tgt.shape[1] - 1
        N = int((np.asarray(tgt)[:, 1:] != 0).sum()) if real_only else B * T
        grus = []  # per GRU: its rows running at each step, and its buffers of N_g rows
        for lengths, L in (((np.asarray(src) != 0).sum(1), S),
                           ((np.asarray(tgt)[:, 1:] != 0).sum(1), T)):
            active = [int((lengths > t).sum()) if real_only else B for t in range(L)]
            n = sum(active)
            grus.append((active, rng.random((n, D), f32), rng.random((n, 3 * H), f32),
                         rng.random((n, H), f32), rng.random((B, H), f32),
                         rng.random((B, 3 * H), f32)))
        enc, dec = rng.random((B, S, H), f32), rng.random((B, T, H), f32)
        att = rng.random((B, T, S), f32)
        r, G = rng.random((N, 2 * H), f32), rng.random((N, V), f32)
        t0 = time.perf_counter()
        for _ in range(reps):
            for active, x, g, h, h_t, g_t in grus:  # the encoder's GRU, then the decoder's
                x @ W_ih
                for b in active:
                    h_t[:b] @ W_hh
                for b in active:
                    g_t[:b] @ W_hh.T
                h.T @ g  # dW_hh
                x.T @ g  # dW_ih
                g @ W_ih.T  # dx
            dec @ enc.transpose(0, 2, 1)  # scores
            att @ enc  # contexts
            att @ enc, att.transpose(0, 2, 1) @ dec  # d scores · enc, d enc from the scores
            att @ enc, att.transpose(0, 2, 1) @ dec  # the contexts' two backward products
            r @ W_o
            G @ W_o.T
            r.T @ G
        total += (time.perf_counter() - t0) / reps
    return total


def bandwidth(k, mib=256, reps=5):
    """Bytes per second of c = a + b (two reads, one write) over ``mib`` MiB float32 arrays,
    in blocks spread over k threads; the best of ``reps``."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    n = mib * 2**20 // 4
    a, b, c = (np.ones(n, np.float32) for _ in range(3))
    block = 1 << 16
    starts = list(range(0, n, block))

    def part(i):
        for s in starts[i::k]:
            np.add(a[s:s + block], b[s:s + block], out=c[s:s + block])

    best = float("inf")
    with ThreadPoolExecutor(k) as pool:
        for _ in range(reps):
            t0 = time.perf_counter()
            list(pool.map(part, range(k)))
            best = min(best, time.perf_counter() - t0)
    return 3 * n * 4 / best


def child(cfg, k, q):
    set_threads(k)
    import numpy as np  # noqa: F401  (after the thread setting)
    import vs_torch

    sv, tv, batches = vs_torch.load_data(cfg)
    D, H, V = cfg["embed_dim"], cfg["hidden_dim"], len(tv)
    n_params = (len(sv) + len(tv)) * D + 2 * (3 * H * (D + H) + 6 * H) + (2 * H + 1) * V
    product_seconds(batches[:3], D, H, V)  # warm up
    prod = product_seconds(batches, D, H, V)
    bw = bandwidth(k)
    adam = len(batches) * 28 * n_params / bw
    q.put(dict(threads=k, batches=len(batches), products_s=prod, bandwidth_gbs=bw / 1e9,
               params=n_params, adam_s=adam, floor_s=prod + adam))


def main(argv=None):
    import vs_torch
    from _common import run_in_processes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="R", choices=["R", "A"])
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    cfg = dict(vs_torch.CONFIGS[args.config], bucket=args.bucket)
    if args.n_train is not None:
        cfg["n_train"] = args.n_train
    for k in (int(x) for x in args.threads.split(",")):
        r = run_in_processes(child, [(cfg, k)], at_once=1)[0]
        print(f"config {args.config} ({'bucketed' if args.bucket else 'unbucketed'}, "
              f"{r['batches']} batches), {k} thread(s): products {r['products_s']:.2f} s, "
              f"Adam's traffic {r['adam_s']:.2f} s ({r['params'] / 1e6:.2f} M parameters at "
              f"{r['bandwidth_gbs']:.1f} GB/s): floor {r['floor_s']:.2f} s an epoch", flush=True)


if __name__ == "__main__":
    main()
