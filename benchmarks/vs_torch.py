"""minis2s against PyTorch: the same model, data, batches and hyperparameters, timed in one run.

    python benchmarks/vs_torch.py --config A            # dates, AttentionSeq2Seq (dot)
    python benchmarks/vs_torch.py --config A --repeats 3 --json out.json
    python benchmarks/vs_torch.py --config B --threads 1   # entities, PointerGenerator + coverage
    python benchmarks/vs_torch.py --config A --device cuda --batch-size 512   # CuPy vs torch CUDA
    python benchmarks/vs_torch.py --config R --threads 2 --no-bucket   # Tatoeba fr->en, words
    python benchmarks/vs_torch.py --config R --profile 10   # cProfile of 10 minis2s steps only
    python benchmarks/vs_torch.py --config A --no-bucket --per-step 100   # alternating steps
    python benchmarks/vs_torch.py --config A --no-bucket --lockstep 16   # the same, two processes

Configurations (``CONFIGS``):

* A: the ``dates`` task (45,000 pairs, character level), ``AttentionSeq2Seq(attention="dot")``
  with a unidirectional encoder, D = 16, H = 256, B = 128.
* B: the ``entities`` copy task (20,000 pairs, word level), ``PointerGenerator`` with coverage
  from the start (λ = 1), bidirectional encoder with the bridge, D = 64, H = 128 (attention size
  A = H), B = 64. One vocabulary for source and target, built on the training sources and
  targets with ``min_freq=5``, so that 6% of the training sources hold an unknown word; such
  words reach the model as extended ids V + k (``encode_pairs(..., extend_oov=True)``) and can
  only be copied. The PyTorch twin is ``torch_reference.TorchPointerGenerator``.
* R: real words, the Tatoeba French → English task
  (``minis2s.data.tasks.tatoeba.load_splits(level="word", min_freq=2)``: 68,408 training pairs,
  vocabularies of 9,471 French and 5,367 English words), ``AttentionSeq2Seq(attention="dot")``
  with a unidirectional encoder, D = H = 256, B = 128, Adam lr 1e-3 (as
  ``benchmarks/translation.py``). ``--n-train`` takes a seeded subset of the encoded training
  pairs and keeps the vocabularies of the whole training part, so a step costs what it costs
  in the full epoch. The twin is ``torch_reference.TorchSeq2Seq``.
* BR: configuration B's model (PointerGenerator with coverage, D = 64, H = 128, B = 64, Adam
  2e-3) on the Tatoeba task with one vocabulary shared by both sides (the words seen at least
  twice in training: about 12,000), unknown source words as extended ids.

Batches are bucketed by length by default (``--no-bucket``: shuffled, unbucketed, so about a
third of the target positions are PAD).

Each timed epoch runs in a fresh child process (so peak memory is measured per framework), and
the two frameworks alternate: minis2s, torch, minis2s, torch, ... Both start from identical
weights (the PyTorch twin's, copied into minis2s), see identical batches in identical order, and
use Adam (lr 2e-3; 1e-3 for R) with gradient clipping at 5.0 in float32, so their losses after
the epoch agree closely and the comparison is of the same computation.

With ``--device cuda`` minis2s runs on CuPy (``backend.use("cupy")``, fused GRU kernels) and the
twin on CUDA (cuDNN's GRU); the batches are copied to the GPU before the clock starts, for both.
Each step reads its loss back as a Python float in both frameworks (one host sync per step).

Printed per run: epoch time, tokens/s, the mean loss over the epoch, peak RSS of the process and
its growth during training, and the achieved GFLOP/s of the model's matrix products against
this machine's float32 matrix-multiply peak (measured here with NumPy on a 2048² GEMM).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run_in_processes  # noqa: E402

CONFIGS = {
    "A": dict(task="dates", model="attention", embed_dim=16, hidden_dim=256, batch_size=128,
              n_train=45000, lr=2e-3, clip=5.0),
    "B": dict(task="entities", model="pointer", embed_dim=64, hidden_dim=128, batch_size=64,
              n_train=20000, min_freq=5, coverage=True, cov_loss_weight=1.0, lr=2e-3, clip=5.0),
    "R": dict(task="tatoeba", model="attention", embed_dim=256, hidden_dim=256, batch_size=128,
              n_train=None, min_freq=2, lr=1e-3, clip=5.0),
    # configuration B's model at the Tatoeba task's vocabulary (one shared word vocabulary)
    "BR": dict(task="tatoeba", model="pointer", embed_dim=64, hidden_dim=128, batch_size=64,
               n_train=None, min_freq=2, coverage=True, cov_loss_weight=1.0, lr=2e-3, clip=5.0),
}


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_data(cfg, seed=0):
    from minis2s.data import Vocab, encode_pairs, make_batches, make_splits

    if cfg["task"] == "tatoeba":  # real words: the vocabularies of the whole training part
        from minis2s.data.tasks import tatoeba

        logging.getLogger("minis2s.data").setLevel(logging.ERROR)  # the <unk> counts
        data = tatoeba.load_splits(level="word", min_freq=cfg["min_freq"],
                                   shared=cfg["model"] == "pointer")
        sv, tv = data.src_vocab, data.tgt_vocab  # one and the same when shared
        pairs = data.encode(data.train)
        if cfg["n_train"] is not None and cfg["n_train"] < len(pairs):
            keep = np.sort(np.random.default_rng(seed).permutation(len(pairs))[:cfg["n_train"]])
            pairs = [pairs[i] for i in keep]
    elif cfg["model"] == "pointer":  # one word vocabulary; unknown source words as V + k
        # the count of unknown words is printed once by main, not warned in every child
        logging.getLogger("minis2s.data").setLevel(logging.ERROR)
        train, _, _ = make_splits(cfg["task"], (cfg["n_train"], 0, 0), seed=seed)
        sv = tv = Vocab.build([s for s, _ in train] + [t for _, t in train], level="word",
                              min_freq=cfg["min_freq"])
        pairs = encode_pairs(train, sv, tv, extend_oov=True)
    else:
        train, _, _ = make_splits(cfg["task"], (cfg["n_train"], 10, 10), seed=seed)
        sv = Vocab.build([s for s, _ in train])
        tv = Vocab.build([t for _, t in train])
        pairs = encode_pairs(train, sv, tv)
    it = make_batches(pairs, cfg["batch_size"], shuffle=True, seed=seed,
                      bucket=cfg.get("bucket", True))
    batches = [(b.src, b.tgt) for b in it]
    return sv, tv, batches


def flops_per_batch(cfg, src, tgt):
    """Matrix-product FLOPs of one training step (forward ×3 ≈ forward + backward), over the
    whole padded (B, T) grid, as the PyTorch twin computes it (minis2s's fast tier computes
    the output layer on the real target tokens only, so its GFLOP/s is a nominal rate)."""
    B, S = src.shape
    T = tgt.shape[1] - 1
    D, H = cfg["embed_dim"], cfg["hidden_dim"]
    V = cfg["V"]
    gru = lambda steps: 2 * B * steps * (D * 3 * H + H * 3 * H)  # noqa: E731
    if cfg["model"] == "pointer":
        Hs, A = 2 * H, H  # bidirectional encoder; attention size A = H
        f = 2 * gru(S) + gru(T)  # both encoder directions, the decoder
        f += 2 * B * S * Hs * A + 2 * B * T * H * A  # keys h W_h, queries s W_s
        f += 2 * B * T * S * A + 2 * B * T * S * Hs  # scores vᵀ tanh(.), context Σ a h
        f += 2 * B * T * (H + Hs) * H + 2 * B * T * H * V  # out_hidden, out
        return 3 * f
    f = gru(S) + gru(T)
    readout = H
    if cfg["model"] == "attention":
        f += 2 * 2 * B * T * S * H  # scores and context
        readout = 2 * H
    f += 2 * B * T * readout * V
    return 3 * f


def make_twin(cfg, sv, tv):
    """The PyTorch model of the configuration (seeded: both frameworks start from it)."""
    import torch
    from torch_reference import TorchPointerGenerator, TorchSeq2Seq

    torch.manual_seed(0)
    if cfg["model"] == "pointer":
        return TorchPointerGenerator(len(sv), cfg["embed_dim"], cfg["hidden_dim"],
                                     bidirectional=True, coverage=cfg["coverage"],
                                     cov_loss_weight=cfg["cov_loss_weight"])
    return TorchSeq2Seq(len(sv), len(tv), cfg["embed_dim"], cfg["hidden_dim"],
                        attention="dot" if cfg["model"] == "attention" else None)


def make_minis2s(cfg, sv, tv):
    """The minis2s model of the configuration, with the twin's weights."""
    from torch_reference import copy_pg_to_minis2s, copy_to_minis2s

    import minis2s

    twin = make_twin(cfg, sv, tv)
    if cfg["model"] == "pointer":
        model = minis2s.PointerGenerator(len(sv), cfg["embed_dim"], cfg["hidden_dim"],
                                         bidirectional=True, coverage=cfg["coverage"],
                                         cov_loss_weight=cfg["cov_loss_weight"])
        copy_pg_to_minis2s(twin, model)
    else:
        if cfg["model"] == "attention":
            model = minis2s.AttentionSeq2Seq(len(sv), len(tv), cfg["embed_dim"],
                                             cfg["hidden_dim"], attention="dot")
        else:
            model = minis2s.Seq2Seq(len(sv), len(tv), cfg["embed_dim"], cfg["hidden_dim"])
        copy_to_minis2s(twin, model)
    return model


