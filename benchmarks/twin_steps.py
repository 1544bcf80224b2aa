"""Step by step against the twin on the shipped Tatoeba pairs: does minis2s compute the same
training step as PyTorch, not only at initialisation but along a real training run?

    python benchmarks/twin_steps.py --seed 8 --steps 1605 --json twin_steps.json

The configuration is benchmarks/translation.py's (AttentionSeq2Seq, dot, D = H = 256, B = 128,
Adam 1e-3, clipping at 5, float32, bucketed batches in the order of ``--seeds S``). The twin
(``torch_reference.TorchSeq2Seq``) trains from PyTorch's initialisation (``torch.manual_seed``)
and sets the trajectory. Two minis2s models go beside it, both started from the twin's weights:

* **the probe**, at each checkpoint step k: it takes the twin's parameters *and* Adam's state
  (m, v, t), takes the same step on the same batch with ``minis2s.train.train_step``, and the
  two steps are compared: the loss, the gradient norm, and for every parameter the relative
  difference ‖a − b‖ / ‖b‖ of the gradients (after clipping) and of the updates Δθ. Each
  side's float32 gradients are also compared with the exact ones (the twin's in float64, at
  the same weights), which tells whose rounding a difference is; so are the two gradient
  norms (``clip_grad_norm_`` sums the squares in float32). At the
  ``--decode`` steps, the probe and the twin (``TorchGreedy``) also decode the 3,840 test
  sources greedily at the same weights, and the outputs and BLEU are compared;
* **the free run**: minis2s trained on its own on the same batches. Its loss and its relative
  distance from the twin's parameters are logged; they part through float32 rounding alone
  if the steps are the same, and it is scored with BLEU at the end beside the twin. At the
  checkpoints a fresh model at the free run's weights takes the same batch: what the free run's
  model keeps from step to step (buffers, caches) must not change its gradients.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def rel(a, b):
    """‖a − b‖ / ‖b‖ in float64."""
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm((a - b).ravel()) / max(np.linalg.norm(b.ravel()), 1e-30))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1605, help="1,605 = 3 epochs of 535 batches")
    ap.add_argument("--checks", default="0,1,50,200,535,1070,1600")
    ap.add_argument("--decode", default="535,1600")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # before NumPy loads OpenBLAS
    import numpy as np
    import torch
    from torch_reference import TorchGreedy, TorchSeq2Seq, copy_to_minis2s
    from translation import CONFIG, batch_order, load

    import minis2s
    from minis2s import optim
    from minis2s.data import make_batches
    from minis2s.train import train_step

    torch.set_num_threads(args.threads)
    checks = {int(k) for k in args.checks.split(",")}
    decode = {int(k) for k in args.decode.split(",")}
    data = load(dict(CONFIG, n_train=None))
    train_ids = data.encode(data.train)
    sources, refs = [s for s, _ in data.test], [t for _, t in data.test]
    V_src, V_tgt, D, H = len(data.src_vocab), len(data.tgt_vocab), CONFIG["embed_dim"], \
        CONFIG["hidden_dim"]
    lr, clip = CONFIG["lr"], CONFIG["clip"]

    def new_model():
        return minis2s.AttentionSeq2Seq(V_src, V_tgt, D, H, attention="dot", seed=args.seed)

    torch.manual_seed(args.seed)
    twin = TorchSeq2Seq(V_src, V_tgt, D, H, attention="dot")
    opt_t = torch.optim.Adam(twin.parameters(), lr=lr)
    free, probe, fresh = new_model(), new_model(), new_model()
    copy_to_minis2s(twin, free)
    opt_f = optim.Adam(free.params, free.grads, lr=lr)
    names = list(twin.minis2s_state())

    def twin_state(slot=None):
        """The twin's parameters (slot None) or Adam's slot, as copies in minis2s layouts."""
        if slot is None:
            return {n: v.copy() for n, v in twin.minis2s_state().items()}
        shadow = copy.deepcopy(twin)
        for p_s, p in zip(shadow.parameters(), twin.parameters()):
            p_s.data = opt_t.state[p][slot].clone()
        return shadow.minis2s_state()

    def float64_grads(src, tgt, norm):
        """The twin's gradients at its current weights in float64, clipped as in float32 (by
        the float32 step's norm): the exact values both float32 steps approximate."""
        t64 = copy.deepcopy(twin).double()
        t64.zero_grad(set_to_none=True)
        t64(src, tgt).backward()
        grads = t64.minis2s_state(grad=True)
        exact_norm = float(np.sqrt(sum(np.vdot(g, g) for g in grads.values())))
        scale = clip / (norm + 1e-6) if norm > clip else 1.0
        return exact_norm, {n: g * scale for n, g in grads.items()}

    def bleu(model):
        hyps = data.translate(model, sources, max_len=CONFIG["max_len"], beam_size=1)
        return hyps, data.score(hyps, refs)["bleu"]

    batches, epoch = [], 0
    while len(batches) < args.steps:  # the order of translation.py --seeds S
        batches += list(make_batches(train_ids, CONFIG["batch_size"], shuffle=True,
                                     seed=batch_order(args.seed, epoch), bucket=True))
        epoch += 1
    log = dict(seed=args.seed, threads=args.threads, steps=[], checks=[], decode=[])
    t0 = time.perf_counter()
    for k, b in enumerate(batches[:args.steps]):
        src, tgt = torch.from_numpy(b.src).long(), torch.from_numpy(b.tgt).long()
        if k in checks:  # the probe takes the twin's state before the step
            copy_to_minis2s(twin, probe)
            opt_p = optim.Adam(probe.params, probe.grads, lr=lr)
            if opt_t.state:
                m, v = twin_state("exp_avg"), twin_state("exp_avg_sq")
                for n in names:
                    opt_p._slot("m", n)[...] = m[n]
                    opt_p._slot("v", n)[...] = v[n]
                opt_p.t = int(next(iter(opt_t.state.values()))["step"])
            before = twin_state()
        opt_t.zero_grad(set_to_none=True)
        loss_t = twin(src, tgt)
        loss_t.backward()
        norm_t = float(torch.nn.utils.clip_grad_norm_(twin.parameters(), clip))
        if k in checks:
            grads_t = {n: g.copy() for n, g in twin.minis2s_state(grad=True).items()}
            norm_64, exact = float64_grads(src, tgt, norm_t)
        opt_t.step()
        if k in checks:  # a fresh model at the free run's weights, for the same batch
            for n in names:
                fresh.params[n][...] = free.params[n]
            loss_fresh = fresh.forward(b.src, b.tgt)
            fresh.backward()
        loss_f, norm_f = train_step(free, opt_f, b.src, b.tgt, clip)
        rec = dict(step=k, loss_twin=loss_t.item(), loss_free=float(loss_f),
                   norm_twin=norm_t, norm_free=float(norm_f))
        if k in checks:  # train_step clipped free.grads in place; fresh.grads are unclipped
            scale = clip / (norm_f + 1e-6) if norm_f > clip else 1.0
            rec["fresh"] = dict(loss=float(loss_fresh) == float(loss_f), grads=max(
                rel(free.grads[n], np.asarray(fresh.grads[n]) * np.float32(scale))
                for n in names))
            print(f"step {k}: the free run's model against a fresh one at its weights: loss "
                  f"{'identical' if rec['fresh']['loss'] else 'different'}, largest gradient "
                  f"difference {rec['fresh']['grads']:.1e}", flush=True)
        if k % 25 == 0 or k == args.steps - 1:
            after = twin_state()
            rec["distance"] = {n: rel(free.params[n], after[n]) for n in names}
        log["steps"].append(rec)
        if k in checks:
            loss_p, norm_p = train_step(probe, opt_p, b.src, b.tgt, clip)
            after = twin_state()
            c = dict(step=k, loss_twin=loss_t.item(), loss_probe=float(loss_p), norm_twin=norm_t,
                     norm_probe=float(norm_p), norm_float64=norm_64,
                     grad={n: rel(probe.grads[n], grads_t[n]) for n in names},
                     error_twin={n: rel(grads_t[n], exact[n]) for n in names},
                     error_minis2s={n: rel(probe.grads[n], exact[n]) for n in names},
                     update={n: rel(np.asarray(probe.params[n]) - before[n],
                                    after[n] - before[n]) for n in names})
            log["checks"].append(c)
            g, u = (max(c[key].items(), key=lambda x: x[1]) for key in ("grad", "update"))
            print(f"step {k}: loss {c['loss_twin']:.6f} / {c['loss_probe']:.6f}, norm "
                  f"{norm_t:.6f} / {c['norm_probe']:.6f} (float64: {norm_64:.6f}); largest "
                  f"gradient difference "
                  f"{g[1]:.1e} ({g[0]}), largest update difference {u[1]:.1e} ({u[0]})",
                  flush=True)
            et, em = (max(c[key].items(), key=lambda x: x[1])
                      for key in ("error_twin", "error_minis2s"))
            print(f"    largest gradient error against float64: twin {et[1]:.1e} ({et[0]}), "
                  f"minis2s {em[1]:.1e} ({em[0]})", flush=True)
        if k in decode:
            copy_to_minis2s(twin, probe)
            (h_p, b_p), (h_t, b_t) = bleu(probe), bleu(TorchGreedy(twin))
            same = sum(x == y for x, y in zip(h_p, h_t))
            log["decode"].append(dict(step=k, bleu_probe=b_p, bleu_twin=b_t, same=same,
                                      n=len(h_t)))
            print(f"step {k}: at the twin's weights, BLEU {b_t:.2f} (twin) / {b_p:.2f} "
                  f"(minis2s); {same} of {len(h_t)} outputs identical", flush=True)
        if k % 100 == 0:
            w = log["steps"][-100:]
            print(f"step {k} ({time.perf_counter() - t0:.0f} s): mean loss of the last 100 "
                  f"steps, twin {np.mean([r['loss_twin'] for r in w]):.4f}, free "
                  f"{np.mean([r['loss_free'] for r in w]):.4f}; free run's distance (out.W) "
                  f"{rec.get('distance', {}).get('out.W', float('nan')):.2e}", flush=True)
    (_, b_t), (_, b_f) = bleu(TorchGreedy(twin)), bleu(free)
    log["final"] = dict(steps=args.steps, bleu_twin=b_t, bleu_free=b_f,
                        distance=log["steps"][-1]["distance"])
    print(f"after {args.steps} steps: BLEU twin {b_t:.2f}, free minis2s run {b_f:.2f}; "
          f"distance of the free run's out.W {log['final']['distance']['out.W']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(log, f)


if __name__ == "__main__":
    main()
