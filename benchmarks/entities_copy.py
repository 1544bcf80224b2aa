"""Copying unseen names: Seq2Seq, attention and the pointer-generator (with and without coverage)
on the ``entities`` task.

    python benchmarks/entities_copy.py                                   # the default run
    python benchmarks/entities_copy.py --n-train 400 --n-test 40 --epochs 1 --hidden-dim 32
    python benchmarks/entities_copy.py --models pointer,pointer+coverage --json runs/ent.json

The task (:mod:`minis2s.data.tasks.entities`) turns a sentence into a record of the names in it,
``"in lyon , jan van gorp signed a contract with schmidt gmbh on friday ."`` ->
``"person jan van gorp org schmidt gmbh city lyon"``. The names of the test split never occur in
training, so a model can only get them right by copying.

All models share one word vocabulary built on the training sources and targets (words seen at
least ``--min-freq`` times), a bidirectional GRU encoder, D, H, batch size, Adam and gradient
clipping. Seq2Seq and AttentionSeq2Seq (if registered) see the test names as UNK and cannot
produce them; the pointer-generator gets each row's out-of-vocabulary words as extended ids
V + k and can copy them.

``pointer+coverage`` is, by default, the paper's recipe (See et al. 2017, §7): the
pointer-generator's checkpoint after ``--epochs`` epochs (model and Adam state) is loaded,
coverage is switched on (``set_coverage(True)``) and it trains ``--coverage-epochs`` more
epochs with the coverage loss. ``--coverage-mode scratch`` instead trains a pointer-generator
with coverage on from the start for ``--epochs`` epochs.

Reported on the test split (decoded with ``--beam-size``, default 4): exact match of the whole
record, ROUGE-1/2/L F1 (``minis2s.metrics.rouge``, needs rouge-score), the share of the test
names that contain a word never seen in training and that the output reproduces exactly in
their field, the repetition rate (repeated bigrams per output, ``minis2s.metrics
.repetition_rate``), the mean p_gen over generated tokens (pointer-generator only), and the
training time. ``--json PATH`` writes the configuration and the results.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np

import minis2s
from minis2s import backend, optim
from minis2s.checkpoint import load_checkpoint, save_checkpoint
from minis2s.data import Vocab, encode_pairs, make_splits, pad_sequences
from minis2s.data.tasks.entities import FIELDS
from minis2s.metrics import exact_match, repetition_rate, rouge
from minis2s.models import MODELS
from minis2s.train import fit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import add_common_args, write_json  # noqa: E402

ALL_MODELS = ("seq2seq", "attention", "pointer", "pointer+coverage")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(ALL_MODELS),
                   help=f"comma-separated subset of {', '.join(ALL_MODELS)} (default: all)")
    p.add_argument("--n-train", type=int, default=20000, help="training examples (default 20000)")
    p.add_argument("--n-test", type=int, default=1000, help="test examples (default 1000)")
    p.add_argument("--min-freq", type=int, default=1,
                   help="vocabulary: words seen at least this often in training (default 1)")
    p.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    p.add_argument("--coverage-mode", choices=("phase", "scratch"), default="phase",
                   help="phase: coverage switched on for extra epochs from the pointer's "
                        "checkpoint (the paper); scratch: coverage on from the start")
    p.add_argument("--coverage-epochs", type=int, default=1,
                   help="epochs of the coverage phase (default 1)")
    p.add_argument("--cov-loss-weight", type=float, default=1.0, help="λ (default 1)")
    p.add_argument("--attention", default="additive", help="AttentionSeq2Seq score "
                   "(default additive, the pointer-generator's)")
    p.add_argument("--embed-dim", type=int, default=64, help="D (default 64)")
    p.add_argument("--hidden-dim", type=int, default=128, help="H (default 128)")
    p.add_argument("--batch-size", type=int, default=64, help="B (default 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    p.add_argument("--beam-size", type=int, default=4, help="decoding beam (default 4; 1 greedy)")
    p.add_argument("--max-len", type=int, default=25, help="longest output (default 25)")
    add_common_args(p)
    args = p.parse_args(argv)
    for name in ("n_train", "n_test", "min_freq", "epochs", "coverage_epochs", "embed_dim",
                 "hidden_dim", "batch_size", "beam_size", "max_len"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0; got {getattr(args, name)}")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in ALL_MODELS]
    if unknown or not args.models:
        p.error(f"--models: unknown {unknown}; choose from {', '.join(ALL_MODELS)}")
    return args


# --- scoring ----------------------------------------------------------------------------------
def fields(text):
    """'person a b org c city d' -> [('person', 'a b'), ('org', 'c'), ('city', 'd')]."""
    out, field, words = [], None, []
    for w in text.split():
        if w in FIELDS:
            if field is not None:
                out.append((field, " ".join(words)))
            field, words = w, []
        else:
            words.append(w)
    if field is not None:
        out.append((field, " ".join(words)))
    return out


def score(hyps, refs, train_words, p_gens=None):
    """The metrics of one model: hyps and refs are strings."""
    unseen = reproduced = 0
    for h, r in zip(hyps, refs):
        got = fields(h)
        for item in fields(r):
            if any(w not in train_words for w in item[1].split()):
                unseen += 1
                reproduced += item in got
    h_tok, r_tok = [h.split() for h in hyps], [r.split() for r in refs]
    res = {"exact_match": exact_match(h_tok, r_tok)}
    res.update({k.replace("rouge", "rouge_"): v for k, v in rouge(hyps, refs).items()})
    res["unseen_names"] = unseen
    res["unseen_names_reproduced"] = reproduced / max(unseen, 1)
    res["repetition_rate"] = repetition_rate(h_tok)
    res["mean_p_gen"] = None if p_gens is None else float(np.mean(np.concatenate(p_gens)))
    return res


def decode_test(model, test, vocab, args):
    """Hypothesis strings (and, for a pointer-generator, the p_gen of each generated token)."""
    pointer = isinstance(model, minis2s.PointerGenerator)
    hyps, p_gens = [], ([] if pointer else None)
    for i in range(0, len(test), 256):
        texts = [s for s, _ in test[i:i + 256]]
        if pointer:
            enc = [vocab.encode_extended(t) for t in texts]
            src = pad_sequences([ids for ids, _ in enc])
            ids, details = model.generate(src, max_len=args.max_len, beam_size=args.beam_size,
                                          trace=True)
            hyps += [vocab.decode(row, oovs=o) for row, (_, o) in zip(ids, enc)]
            p_gens += [d["p_gen"][:len(row)] for row, d in zip(ids, details) if len(row)]
        else:
            src = pad_sequences([vocab.encode(t) for t in texts])
            ids = model.generate(src, max_len=args.max_len, beam_size=args.beam_size)
            hyps += [vocab.decode(row) for row in ids]
    return hyps, (p_gens or None) if pointer else None


# --- training ---------------------------------------------------------------------------------
def build(name, V, args, coverage=False):
    kw = dict(embed_dim=args.embed_dim, hidden_dim=args.hidden_dim, bidirectional=True,
              dtype=args.dtype, seed=args.seed)
    if name == "seq2seq":
        return minis2s.Seq2Seq(V, V, **kw)
    if name == "attention":
        return MODELS["AttentionSeq2Seq"](V, V, attention=args.attention, **kw)
    return minis2s.PointerGenerator(V, coverage=coverage, cov_loss_weight=args.cov_loss_weight,
                                    **kw)


def train(model, opt, examples, args, epochs, start_epoch=0):
    t0 = time.perf_counter()
    res = fit(model, opt, examples, None, epochs=epochs, start_epoch=start_epoch,
              batch_size=args.batch_size, clip=args.clip, seed=args.seed,
              progress=args.progress, log=None)
    losses = res.history["step_loss"]
    tail = losses[-max(1, len(losses) // max(epochs - start_epoch, 1)):]
    return time.perf_counter() - t0, float(np.mean(tail))


def main(argv=None):
    args = parse_args(argv)
    backend.use(args.backend)
    if "attention" in args.models and "AttentionSeq2Seq" not in MODELS:
        print("AttentionSeq2Seq is not registered: skipping 'attention'")
        args.models = [m for m in args.models if m != "attention"]
    train_pairs, _, test = make_splits("entities", (args.n_train, 0, args.n_test),
                                       seed=args.seed)
    vocab = Vocab.build([s for s, _ in train_pairs] + [t for _, t in train_pairs], level="word",
                        min_freq=args.min_freq)
    train_words = {w for s, t in train_pairs for w in (s + " " + t).split()}
    refs = [t for _, t in test]
    plain = encode_pairs(train_pairs, vocab, vocab)
    extended = encode_pairs(train_pairs, vocab, vocab, extend_oov=True)
    print(f"entities: {len(train_pairs):,} training and {len(test):,} test examples; vocabulary "
          f"{len(vocab):,} words (min_freq {args.min_freq}); backend {backend.name}; python "
          f"{platform.python_version()} on {platform.machine()} ({os.cpu_count()} CPUs)",
          flush=True)

    results = {}
    pg_checkpoint = None
    with tempfile.TemporaryDirectory(prefix="entities-copy-") as tmp:
        for name in args.models:
            t_eval = None
            if name == "pointer+coverage" and args.coverage_mode == "phase":
                if pg_checkpoint is None:  # train the pointer-generator phase first
                    pg = build("pointer", len(vocab), args)
                    opt = optim.Adam(pg.params, pg.grads, lr=args.lr)
                    train(pg, opt, extended, args, args.epochs)
                    pg_checkpoint = os.path.join(tmp, "pointer.ckpt")
                    save_checkpoint(pg_checkpoint, pg, optimizer=opt)
                ck = load_checkpoint(pg_checkpoint)
                model = ck.model.set_coverage(True, cov_loss_weight=args.cov_loss_weight)
                opt = optim.Adam(model.params, model.grads, lr=args.lr)
                ck.restore_optimizer(opt)
                secs, loss = train(model, opt, extended, args,
                                   args.epochs + args.coverage_epochs, start_epoch=args.epochs)
                what = (f"pointer checkpoint after {args.epochs} epochs + "
                        f"{args.coverage_epochs} epochs with coverage")
            else:
                cov = name == "pointer+coverage"
                model = build("pointer" if cov else name, len(vocab), args, coverage=cov)
                opt = optim.Adam(model.params, model.grads, lr=args.lr)
                data = extended if name.startswith("pointer") else plain
                secs, loss = train(model, opt, data, args, args.epochs)
                what = f"{args.epochs} epochs" + (" with coverage from the start" if cov else "")
                if name == "pointer":
                    pg_checkpoint = os.path.join(tmp, "pointer.ckpt")
                    save_checkpoint(pg_checkpoint, model, optimizer=opt)
            t0 = time.perf_counter()
            hyps, p_gens = decode_test(model, test, vocab, args)
            t_eval = time.perf_counter() - t0
            res = score(hyps, refs, train_words, p_gens)
            res.update(training=what, train_time_s=secs, eval_time_s=t_eval, final_loss=loss,
                       num_params=model.num_params(), examples=list(zip(refs[:3], hyps[:3])))
            results[name] = res
            pg = "" if res["mean_p_gen"] is None else f", mean p_gen {res['mean_p_gen']:.3f}"
            print(f"{name:17s} exact {res['exact_match']:.3f}  R1/R2/RL {res['rouge_1']:.3f}/"
                  f"{res['rouge_2']:.3f}/{res['rouge_L']:.3f}  unseen names "
                  f"{res['unseen_names_reproduced']:.3f} of {res['unseen_names']}  repetition "
                  f"{res['repetition_rate']:.3f}{pg}  ({what}: {secs:.1f} s, loss {loss:.3f}; "
                  f"decode {t_eval:.1f} s)", flush=True)

    for name, res in results.items():
        ref, hyp = res["examples"][0]
        print(f"  {name}: {hyp!r} (reference {ref!r})")
    if args.json:
        write_json(args.json, config=vars(args), vocab_size=len(vocab), results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
