"""The addition task ("16+75" -> "91"): exact match with and without attention, and with the
classic trick of a reversed source string (Sutskever et al., 2014).

    python benchmarks/addition.py [--max-digits 3] [--epochs 8] [--embed-dim 16] [--seed 0]
                                  [--json PATH]

For each of Seq2Seq and AttentionSeq2Seq (dot), with the source as written and reversed
("16+75" -> "57+61"; the target is unchanged), it trains on the same examples
(make_splits("addition", (20000, 1000, 2000)), operands of 1..max_digits digits; sources
disjoint between the splits) with D=16, H=128, B=128, Adam 2e-3, clipping 5, float32, and reports
the exact match and token accuracy on the 2,000 test sums after every epoch. ``--seed`` seeds the
weights and the batch order (the data stay those of seed 0).
"""

from __future__ import annotations

import argparse
import json
import time

import minis2s
from minis2s import optim
from minis2s.data import Vocab, encode_pairs, make_splits
from minis2s.train import evaluate, fit


def run(model_name, reverse, args):
    train, _, test = make_splits("addition", (args.n_train, 1000, args.n_test), seed=0,
                                 max_digits=args.max_digits, reverse_source=reverse)
    sv = Vocab.build([s for s, _ in train])
    tv = Vocab.build([t for _, t in train])
    tr, te = encode_pairs(train, sv, tv), encode_pairs(test, sv, tv)
    cls = minis2s.AttentionSeq2Seq if model_name == "attention" else minis2s.Seq2Seq
    model = cls(len(sv), len(tv), embed_dim=args.embed_dim, hidden_dim=args.hidden_dim,
                seed=args.seed)
    opt = optim.Adam(model.params, model.grads, lr=2e-3)
    history = []
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        fit(model, opt, tr, epochs=epoch + 1, start_epoch=epoch, batch_size=128, clip=5.0,
            seed=args.seed, progress=False, log=None)
        dt = time.perf_counter() - t0
        ev = evaluate(model, te)
        history.append(dict(epoch=epoch + 1, train_time_s=dt, exact_match=ev["exact_match"],
                            token_accuracy=ev["token_accuracy"]))
        print(f"{model_name:9s} reverse_source={reverse!s:5s} epoch {epoch + 1}: "
              f"{dt:5.1f} s, exact match {ev['exact_match']:.4f}, token accuracy "
              f"{ev['token_accuracy']:.4f}", flush=True)
    return dict(model=model_name, reverse_source=reverse, history=history)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-digits", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--embed-dim", type=int, default=16)
    ap.add_argument("--hidden-dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results = [run(m, r, args) for m in ("seq2seq", "attention") for r in (False, True)]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(config=vars(args), results=results), f, indent=1)


if __name__ == "__main__":
    main()