def run_minis2s(cfg, q):
    from minis2s import backend, optim
    from minis2s.train import train_step

    if cfg["device"] == "cuda":
        backend.use("cupy")
    sv, tv, batches = load_data(cfg)
    model = make_minis2s(cfg, sv, tv)
    opt = optim.Adam(model.params, model.grads, lr=cfg["lr"])
    batches = [(backend.asarray(s), backend.asarray(t)) for s, t in batches]
    base = current_rss_mb()
    losses, tokens = [], 0
    t0 = time.perf_counter()
    for src, tgt in batches:
        loss, _ = train_step(model, opt, src, tgt, cfg["clip"])  # loss: a float (a host sync)
        losses.append(loss)
        tokens += int((tgt[:, 1:] != 0).sum())
    dt = time.perf_counter() - t0
    gpu_mb = None
    if cfg["device"] == "cuda":
        gpu_mb = backend.xp.get_default_memory_pool().total_bytes() / 2**20
    q.put(dict(framework="minis2s", time=dt, tokens=tokens, loss=float(np.mean(losses)),
               last_loss=float(np.mean(losses[-20:])), peak_rss=rss_mb(),
               train_rss_growth=rss_mb() - base, gpu_mb=gpu_mb))


def run_torch(cfg, q):
    import torch

    torch.set_num_threads(cfg["threads"])
    dev = torch.device(cfg["device"])
    sv, tv, batches = load_data(cfg)
    model = make_twin(cfg, sv, tv).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    tb = [(torch.from_numpy(np.asarray(s)).to(dev), torch.from_numpy(np.asarray(t)).to(dev))
          for s, t in batches]
    base = current_rss_mb()
    losses, tokens = [], 0
    t0 = time.perf_counter()
    for src, tgt in tb:
        opt.zero_grad(set_to_none=True)
        loss = model(src, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
        losses.append(loss.item())  # a host sync, as minis2s's float loss
        tokens += int((tgt[:, 1:] != 0).sum())
    dt = time.perf_counter() - t0
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if cfg["device"] == "cuda" else None
    q.put(dict(framework="torch", time=dt, tokens=tokens, loss=float(np.mean(losses)),
               last_loss=float(np.mean(losses[-20:])), peak_rss=rss_mb(),
               train_rss_growth=rss_mb() - base, gpu_mb=gpu_mb))


def profile_minis2s(cfg, q):
    """cProfile of ``cfg["profile"]`` minis2s training steps (after 3 warm-up steps), on the
    tier that ``MINIS2S_IMPL`` names (default fast): the functions by their own time."""
    import cProfile
    import io
    import pstats

    from minis2s import backend, optim
    from minis2s.train import train_step

    sv, tv, batches = load_data(cfg)
    model = make_minis2s(cfg, sv, tv)
    opt = optim.Adam(model.params, model.grads, lr=cfg["lr"])
    for src, tgt in batches[:3]:
        train_step(model, opt, src, tgt, cfg["clip"])
    steps = batches[3:3 + cfg["profile"]]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for src, tgt in steps:
        train_step(model, opt, src, tgt, cfg["clip"])
    prof.disable()
    dt = time.perf_counter() - t0
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    real = sum(int((np.asarray(t)[:, 1:] != 0).sum()) for _, t in steps)
    cells = sum(np.asarray(t)[:, 1:].size for _, t in steps)
    q.put(dict(impl=backend.impl(), steps=len(steps), ms_per_step=1000 * dt / len(steps),
               real_share=real / cells, stats=out.getvalue()))


def per_step(cfg, q):
    """``cfg["per_step"]`` training steps of each framework, alternating step by step in one
    process (minis2s, torch, minis2s, ...) on the same batches, after 3 warm-up steps each:
    both see the same machine conditions at the same moments. Returns the per-step times."""
    import torch

    torch.set_num_threads(cfg["threads"])
    steps = {name: _step_function(cfg, name) for name in ("minis2s", "torch")}
    times = {"minis2s": [], "torch": []}
    for i in range(cfg["per_step"] + 3):
        for name, (n_batches, step) in steps.items():
            t0 = time.perf_counter()
            step(i % n_batches)
            if i >= 3:
                times[name].append(time.perf_counter() - t0)
    q.put(times)


def _step_function(cfg, framework):
    """(the number of batches, step(i) -> the loss of a training step on batch i as a float) of
    one framework, built as the timed epochs build it: the same data, batches, weights,
    optimizer and clipping."""
    sv, tv, batches = load_data(cfg)
    if framework == "minis2s":
        from minis2s import optim
        from minis2s.train import train_step

        model = make_minis2s(cfg, sv, tv)
        opt = optim.Adam(model.params, model.grads, lr=cfg["lr"])
        return len(batches), lambda i: train_step(model, opt, *batches[i], cfg["clip"])[0]
    import torch

    torch.set_num_threads(cfg["threads"])
    twin = make_twin(cfg, sv, tv)
    topt = torch.optim.Adam(twin.parameters(), lr=cfg["lr"])
    tb = [(torch.from_numpy(np.asarray(s)), torch.from_numpy(np.asarray(t))) for s, t in batches]

    def step(i):
        topt.zero_grad(set_to_none=True)
        loss = twin(*tb[i])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), cfg["clip"])
        topt.step()
        return loss.item()  # a host sync, as minis2s's float loss

    return len(batches), step


