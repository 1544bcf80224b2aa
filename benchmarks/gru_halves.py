"""The GRU in two batch halves on two threads, with BLAS at one thread: a measurement for the
next change (nothing here is library code).

    python benchmarks/gru_halves.py default A 120   # the library as it is: OpenBLAS with 2 threads
    python benchmarks/gru_halves.py blas1 A 120     # OpenBLAS with 1 thread, nothing else changed
    python benchmarks/gru_halves.py halves A 120    # OpenBLAS with 1 thread for the whole step,
                                                    # each GRU call as two halves of the batch
    python benchmarks/gru_halves.py halves2 A 120   # OpenBLAS with 2 threads, held to 1 thread
                                                    # (threadpoolctl) only inside the halves

Why: OpenBLAS's idle worker busy-waits for about 0.1 s after every multi-threaded product
(``OPENBLAS_THREAD_TIMEOUT``), so on two cores Python threads that run NumPy work between
products compete with it (docs/benchmarks.md, "Freed memory kept for the next step, and
OpenBLAS's spinning threads"). A GRU's rows are independent, so rows 0 … B/2 − 1 and B/2 … B − 1
can run their whole forward and backward (time loops and products) in two threads, with no
synchronisation until the parameter gradients are summed. ``halves`` does that by wrapping
``minis2s.fast.gru.gru_forward`` and ``gru_backward`` in this process (the same losses to every
printed digit). Run the modes in alternating fresh processes. ``R`` uses 8,000 pairs.
"""

import os
import sys
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "halves"  # default | blas1 | halves | halves2
cfgname = sys.argv[2] if len(sys.argv) > 2 else "A"
nsteps = int(sys.argv[3]) if len(sys.argv) > 3 else 120
if mode not in ("default", "blas1", "halves", "halves2"):
    raise SystemExit("mode must be default, blas1, halves or halves2")
blas = "1" if mode in ("blas1", "halves") else "2"
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[var] = blas  # before NumPy loads its BLAS
os.environ["MINIS2S_THREADS"] = "2"

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

from minis2s import _checks  # noqa: E402
from minis2s.fast import gru as fg  # noqa: E402

pool = ThreadPoolExecutor(1)
_blas = None


def both(f0, f1):
    """f0() here and f1() in the helper thread, at once."""
    global _blas
    if mode != "halves2":
        fut = pool.submit(f1)
        return f0(), fut.result()
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    with _blas.limit(limits=1):
        fut = pool.submit(f1)
        return f0(), fut.result()


if mode in ("halves", "halves2"):
    orig_forward, orig_backward = fg.gru_forward, fg.gru_backward

    def gru_forward(x, h0, mask, params, L, bidir, lengths=None, dropout_masks=None):
        B = x.shape[0]
        k = B // 2

        def part(sl):
            return lambda: orig_forward(
                x[sl], None if h0 is None else h0[:, sl], None if mask is None else mask[sl],
                params, L, bidir, None if lengths is None else lengths[sl],
                None if not dropout_masks else [d[sl] for d in dropout_masks])

        a, b = both(part(slice(0, k)), part(slice(k, B)))
        cache = a[2]._replace(batch=("halves", k, a[2], b[2]))  # passes the layer's isinstance
        return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]], axis=1), cache

    def gru_backward(dout, dh_n, cache):
        _, k, c0, c1 = cache.batch

        def part(c, sl):
            return lambda: orig_backward(None if dout is None else dout[sl],
                                         None if dh_n is None else dh_n[:, sl], c)

        a, b = both(part(c0, slice(0, k)), part(c1, slice(k, None)))
        grads = {name: a[2][name] + b[2][name] for name in a[2]}
        return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]], axis=1), grads

    fg.gru_forward, fg.gru_backward = gru_forward, gru_backward
    _checks.gru_sequence_grads = lambda *args, **kwargs: None  # it reads half a cache's shapes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vs_torch  # noqa: E402

cfg = dict(vs_torch.CONFIGS[cfgname], threads=2, device="cpu", bucket=True)
if cfgname == "R":
    cfg["n_train"] = 8000
n, step = vs_torch._step_function(cfg, "minis2s")
losses = [step(i) for i in range(3)]
t0 = time.perf_counter()
for i in range(3, 3 + nsteps):
    losses.append(step(i % n))
dt = time.perf_counter() - t0
print(f"{mode:8s} {cfgname}: {dt / nsteps * 1e3:.2f} ms a step, mean loss {np.mean(losses):.4f}")
