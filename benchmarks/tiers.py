"""Training-step time of configuration A on each tier, and against an older tree of minis2s.

    python benchmarks/tiers.py --steps 60 --repeats 3
    python benchmarks/tiers.py --steps 60 --repeats 3 --old /path/to/older/checkout

Configuration A (see vs_torch.py): the dates task, AttentionSeq2Seq (dot), D = 16, H = 256,
B = 128, Adam (lr 2e-3), clipping 5. Each measurement runs ``--steps`` training steps (after 5
warm-up steps) in a fresh child process, on the same bucketed batches; the variants alternate
(old, fast, reference, old, fast, ...) so that a change in the machine's load hits all of them
alike, and the median per-step time of each is printed. ``--old`` points at another checkout
(e.g. one made with ``git worktree add``) whose ``minis2s`` is imported instead; a tree without
tiers runs its only implementation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
impl, steps = sys.argv[1], int(sys.argv[2])
from minis2s import backend, optim
if impl != "only":
    backend.use_impl(impl)
import minis2s
from minis2s.data import Vocab, encode_pairs, make_batches, make_splits
from minis2s.train import train_step
train, _, _ = make_splits("dates", (20000, 10, 10), seed=0)
sv, tv = Vocab.build([s for s, _ in train]), Vocab.build([t for _, t in train])
batches = list(make_batches(encode_pairs(train, sv, tv), 128, shuffle=True, seed=0, bucket=True))
model = minis2s.AttentionSeq2Seq(len(sv), len(tv), 16, 256, attention="dot", seed=0)
opt = optim.Adam(model.params, model.grads, lr=2e-3)
for b in batches[:5]:
    train_step(model, opt, b.src, b.tgt, 5.0)
t0 = time.perf_counter()
for b in batches[5:5 + steps]:
    train_step(model, opt, b.src, b.tgt, 5.0)
print(json.dumps((time.perf_counter() - t0) / steps))
"""


def measure(pythonpath, impl, steps, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, "-c", CHILD, impl, str(steps)], env=env,
                         capture_output=True, text=True, check=True, cwd=pythonpath or None)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--old", default=None, help="an older checkout to compare with")
    args = ap.parse_args(argv)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    variants = [("fast", here, "fast"), ("reference", here, "reference")]
    if args.old:
        variants.insert(0, ("old", os.path.abspath(args.old), "only"))
    times = {name: [] for name, _, _ in variants}
    for r in range(args.repeats):
        for name, path, impl in variants:
            t = measure(path, impl, args.steps, args.threads)
            times[name].append(t)
            print(f"repeat {r + 1}: {name:9s} {1000 * t:7.1f} ms per step", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("median ms per step: " + ", ".join(f"{k} {1000 * v:.1f}" for k, v in med.items()))
    if "old" in med:
        print(f"fast / old = {med['fast'] / med['old']:.3f}; reference / fast = "
              f"{med['reference'] / med['fast']:.3f}")


if __name__ == "__main__":
    main()