def _lockstep_worker(parent_pid, framework, cfg, conn):
    """One framework in its own process for :func:`lockstep`: on each message (start, k) it
    runs the training steps of batches start .. start + k − 1 and sends back their times."""
    from _common import _die_with_parent

    _die_with_parent(parent_pid)
    n_batches, step = _step_function(cfg, framework)
    conn.send(n_batches)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        start, k = msg
        times, losses = [], []
        for i in range(start, start + k):
            t0 = time.perf_counter()
            losses.append(step(i % n_batches))
            times.append(time.perf_counter() - t0)
        conn.send((times, losses))


def lockstep(cfg, chunk, chunks, pause=0.3, warmup=3):
    """Per-step timing with each framework in its own fresh process, alternating in chunks of
    ``chunk`` steps: minis2s runs batches i .. i + chunk − 1, then torch runs the same batches,
    then the next chunk (the one that starts alternates, ABBA). The idle process waits on a
    pipe, and ``pause`` seconds between turns let the other's idle BLAS/OpenMP threads stop
    spinning, so each chunk has the machine to itself; drift of the machine over the run falls
    on both alike. Returns {framework: [per-step times]}, chunk by chunk, and the losses."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    names = ("minis2s", "torch")
    procs, conns = [], {}
    try:
        for name in names:
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=_lockstep_worker, args=(os.getpid(), name, cfg, theirs),
                            daemon=True)
            p.start()
            procs.append(p)
            conns[name] = mine
        n_batches = {name: conns[name].recv() for name in names}
        assert n_batches["minis2s"] == n_batches["torch"], n_batches
        for name in names:  # warm-up steps, not timed
            conns[name].send((0, warmup))
            conns[name].recv()
        times = {name: [] for name in names}
        losses = {name: [] for name in names}
        for c in range(chunks):
            start = warmup + c * chunk
            order = names if c % 4 in (0, 3) else names[::-1]  # ABBA
            for name in order:
                time.sleep(pause)
                conns[name].send((start, chunk))
                t, l = conns[name].recv()
                times[name].append(t)
                losses[name].append(l)
        for name in names:
            conns[name].send(None)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    return times, losses


def child(fn, cfg):
    """``fn(cfg, queue)`` in a fresh spawned process; its result."""
    return run_in_processes(fn, [(cfg,)], at_once=1)[0]


def matmul_peak_gflops(cfg, q, n=2048, reps=5):
    """Best float32 GEMM rate of NumPy on an n×n product (in a child, with the run's threads)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    q.put(2 * n**3 / best / 1e9)


def gpu_matmul_peak_tflops(cfg, q, n=8192, reps=5):
    """Best float32 GEMM rate of CuPy on an n×n product (TFLOP/s), events around each."""
    from minis2s import backend

    cp = backend.use("cupy")
    a = cp.asarray(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    a @ a
    best = float("inf")
    for _ in range(reps):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        a @ a
        end.record()
        end.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, end) / 1000)
    q.put(2 * n**3 / best / 1e12)


