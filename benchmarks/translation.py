"""French → English on the shipped Tatoeba pairs: minis2s against its PyTorch twin, each with
its own default initialisation, trained alike, scored with BLEU after every epoch.

    python benchmarks/translation.py --epochs 6 --json tatoeba.json
    python benchmarks/translation.py --epochs 1 --frameworks minis2s   # one side only
    python benchmarks/translation.py --epochs 3 --seeds 0,1,2 --jobs 2 --threads 1  # 3 seeds
    python benchmarks/translation.py --frameworks minis2s-torchinit   # minis2s from the twin's
                                                                      # initial weights

The task is ``minis2s.data.tasks.tatoeba`` (fixed split: 68,408 training pairs, 3,840 test
pairs; word level, lowercased, NFC; vocabularies of the tokens seen at least twice in training).
Both frameworks train ``AttentionSeq2Seq(attention="dot")`` (unidirectional encoder,
readout [c; s] → Linear) with D = H = 256, B = 128, Adam (lr 1e-3), gradient clipping at 5,
float32, on identical bucketed batches in identical order (``make_batches(..., seed=epoch)``;
with ``--seeds``, a seed s > 0 seeds both initialisations and the order, 1000 s + epoch).
minis2s starts from its own initialisation (``seed=0``), the twin
(``torch_reference.TorchSeq2Seq``) from PyTorch's defaults (``torch.manual_seed(0)``).

After each epoch both decode the test sources greedily (at most 30 tokens), the outputs are
detokenised by the task's tokeniser, and corpus BLEU and chrF (sacrebleu, case-insensitive, as
the task lowercases) are computed against the raw references. Each framework runs in its own
process, one after the other, with ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import run_in_processes  # noqa: E402

CONFIG = dict(embed_dim=256, hidden_dim=256, batch_size=128, lr=1e-3, clip=5.0, max_len=30,
              min_freq=2)


def load(cfg):
    from minis2s.data.tasks import tatoeba

    data = tatoeba.load_splits(level="word", min_freq=cfg["min_freq"],
                               n_train=cfg.get("n_train"))
    return data


def batch_order(seed, epoch):
    """The shuffling seed of ``epoch``'s batches in a run of ``seed`` (seed 0: as before
    ``--seeds`` existed)."""
    return epoch if seed == 0 else 1000 * seed + epoch


def run(framework, cfg, q):
    os.environ["OPENBLAS_NUM_THREADS"] = str(cfg["threads"])
    from minis2s.data import make_batches

    data = load(cfg)
    train_ids = data.encode(data.train)
    sources = [s for s, _ in data.test]
    refs = [t for _, t in data.test]
    V_src, V_tgt = len(data.src_vocab), len(data.tgt_vocab)
    D, H = cfg["embed_dim"], cfg["hidden_dim"]
    if framework == "torch":
        import torch
        from torch_reference import TorchGreedy, TorchSeq2Seq

        torch.set_num_threads(cfg["threads"])
        torch.manual_seed(cfg["seed"])
        twin = TorchSeq2Seq(V_src, V_tgt, D, H, attention="dot")
        opt = torch.optim.Adam(twin.parameters(), lr=cfg["lr"])
        decoder = TorchGreedy(twin)

        def step(src, tgt):
            opt.zero_grad(set_to_none=True)
            loss = twin(torch.from_numpy(np.asarray(src)).long(),
                        torch.from_numpy(np.asarray(tgt)).long())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), cfg["clip"])
            opt.step()
            return loss.item()
    else:
        import minis2s
        from minis2s import optim
        from minis2s.train import train_step

        model = minis2s.AttentionSeq2Seq(V_src, V_tgt, D, H, attention="dot",
                                         seed=cfg["seed"])
        if framework == "minis2s-torchinit":  # minis2s, from the twin's initial weights
            import torch
            from torch_reference import TorchSeq2Seq, copy_to_minis2s

            torch.manual_seed(cfg["seed"])
            copy_to_minis2s(TorchSeq2Seq(V_src, V_tgt, D, H, attention="dot"), model)
        opt = optim.Adam(model.params, model.grads, lr=cfg["lr"])
        decoder = model

        def step(src, tgt):
            return train_step(model, opt, src, tgt, cfg["clip"])[0]

    history, train_time = [], 0.0
    for epoch in range(cfg["epochs"]):
        losses = []
        t0 = time.perf_counter()
        for b in make_batches(train_ids, cfg["batch_size"], shuffle=True,
                              seed=batch_order(cfg["seed"], epoch), bucket=True):
            losses.append(step(b.src, b.tgt))
        train_time += time.perf_counter() - t0
        hyps = data.translate(decoder, sources, max_len=cfg["max_len"], beam_size=1)
        scores = data.score(hyps, refs)
        history.append(dict(epoch=epoch + 1, train_loss=float(np.mean(losses)),
                            bleu=scores["bleu"], chrf=scores["chrf"],
                            exact=scores["exact_match"], train_time=train_time,
                            signature=scores.get("bleu_signature")))
        print(f"{framework:8s} seed {cfg['seed']} epoch {epoch + 1}: loss "
              f"{np.mean(losses):.4f}  BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
              f"exact {scores['exact_match']:.3f}"
              f"  ({train_time:.0f} s of training)", flush=True)
    examples = list(zip(sources[:8], refs[:8], hyps[:8]))
    q.put(dict(framework=framework, seed=cfg["seed"], history=history, examples=examples,
               sizes=dict(train=len(data.train), test=len(data.test), V_src=V_src,
                          V_tgt=V_tgt)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--frameworks", default="minis2s,torch")
    ap.add_argument("--seeds", default="0",
                    help="comma-separated seeds: each seeds both frameworks' initialisation and "
                         "the batch order (seed 0: the order of the runs before --seeds)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs at a time (each in its own process with --threads threads)")
    ap.add_argument("--n-train", type=int, default=None, help="a subset of the training part")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    jobs = [(fw, dict(CONFIG, epochs=args.epochs, threads=args.threads, n_train=args.n_train,
                      seed=int(seed)))
            for seed in args.seeds.split(",") for fw in args.frameworks.split(",")]
    results = run_in_processes(run, jobs, args.jobs)
    for r in results:
        last = r["history"][-1]
        print(f"{r['framework']} seed {r['seed']}: BLEU after epoch 1 "
              f"{r['history'][0]['bleu']:.2f}, after epoch {last['epoch']} {last['bleu']:.2f}")
    for fw in dict.fromkeys(r["framework"] for r in results):
        runs = [r for r in results if r["framework"] == fw]
        for e in range(args.epochs):
            b = [r["history"][e]["bleu"] for r in runs if len(r["history"]) > e]
            sd = statistics.stdev(b) if len(b) > 1 else 0.0
            print(f"{fw:8s} epoch {e + 1}: mean BLEU {statistics.mean(b):.2f} "
                  f"(sd {sd:.2f}, {len(b)} seeds: {', '.join(f'{x:.2f}' for x in b)})")
    if args.json:
        cfg = dict(CONFIG, epochs=args.epochs, threads=args.threads, n_train=args.n_train,
                   seeds=args.seeds)
        with open(args.json, "w") as f:
            json.dump(dict(cfg=cfg, results=results, machine=platform.platform(),
                           cpus=os.cpu_count(), date=time.strftime("%Y-%m-%d")), f, indent=1)


if __name__ == "__main__":
    main()
