"""Date normalisation with attention (or the plain Seq2Seq): time per epoch and exact match.

    python benchmarks/dates_attention.py                              # the full run (45,000 dates)
    python benchmarks/dates_attention.py --n-train 3000 --epochs 1    # a quick check
    python benchmarks/dates_attention.py --model seq2seq --json runs/dates_seq2seq.json

The setting of the article's experiment: ``make_splits("dates", (45000, 1000, 5000))``,
character level, D = 16, H = 256, batch 128, Adam, gradient clipping at 5, float32. After every
epoch the model decodes the 5,000 held-out test dates greedily and the script prints the training
time of the epoch (evaluation not included), its mean loss, and the exact-match and token
accuracy on the test dates. ``--json PATH`` writes the configuration and the per-epoch results.

Training uses :func:`minis2s.train.fit` one epoch at a time (the batch order of epoch k depends
only on (seed, k), so this is the same run as one ``fit`` call over all epochs).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import minis2s
from minis2s import backend, optim
from minis2s.data import Vocab, encode_pairs, make_splits, task_info
from minis2s.functional.attention import SCORES
from minis2s.train import evaluate, fit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import add_common_args, write_json  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("seq2seq", "attention"), default="attention")
    p.add_argument("--attention", choices=SCORES, default="dot",
                   help="the attention score (default dot)")
    p.add_argument("--input-feeding", action="store_true",
                   help="Luong input feeding (trains step by step; slower)")
    p.add_argument("--epochs", type=int, default=6, help="epochs (default 6)")
    p.add_argument("--n-train", type=int, default=45000, help="training dates (default 45000)")
    p.add_argument("--n-test", type=int, default=5000, help="held-out test dates (default 5000)")
    p.add_argument("--embed-dim", type=int, default=16, help="D (default 16)")
    p.add_argument("--hidden-dim", type=int, default=256, help="H (default 256)")
    p.add_argument("--batch-size", type=int, default=128, help="B (default 128)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    add_common_args(p)
    args = p.parse_args(argv)
    for name in ("epochs", "n_train", "n_test", "embed_dim", "hidden_dim", "batch_size"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0; got {getattr(args, name)}")
    return args


def build_model(args, src_vocab, tgt_vocab):
    kw = dict(embed_dim=args.embed_dim, hidden_dim=args.hidden_dim, dtype=args.dtype,
              seed=args.seed)
    if args.model == "seq2seq":
        return minis2s.Seq2Seq(len(src_vocab), len(tgt_vocab), **kw)
    return minis2s.AttentionSeq2Seq(len(src_vocab), len(tgt_vocab), attention=args.attention,
                                    input_feeding=args.input_feeding, **kw)


def main(argv=None):
    args = parse_args(argv)
    backend.use(args.backend)
    train, _val, test = make_splits("dates", (args.n_train, 1000, args.n_test), seed=args.seed)
    level = task_info("dates").level
    src_vocab = Vocab.build([s for s, _ in train], level=level)
    tgt_vocab = Vocab.build([t for _, t in train], level=level)
    train_ids = encode_pairs(train, src_vocab, tgt_vocab)
    test_ids = encode_pairs(test, src_vocab, tgt_vocab)
    model = build_model(args, src_vocab, tgt_vocab)
    opt = optim.Adam(model.params, model.grads, lr=args.lr)
    print(f"{model!r}: {model.num_params():,} parameters; {len(train_ids):,} training and "
          f"{len(test_ids):,} test dates; backend {backend.name}; python "
          f"{platform.python_version()} on {platform.machine()} ({os.cpu_count()} CPUs)",
          flush=True)

    history, epochs = None, []
    for epoch in range(args.epochs):
        res = fit(model, opt, train_ids, None, epochs=epoch + 1, start_epoch=epoch,
                  history=history, batch_size=args.batch_size, clip=args.clip, seed=args.seed,
                  progress=args.progress, log=None)
        history = res.history
        train_time = history["epoch_time"][-1]
        start, end = (history["epoch_end_step"][-2] if epoch else 0), history["epoch_end_step"][-1]
        losses = history["step_loss"][start:end]
        t0 = time.perf_counter()
        ev = evaluate(model, test_ids)
        eval_time = time.perf_counter() - t0
        row = dict(epoch=epoch + 1, train_time_s=train_time, eval_time_s=eval_time,
                   mean_loss=sum(losses) / max(len(losses), 1),
                   tokens_per_s=history["tokens_per_s"][-1],
                   exact_match=ev["exact_match"], token_accuracy=ev["token_accuracy"])
        epochs.append(row)
        print(f"epoch {epoch + 1}: train {train_time:.1f} s ({row['tokens_per_s']:,.0f} tokens/s), "
              f"loss {row['mean_loss']:.4f}; test exact match {ev['exact_match']:.4f}, token "
              f"accuracy {ev['token_accuracy']:.4f} (eval {eval_time:.1f} s)", flush=True)

    examples = [(s, tgt_vocab.decode(h), t) for (s, t), h in zip(test[:5], ev["hyps"][:5])]
    for s, h, t in examples:
        print(f"  {s!r} -> {h!r} (reference {t!r})")
    if args.json:
        write_json(args.json, config=dict(vars(args), model_repr=repr(model),
                                          num_params=model.num_params()), epochs=epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
