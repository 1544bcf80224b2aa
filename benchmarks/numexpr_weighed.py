"""numexpr weighed as an accelerator of the fast tier's elementwise work (a measurement; nothing
here is library code, and numexpr is not a dependency).

    pip install numexpr
    python benchmarks/numexpr_weighed.py --threads 1
    python benchmarks/numexpr_weighed.py --threads 2 --json runs/numexpr_weighed.json

numexpr (pydata/numexpr) evaluates an elementwise expression such as ``m + c*(g - m)`` in one
pass over cache-sized blocks, on several threads, outside the interpreter's lock: on paper what
issue 14 asks of "a well-kept library that does this better than NumPy alone". The script times
the two places where the fast tier's elementwise time goes, each against minis2s's own code:

- **the GRU's forward time loop** (:func:`minis2s.fast.gru._direction_forward`, configuration
  A's B = 128, H = 256, T = 20 steps), against the same loop with each step's gate arithmetic
  as four numexpr expressions (σ of [r | z], hn, n and h) after the same product;
- **Adam's update** (:class:`minis2s.optim.Adam`, its blocks spread over the threads), against
  three numexpr expressions per parameter (m, v, then θ), on parameters of configuration R's
  sizes (7.7 million).

``--threads`` sets OpenBLAS's threads, minis2s's elementwise threads and numexpr's. Each figure
is the median of 30 calls after one warm-up, in ms; the results of the two ways are compared
too (largest absolute difference).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def median_ms(f, calls=30):
    import numpy as np

    f()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def gru_loop(ne, T=20, B=128, H=256):
    """(minis2s's forward loop, the numexpr loop, their largest difference in h)."""
    import numpy as np

    from minis2s.fast import gru

    rng = np.random.default_rng(0)
    f32 = np.float32
    gi = (rng.standard_normal((T, B, 3 * H)) * 0.3).astype(f32)
    W_hhT = (rng.standard_normal((H, 3 * H)) * 0.06).astype(f32)
    b_hn = (rng.standard_normal(H) * 0.06).astype(f32)
    h0 = np.zeros((B, H), f32)
    batch = gru._batch_order(None, B, T, f32)
    gi_packed = gi.reshape(T * B, 3 * H)  # no padding: the packed rows are the whole grid

    def minis2s_loop():
        return gru._direction_forward(gi_packed, h0, W_hhT, b_hn, batch, False)[0]

    half = f32(0.5)

    def numexpr_loop():  # the same buffers and math; each step's gates as four expressions
        hs = np.empty((T + 1, B, H), f32)
        hs[0] = h0
        rz = np.empty((T, B, 2 * H), f32)
        n, hn = np.empty((T, B, H), f32), np.empty((T, B, H), f32)
        gh = np.empty((B, 3 * H), f32)
        for t in range(T):
            h_prev, h = hs[t], hs[t + 1]
            np.matmul(h_prev, W_hhT, out=gh)
            a = rz[t]
            ne.evaluate("half + half * tanh(x + y)", out=a,
                        local_dict=dict(x=gi[t, :, :2 * H], y=gh[:, :2 * H], half=half))
            ne.evaluate("x + b", out=hn[t], local_dict=dict(x=gh[:, 2 * H:], b=b_hn))
            ne.evaluate("tanh(x + r * q)", out=n[t],
                        local_dict=dict(x=gi[t, :, 2 * H:], r=a[:, :H], q=hn[t]))
            ne.evaluate("m + z * (p - m)", out=h, local_dict=dict(m=n[t], z=a[:, H:], p=h_prev))
        return hs

    diff = float(np.abs(minis2s_loop() - numexpr_loop()).max())
    return median_ms(minis2s_loop), median_ms(numexpr_loop), diff


def adam(ne):
    """(minis2s's Adam step, the numexpr step, their largest difference in θ after one step)."""
    import numpy as np

    from minis2s import optim

    rng = np.random.default_rng(0)
    shapes = [(9000, 256), (6000, 256), (768, 256), (768, 256), (768, 256), (768, 256),
              (6000, 512), (6000,)]  # configuration R's sizes, roughly: 7.7 million
    f32 = np.float32
    start = {f"p{i}": rng.standard_normal(s).astype(f32) for i, s in enumerate(shapes)}
    grads = {k: (rng.standard_normal(v.shape) * 0.01).astype(f32) for k, v in start.items()}
    ours = {k: v.copy() for k, v in start.items()}
    opt = optim.Adam(ours, grads, lr=1e-3)
    theirs = {k: v.copy() for k, v in start.items()}
    m = {k: np.zeros_like(v) for k, v in start.items()}
    v2 = {k: np.zeros_like(v) for k, v in start.items()}
    c1, c2 = f32(1 - opt.beta1), f32(1 - opt.beta2)

    def numexpr_step(t):
        step = f32(opt.lr * (1 - opt.beta2**t) ** 0.5 / (1 - opt.beta1**t))
        eps = f32(opt.eps * (1 - opt.beta2**t) ** 0.5)
        for k, p in theirs.items():
            g = grads[k]
            ne.evaluate("m + c1 * (g - m)", out=m[k], local_dict=dict(m=m[k], g=g, c1=c1))
            ne.evaluate("v + c2 * (g * g - v)", out=v2[k], local_dict=dict(v=v2[k], g=g, c2=c2))
            ne.evaluate("p - s * m / (sqrt(v) + e)", out=p,
                        local_dict=dict(p=p, m=m[k], v=v2[k], s=step, e=eps))

    opt.step()
    numexpr_step(1)
    diff = max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours)
    calls = iter(range(2, 10**6))
    return median_ms(opt.step), median_ms(lambda: numexpr_step(next(calls))), diff


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1,
                    help="OpenBLAS's, minis2s's and numexpr's threads (default 1)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINIS2S_THREADS",
                "NUMEXPR_MAX_THREADS"):
        os.environ[var] = str(args.threads)  # before NumPy's (and numexpr's) first import
    try:
        import numexpr as ne
    except ImportError:
        sys.exit("this benchmark needs numexpr: pip install numexpr")
    ne.set_num_threads(args.threads)
    res = {}
    for name, fn in (("GRU forward loop (T = 20, B = 128, H = 256)", gru_loop),
                     ("Adam step (7.7 M parameters)", adam)):
        ours, theirs, diff = fn(ne)
        res[name] = dict(minis2s_ms=ours, numexpr_ms=theirs, max_abs_diff=diff)
        print(f"{name}, {args.threads} thread(s): minis2s {ours:.2f} ms, numexpr {theirs:.2f} ms "
              f"({theirs / ours:.2f}x); largest difference {diff:.1e}")
    print(f"numexpr {ne.__version__}, VML {'on' if ne.use_vml else 'off'}")
    if args.json:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _common import write_json

        write_json(args.json, args=vars(args), numexpr=ne.__version__, vml=bool(ne.use_vml),
                   results=res)


if __name__ == "__main__":
    main()