def _write(path, **fields):
    """Write ``fields`` with the machine and the time as JSON to ``path`` (None: nothing)."""
    if path:
        with open(path, "w") as f:
            json.dump(dict(fields, machine=platform.platform(),
                           date=time.strftime("%Y-%m-%d %H:%M")), f, indent=1)


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="A", choices=sorted(CONFIGS))
    ap.add_argument("--repeats", type=int, default=2, help="epochs per framework (alternated)")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="threads for both: OpenBLAS (NumPy) and torch.set_num_threads")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: minis2s on CuPy against the twin on CUDA (cuDNN)")
    ap.add_argument("--batch-size", type=int, default=None, help="override the config's B")
    ap.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=True,
                    help="batches of similar lengths (--no-bucket: shuffled, more PAD)")
    ap.add_argument("--per-step", type=int, default=None, metavar="STEPS",
                    help="time STEPS training steps of each framework alternating step by "
                         "step in one process (after 3 warm-up steps), no timed epochs")
    ap.add_argument("--lockstep", type=int, default=None, metavar="CHUNK",
                    help="time steps of each framework in its own process, the two processes "
                         "taking turns CHUNK steps at a time on the same batches, no timed "
                         "epochs (--chunks turns each)")
    ap.add_argument("--chunks", type=int, default=20, help="turns each for --lockstep")
    ap.add_argument("--pause", type=float, default=0.3,
                    help="seconds between --lockstep's turns (the idle threads' spin ends)")
    ap.add_argument("--profile", type=int, default=None, metavar="STEPS",
                    help="only profile STEPS minis2s training steps (cProfile), no timed epochs")
    args = ap.parse_args(argv)
    cfg = dict(CONFIGS[args.config], threads=args.threads, device=args.device,
               bucket=args.bucket)
    if args.batch_size:
        cfg["batch_size"] = args.batch_size
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # read by each (spawned) child at import
    if args.n_train:
        cfg["n_train"] = args.n_train
    if args.per_step:
        times = child(per_step, dict(cfg, per_step=args.per_step))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratios = [a / b for a, b in zip(times["minis2s"], times["torch"])]
        print(f"config {args.config} ({'bucketed' if args.bucket else 'unbucketed'}, "
              f"{args.threads} threads), {args.per_step} steps each, alternating: median step "
              f"minis2s {1000 * med['minis2s']:.1f} ms, torch {1000 * med['torch']:.1f} ms, "
              f"ratio of medians {med['minis2s'] / med['torch']:.3f}, median of the per-step "
              f"ratios {statistics.median(ratios):.3f}")
        _write(args.json, config=args.config, cfg=cfg, times=times, median=med)
        return
    if args.lockstep:
        times, losses = lockstep(cfg, args.lockstep, args.chunks, args.pause)
        per_chunk = {k: [sum(c) for c in v] for k, v in times.items()}
        ratios = [a / b for a, b in zip(per_chunk["minis2s"], per_chunk["torch"])]
        total = {k: sum(v) for k, v in per_chunk.items()}
        steps = args.lockstep * args.chunks
        q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
        print(f"config {args.config} ({'bucketed' if args.bucket else 'unbucketed'}, "
              f"{args.threads} threads), {args.chunks} turns of {args.lockstep} steps each, "
              f"two processes: minis2s {1000 * total['minis2s'] / steps:.1f} ms a step, torch "
              f"{1000 * total['torch'] / steps:.1f} ms; ratio of the totals "
              f"{total['minis2s'] / total['torch']:.3f}; per turn: median {q[1]:.3f}, "
              f"quartiles {q[0]:.3f}-{q[2]:.3f}, range {min(ratios):.3f}-{max(ratios):.3f}; "
              f"mean loss minis2s {np.mean(losses['minis2s']):.4f}, torch "
              f"{np.mean(losses['torch']):.4f}")
        _write(args.json, config=args.config, cfg=cfg, chunk=args.lockstep, pause=args.pause,
               times=times, losses=losses, ratios=ratios)
        return
    if args.profile:
        res = child(profile_minis2s, dict(cfg, profile=args.profile))
        print(f"config {args.config} ({'bucketed' if args.bucket else 'unbucketed'}, "
              f"{args.threads} threads), {res['impl']} tier: {res['ms_per_step']:.0f} ms per "
              f"step over {res['steps']} steps; {res['real_share']:.0%} of the target positions "
              f"are real tokens\n{res['stats']}")
        return
    sv, tv, batches = load_data(cfg)
    cfg["V"] = len(tv)
    flops = sum(flops_per_batch(cfg, s, t) for s, t in batches)
    peak = child(matmul_peak_gflops if args.device == "cpu" else gpu_matmul_peak_tflops, cfg)
    if args.device == "cuda":
        peak *= 1000  # GFLOP/s
    oov = ""
    if cfg["model"] == "pointer":
        rows = sum(int((np.asarray(s) >= len(sv)).any(axis=1).sum()) for s, _ in batches)
        copies = sum(int((np.asarray(t) >= len(sv)).sum()) for _, t in batches)
        n_rows = sum(len(s) for s, _ in batches)
        oov = (f"; {rows / n_rows:.0%} of the sources hold an unknown word (extended "
               f"ids), {copies:,} target tokens are such copies")
    print(f"config {args.config}: {cfg}; {len(batches)} batches{oov}; model GEMM work "
          f"{flops / 1e9:.1f} GFLOP per epoch; float32 GEMM peak {peak:.1f} GFLOP/s "
          f"({args.device})")
    runs = []
    for _ in range(args.repeats):
        for fn in (run_minis2s, run_torch):
            res = child(fn, cfg)
            res["gflops"] = flops / res["time"] / 1e9
            runs.append(res)
            print(f"  {res['framework']:8s} epoch {res['time']:7.2f} s  "
                  f"{res['tokens'] / res['time']:9,.0f} tok/s  loss {res['loss']:.4f} "
                  f"(last 20 {res['last_loss']:.4f})  peak RSS {res['peak_rss']:7.1f} MB "
                  f"(+{res['train_rss_growth']:.1f} in training)  "
                  f"{res['gflops']:.1f} GFLOP/s ({100 * res['gflops'] / peak:.0f}% of peak)"
                  + (f"  GPU memory {res['gpu_mb']:.0f} MB" if res["gpu_mb"] is not None else ""),
                  flush=True)
    med = {f: statistics.median(r["time"] for r in runs if r["framework"] == f)
           for f in ("minis2s", "torch")}
    ratio = med["minis2s"] / med["torch"]
    print(f"median epoch: minis2s {med['minis2s']:.2f} s, torch {med['torch']:.2f} s, "
          f"ratio minis2s/torch = {ratio:.3f}")
    if args.json:
        import torch

        info = dict(config=args.config, cfg=cfg, runs=runs, median=med, ratio=ratio,
                    gemm_peak_gflops=peak, machine=platform.platform(),
                    cpus=os.cpu_count(), numpy=np.__version__, torch=torch.__version__,
                    date=time.strftime("%Y-%m-%d"))
        if args.device == "cuda":
            from minis2s import backend

            info.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                        cudnn=torch.backends.cudnn.version(),
                        cupy=backend.use("cupy").__version__)
        with open(args.json, "w") as f:
            json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
