"""The training and decoding tools on real sentences: what each does on the Tatoeba task, and the
recommended recipe against today's plain setting, with the same epoch budget.

    python benchmarks/recipe.py --epochs 3 --jobs 2 --json recipe.json
    python benchmarks/recipe.py --epochs 3 --variants plain,recipe

The task is ``minis2s.data.tasks.tatoeba`` (French → English, fixed split: 68,408 training and
3,840 test pairs; word level, lowercased; vocabularies of the words seen at least twice).
Every variant trains ``AttentionSeq2Seq(attention="dot")``, D = H = 256, B = 128, Adam, clipping
at 5, float32, through ``minis2s.train.fit`` on the same bucketed batches (seed 0), and is scored
after every epoch on the test split: corpus BLEU and chrF (sacrebleu) of the detokenised greedy
outputs against the raw references. After the last epoch each model is also decoded by beam
search (``--beam-size``, 5) with and without GNMT's length penalty α (``--length-penalty``, 1.0).

The variants (``VARIANTS``) change one thing each against ``plain`` (today's setting: constant
learning rate 1e-3, no dropout, no label smoothing, teacher forcing throughout, greedy), and
``recipe`` combines the ones that help (the CLI's default for ``--task tatoeba``). The
``long-*`` and ``small-*`` variants set their own regime (``LONG``, ``SMALL``: a training subset,
more epochs, validation after each) for the tools that act only once the model overfits:
reduce-on-plateau, early stopping (the test BLEU of its best.ckpt is reported too) and weight
decay. ``sampling`` also decodes the plain model by sampling (``SAMPLINGS``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BASE = dict(embed_dim=256, hidden_dim=256, batch_size=128, lr=1e-3, clip=5.0, max_len=30,
            min_freq=2, dropout=0.0, label_smoothing=0.0, decay="constant", warmup_steps=0,
            tf_min=None, weight_decay=0.0, plateau=None, early_stop=None, n_val=None,
            best_metric=None, sampling=False, decoding_options=False)
#: the regime of the long runs: a 20,000-pair subset for 10 epochs, validated after every epoch
#: on 1,000 validation pairs, where the plain model overfits within the budget (on the full
#: set it is still improving after 3 epochs, so stopping and plateaus never act there)
LONG = dict(n_train=20000, epochs=10, n_val=1000)
#: a smaller regime still, where the validation loss turns within the budget: 5,000 pairs for
#: 15 epochs, validated on 500 pairs (test BLEU on the first --n-test pairs)
SMALL = dict(n_train=5000, epochs=15, n_val=500)
VARIANTS = {
    "plain": {},
    "dropout": dict(dropout=0.2),
    "label-smoothing": dict(label_smoothing=0.1),
    "schedule": dict(lr=2e-3, decay="linear", warmup_steps=200),
    "scheduled-sampling": dict(tf_min=0.75),  # linear from 1 to 0.75 over the budget
    "recipe": dict(dropout=0.2, label_smoothing=0.1, lr=2e-3, decay="linear", warmup_steps=200),
    "schedule-ls": dict(label_smoothing=0.1, lr=2e-3, decay="linear", warmup_steps=200),
    # AdamW's decoupled decay; biases and embeddings are not decayed (the default)
    "weight-decay": dict(weight_decay=0.1),
    # plain training, then also decoded by sampling (temperature, top-k, top-p; seed 0)
    "sampling": dict(sampling=True),
    # the long regime (LONG): plain with validation BLEU, reduce-on-plateau on the validation
    # loss, early stopping on the validation BLEU (the test BLEU of its best.ckpt is reported),
    # and weight decay
    # the other decay shapes of the schedule, each with the same peak and warmup; they also
    # decode with each of beam search's options (DECODING_OPTIONS) and an n-best oracle
    "schedule-cosine": dict(lr=2e-3, decay="cosine", warmup_steps=200, decoding_options=True),
    "schedule-inverse-sqrt": dict(lr=2e-3, decay="inverse-sqrt", warmup_steps=200,
                                  decoding_options=True),
    "long-plain": dict(LONG, best_metric="bleu"),
    "long-plateau": dict(LONG, plateau=dict(metric="loss", factor=0.5, patience=0)),
    "long-early-stop": dict(LONG, early_stop=dict(metric="bleu", patience=2)),
    "long-early-stop-loss": dict(LONG, early_stop=dict(metric="loss", patience=1)),
    "small-plain": dict(SMALL, best_metric="loss"),
    "small-plateau": dict(SMALL, plateau=dict(metric="loss", factor=0.5, patience=0)),
    "small-early-stop": dict(SMALL, early_stop=dict(metric="loss", patience=1)),
    "small-early-stop-bleu": dict(SMALL, early_stop=dict(metric="bleu", patience=2)),
    "small-weight-decay": dict(SMALL, best_metric="loss", weight_decay=0.1),
    "long-weight-decay": dict(LONG, best_metric="bleu", weight_decay=0.1),
}
#: beam search's options, each added to beam 5 with alpha 1 (variants with decoding_options)
DECODING_OPTIONS = (("coverage penalty 0.2", dict(coverage_penalty=0.2)),
                    ("coverage penalty 1", dict(coverage_penalty=1.0)),
                    ("min length 3", dict(min_len=3)),
                    ("no repeated 2-gram", dict(no_repeat_ngram=2)),
                    ("no repeated 3-gram", dict(no_repeat_ngram=3)))
#: the decodings of the variant "sampling" after its last epoch: (name, options)
SAMPLINGS = (("sample, T 1", dict(temperature=1.0)), ("sample, T 0.5", dict(temperature=0.5)),
             ("sample, top-k 10", dict(top_k=10)), ("sample, top-p 0.9", dict(top_p=0.9)),
             ("sample, T 0.5, top-p 0.9", dict(temperature=0.5, top_p=0.9)))


def run(name, cfg, q):
    try:
        _run(name, cfg, q)
    except BaseException as e:  # the parent waits for one message per run
        q.put(dict(variant=name, cfg=cfg, rows=[], error=f"{type(e).__name__}: {e}"))
        raise


def _run(name, cfg, q):
    os.environ["OPENBLAS_NUM_THREADS"] = str(cfg["threads"])
    os.environ["MINIS2S_THREADS"] = str(cfg["threads"])
    import logging

    import minis2s
    from minis2s import optim
    from minis2s.data import make_batches
    from minis2s.data.tasks import tatoeba
    from minis2s.train import fit

    logging.getLogger("minis2s.data").setLevel(logging.ERROR)
    data = tatoeba.load_splits(level="word", min_freq=cfg["min_freq"], n_train=cfg["n_train"],
                               n_val=cfg["n_val"])
    train_ids = data.encode(data.train)
    validate = cfg["plateau"] or cfg["early_stop"] or cfg["best_metric"]
    val_ids = data.encode(data.val) if validate else None
    test = data.test[:cfg["n_test"]]  # None: all of it
    sources = [s for s, _ in test]
    refs = [t for _, t in test]
    model = minis2s.AttentionSeq2Seq(len(data.src_vocab), len(data.tgt_vocab), cfg["embed_dim"],
                                     cfg["hidden_dim"], attention="dot", seed=0,
                                     dropout=cfg["dropout"],
                                     label_smoothing=cfg["label_smoothing"])
    opt = optim.Adam(model.params, model.grads, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    steps = cfg["epochs"] * len(make_batches(train_ids, cfg["batch_size"], shuffle=True, seed=0))
    schedule = None
    if cfg["decay"] != "constant" or cfg["warmup_steps"]:
        schedule = optim.WarmupSchedule(opt, cfg["decay"], warmup_steps=cfg["warmup_steps"],
                                        total_steps=steps)
    if cfg["plateau"]:
        schedule = optim.ReduceLROnPlateau(opt, **cfg["plateau"])
    stopper = optim.EarlyStopping(**cfg["early_stop"]) if cfg["early_stop"] else None
    out_dir = tempfile.mkdtemp(prefix=f"recipe-{name}-") if stopper else None
    tf = None
    if cfg["tf_min"] is not None:
        tf = optim.TeacherForcing("linear", k=1.0, c=(1 - cfg["tf_min"]) / steps,
                                  min_ratio=cfg["tf_min"], seed=0)
    history, train_time, rows = None, 0.0, []
    for epoch in range(cfg["epochs"]):
        t0 = time.perf_counter()
        res = fit(model, opt, train_ids, epochs=epoch + 1, start_epoch=epoch, history=history,
                  batch_size=cfg["batch_size"], clip=cfg["clip"], seed=0, progress=False,
                  log=None, schedule=schedule, teacher_forcing=tf, val_pairs=val_ids,
                  early_stopping=stopper, best_metric=cfg["best_metric"], out_dir=out_dir)
        history = res.history
        train_time += time.perf_counter() - t0
        hyps = data.translate(model, sources, max_len=cfg["max_len"], beam_size=1)
        s = data.score(hyps, refs)
        row = dict(epoch=epoch + 1, decoding="greedy", bleu=s["bleu"], chrf=s["chrf"],
                   train_loss=float(np.mean(history["step_loss"][-200:])),
                   train_time=train_time, signature=s.get("bleu_signature"),
                   lr=history["lr"][-1])
        for key in ("val_loss", "val_bleu", "val_exact"):
            if history.get(key):
                row[key] = float(history[key][-1])
        rows.append(row)
        print(f"{name:18s} epoch {epoch + 1}: greedy BLEU {s['bleu']:.2f} chrF {s['chrf']:.2f}"
              f"  loss {row['train_loss']:.4f}  ({train_time:.0f} s of training)", flush=True)
        if res.stopped_early:  # after scoring the epoch it stopped after
            print(f"{name:18s} early stopping after epoch {epoch + 1}: best val "
                  f"{stopper.metric} {stopper.best:.4g} at epoch {stopper.best_epoch}", flush=True)
            break
    last = rows[-1]["epoch"]
    if stopper is not None:  # the model early stopping keeps: best.ckpt, scored on test
        from minis2s.checkpoint import load

        best = load(res.checkpoint)
        s = data.score(data.translate(best, sources, max_len=cfg["max_len"], beam_size=1), refs)
        rows.append(dict(epoch=last, decoding=f"greedy, best.ckpt (epoch {stopper.best_epoch})",
                         bleu=s["bleu"], chrf=s["chrf"], best_epoch=stopper.best_epoch,
                         stopped_early=res.stopped_early))
        print(f"{name:18s} best.ckpt (epoch {stopper.best_epoch}): greedy BLEU {s['bleu']:.2f}",
              flush=True)
        shutil.rmtree(out_dir, ignore_errors=True)
    if cfg["sampling"]:
        for how, options in SAMPLINGS:
            t0 = time.perf_counter()
            hyps = data.translate(model, sources, max_len=cfg["max_len"], sample=True, seed=0,
                                  **options)
            s = data.score(hyps, refs)
            rows.append(dict(epoch=last, decoding=how, bleu=s["bleu"], chrf=s["chrf"],
                             decode_time=time.perf_counter() - t0))
            print(f"{name:18s} {how}: BLEU {s['bleu']:.2f} chrF {s['chrf']:.2f}", flush=True)
    if cfg["decoding_options"]:
        for how, options in DECODING_OPTIONS:
            hyps = data.translate(model, sources, max_len=cfg["max_len"],
                                  beam_size=cfg["beam_size"],
                                  length_penalty=cfg["length_penalty"], **options)
            s = data.score(hyps, refs)
            rows.append(dict(epoch=last, decoding=f"beam, alpha, {how}", bleu=s["bleu"],
                             chrf=s["chrf"]))
            print(f"{name:18s} beam, alpha, {how}: BLEU {s['bleu']:.2f}", flush=True)
        rows.extend(dict(r, epoch=last) for r in n_best_oracle(data, model, sources, refs, cfg))
    for alpha in (None, cfg["length_penalty"]):
        t0 = time.perf_counter()
        hyps = data.translate(model, sources, max_len=cfg["max_len"], beam_size=cfg["beam_size"],
                              length_penalty=alpha)
        s = data.score(hyps, refs)
        how = f"beam {cfg['beam_size']}, " + ("log P / |Y|" if alpha is None else f"alpha {alpha}")
        rows.append(dict(epoch=last, decoding=how, bleu=s["bleu"], chrf=s["chrf"],
                         decode_time=time.perf_counter() - t0))
        print(f"{name:18s} {how}: BLEU {s['bleu']:.2f} chrF {s['chrf']:.2f}", flush=True)
    q.put(dict(variant=name, cfg=cfg, rows=rows))


def n_best_oracle(data, model, sources, refs, cfg, k=None):
    """The k-best lists of beam search (k = the beam size, alpha = --length-penalty): the corpus
    BLEU of their first entries, and of the entry per sentence with the best sentence BLEU
    against the reference (the oracle: how much better a translation the list holds)."""
    import sacrebleu

    from minis2s.data.translate import encode_sources

    k = k or cfg["beam_size"]
    codec = data.codec
    firsts, oracle = [], []
    for i in range(0, len(sources), 256):
        texts = [codec.src_tokenizer.prepare(t) for t in sources[i:i + 256]]
        src, oovs = encode_sources(model, texts, codec.src_vocab)
        lists = model.generate(src, max_len=cfg["max_len"], beam_size=cfg["beam_size"],
                               length_penalty=cfg["length_penalty"], n_best=k)
        for hyps, row_oovs, ref in zip(lists, oovs, refs[i:i + 256]):
            outs = [codec.tgt_tokenizer.restore(codec.tgt_vocab.decode(h.ids, oovs=row_oovs))
                    for h in hyps]
            firsts.append(outs[0])
            oracle.append(max(outs, key=lambda o: sacrebleu.sentence_bleu(o, [ref]).score))
    rows = []
    for how, hyps in ((f"{k}-best, first", firsts), (f"{k}-best, oracle", oracle)):
        s = data.score(hyps, refs)
        rows.append(dict(epoch=None, decoding=how, bleu=s["bleu"], chrf=s["chrf"]))
        print(f"{how}: BLEU {s['bleu']:.2f}", flush=True)
    return rows

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--threads", type=int, default=1, help="threads per run")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--length-penalty", type=float, default=1.0)
    ap.add_argument("--n-train", type=int, default=None, help="a subset (for a quick try)")
    ap.add_argument("--n-test", type=int, default=None, help="the first N test pairs only")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    from _common import run_in_processes

    # A spawned child imports this module, and so NumPy and its BLAS, before run() starts: the
    # thread counts must already be in the environment it inherits.
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MINIS2S_THREADS"] = str(args.threads)

    jobs = []
    for name in names:
        cfg = dict(BASE, epochs=args.epochs, n_train=args.n_train, threads=args.threads,
                   beam_size=args.beam_size, length_penalty=args.length_penalty,
                   n_test=args.n_test)
        cfg.update(VARIANTS[name])  # the long and small variants set their own epochs and subset
        jobs.append((name, cfg))
    results = run_in_processes(run, jobs, args.jobs)
    print("\nTest BLEU after the last epoch (greedy; then the other decodings):")
    for r in results:
        if r.get("error"):
            print(f"  {r['variant']:18s} failed: {r['error']}")
            continue
        last = r["rows"][-1]["epoch"]
        cells = [f"{row['decoding']} {row['bleu']:.2f}" for row in r["rows"]
                 if row["epoch"] == last]
        print(f"  {r['variant']:18s} " + " | ".join(cells))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(results=results, machine=platform.platform(), cpus=os.cpu_count(),
                           date=time.strftime("%Y-%m-%d")), f, indent=1)


if __name__ == "__main__":
    main()
