"""The fast GRU's (T, B, ·) layout against a transposed (T, ·, B) one, over a whole forward and
backward pass of one layer (a measurement for a change not made; nothing here is library code).

    python benchmarks/gru_layout.py --threads 2 --T 15 --D 16     # configuration A's encoder
    python benchmarks/gru_layout.py --threads 2 --T 12 --D 256    # configuration R's

``minis2s/fast/gru.py`` keeps a step's state as a (B, H) block and the gates side by side,
(B, 3H) and (B, 4H). So the step's product is h_prev W_hhᵀ, and most of the step's ufunc
calls read or write (B, H) views whose rows are H floats out of 3H or 4H. In the transposed
layout the state is (H, B), the step's product is W_hh h_prev with output (3H, B), and each
gate is a contiguous (H, B) block. The price is after the loops: dW_ih, dW_hh and dx need
the gate gradients and the states with (t, b) side by side, which in this layout takes one
copy of each (the (T, 4H, B) gate gradients to (4H, T·B), the states to (T·B, H)).

``prototype`` below is that layout for one unidirectional layer without padding. It is checked
against :func:`minis2s.fast.gru.gru_forward` and :func:`~minis2s.fast.gru.gru_backward` (the
same output, dx, dW_ih and dW_hh, to float32 rounding) and timed against them, alternating
call by call in one process: medians of ``--repeats`` calls each, in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--T", type=int, default=15, help="time steps")
    ap.add_argument("--D", type=int, default=16, help="input size")
    ap.add_argument("--B", type=int, default=128)
    ap.add_argument("--H", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy is imported
    import numpy as np

    from minis2s.fast import gru as fg

    T, B, H, D = args.T, args.B, args.H, args.D
    rng = np.random.default_rng(0)
    k = 1 / np.sqrt(H)
    W_ih, W_hh = (rng.uniform(-k, k, s).astype(np.float32) for s in ((3 * H, D), (3 * H, H)))
    b_ih, b_hh = (rng.uniform(-k, k, 3 * H).astype(np.float32) for _ in range(2))
    params = {"weight_ih_l0": W_ih, "weight_hh_l0": W_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
    x = rng.standard_normal((B, T, D), dtype=np.float32)
    dout = rng.standard_normal((B, T, H), dtype=np.float32)

    def today():
        out, _, cache = fg.gru_forward(x, None, None, params, 1, False)
        dx, _, grads = fg.gru_backward(dout, None, cache)
        return out, dx, grads["weight_ih_l0"], grads["weight_hh_l0"]

    def prototype():
        half = slice(0, 2 * H)  # σ(a) = 0.5 + 0.5 tanh(a/2), r and z rows halved, as today
        W_ih_s, W_hh_s, bias = W_ih.copy(), W_hh.copy(), b_ih.copy()
        W_ih_s[half] *= 0.5
        W_hh_s[half] *= 0.5
        bias[half] += b_hh[half]
        bias[half] *= 0.5
        xT = np.ascontiguousarray(x.transpose(1, 2, 0))  # (T, D, B)
        gi = np.matmul(W_ih_s, xT)  # (T, 3H, B)
        gi += bias[:, None]
        b_hn = b_hh[2 * H:, None]
        hs = np.zeros((T + 1, H, B), np.float32)
        rz = np.empty((T, 2 * H, B), np.float32)
        n, hn, r_hn, z_diff = (np.empty((T, H, B), np.float32) for _ in range(4))
        gh = np.empty((3 * H, B), np.float32)
        for t in range(T):
            h_prev, h = hs[t], hs[t + 1]
            np.matmul(W_hh_s, h_prev, out=gh)  # the step's one product, output (3H, B)
            a = np.add(gi[t, :2 * H], gh[:2 * H], out=rz[t])
            np.tanh(a, out=a)
            a *= 0.5
            a += 0.5
            r, z = a[:H], a[H:]
            hn_t = np.add(gh[2 * H:], b_hn, out=hn[t])
            n_t = np.add(gi[t, 2 * H:], np.multiply(r, hn_t, out=r_hn[t]), out=n[t])
            np.tanh(n_t, out=n_t)
            zd = np.subtract(h_prev, n_t, out=z_diff[t])
            zd *= z
            np.add(n_t, zd, out=h)
        out = np.ascontiguousarray(hs[1:].transpose(2, 0, 1))  # (B, T, H)
        doutT = np.ascontiguousarray(dout.transpose(1, 2, 0))
        G = np.empty((T, 4 * H, B), np.float32)  # [da_n | da_r | da_z | dhn] per step
        carry = np.zeros((H, B), np.float32)
        g, dh_z, dh_omz = (np.empty((H, B), np.float32) for _ in range(3))
        for t in range(T - 1, -1, -1):
            r, z = rz[t, :H], rz[t, H:]
            np.add(doutT[t], carry, out=g)
            da_n, da_r, da_z, dhn = (G[t, i * H:(i + 1) * H] for i in range(4))
            gz = np.multiply(g, z, out=dh_z)
            g_omz = np.subtract(g, gz, out=dh_omz)
            np.multiply(n[t], n[t], out=da_n)
            np.subtract(1, da_n, out=da_n)
            da_n *= g_omz
            np.multiply(da_n, r, out=dhn)
            np.subtract(hn[t], r_hn[t], out=da_r)
            da_r *= dhn
            np.multiply(z_diff[t], g_omz, out=da_z)
            np.matmul(W_hh.T, G[t, H:], out=carry)
            carry += gz
        # after the loop: (t, b) side by side, one copy each, then one product each as today
        Gc = np.ascontiguousarray(G.transpose(1, 0, 2)).reshape(4 * H, T * B)
        Hc = np.ascontiguousarray(hs[:T].transpose(0, 2, 1)).reshape(T * B, H)
        X2 = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, D)
        dW_ih = fg._rotate_blocks(Gc[:3 * H] @ X2, H)
        dW_hh = Gc[H:] @ Hc
        Gc.sum(axis=1)  # the biases' gradients, as today's colsum
        dx = (Gc[:3 * H].T @ fg._rotate_blocks(W_ih, 2 * H)).reshape(T, B, D)
        return out, np.ascontiguousarray(dx.transpose(1, 0, 2)), dW_ih, dW_hh

    rel = {name: float(np.abs(a - b).max() / np.abs(b).max())
           for name, a, b in zip(("out", "dx", "dW_ih", "dW_hh"), prototype(), today())}
    if max(rel.values()) > 1e-5:
        sys.exit(f"the prototype does not match the fast tier: {rel}")
    times = {"today": [], "transposed": []}
    for _ in range(args.repeats):
        for name, f in (("today", today), ("transposed", prototype)):
            t0 = time.perf_counter()
            f()
            times[name].append(1000 * (time.perf_counter() - t0))
    med = {k: float(np.median(v)) for k, v in times.items()}
    change = med["transposed"] / med["today"] - 1
    print(f"threads {args.threads}, T {T}, B {B}, D {D}, H {H}: today {med['today']:.2f} ms, "
          f"transposed {med['transposed']:.2f} ms ({change:+.1%}); largest relative "
          f"difference {max(rel.values()):.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(vars(args), median_ms=med, change=change, rel=rel), f, indent=1)


if __name__ == "__main__":
    main()
