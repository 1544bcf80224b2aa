"""Pointing the unknown words (Gulcehre et al. 2016) on real sentences: how often do source
words that are out of the vocabulary come out in the translation?

    python benchmarks/tatoeba_copy.py --epochs 2 --json copy.json

The Tatoeba task (French → English, word level, lowercased) with ONE vocabulary shared by both
sides whose minimum frequency (``--min-freq``, default 5) leaves rare words (names, numbers,
rare nouns) out. Three models train alike (D = 128, H = 256, bidirectional encoder, additive
attention, B = 64, Adam 1e-3, clipping 5, greedy decoding):

* ``AttentionSeq2Seq(attention="additive")``: an unknown source word reaches it as ``<unk>``,
  and it can only write ``<unk>``;
* ``PointerGenerator`` without coverage, and with coverage (λ = 1, from the start): an unknown
  source word reaches it as an extended id and can be copied.

On the test split, an *OOV source word* is a source token outside the vocabulary that also
occurs in the reference; its *copy rate* is the share of them that occur in the output. BLEU
and chrF (sacrebleu, case-insensitive) are reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def copy_rate(codec, sources, refs, hyps):
    """(copied, total): OOV source tokens that occur in the reference, and how many of them
    occur in the output."""
    vocab, tok = codec.src_vocab, codec.src_tokenizer
    copied = total = 0
    for s, r, h in zip(sources, refs, hyps):
        ref_tokens = set(codec.tgt_tokenizer.tokenize(r))
        out_tokens = set(codec.tgt_tokenizer.tokenize(h))
        for w in tok.tokenize(s):
            if w not in vocab.stoi and w in ref_tokens:
                total += 1
                copied += w in out_tokens
    return copied, total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--min-freq", type=int, default=5)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--models", default="attention,pointer,pointer+coverage")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import minis2s
    from minis2s import optim
    from minis2s.data import make_batches
    from minis2s.data.pipeline import Codec
    from minis2s.data.tasks import tatoeba
    from minis2s.train import train_step

    data = tatoeba.load_splits(level="word", min_freq=args.min_freq, shared=True,
                               n_train=args.n_train)
    ext = data.codec  # extended ids: the pointer-generator's
    plain = Codec(ext.src_tokenizer, ext.tgt_tokenizer, ext.src_vocab, ext.tgt_vocab,
                  extended_ids=False)
    V = len(ext.src_vocab)
    sources, refs = [s for s, _ in data.test], [t for _, t in data.test]
    results = {}
    for name in args.models.split(","):
        codec = plain if name == "attention" else ext
        train_ids = codec.encode(data.train)
        if name == "attention":
            model = minis2s.AttentionSeq2Seq(V, V, 128, 256, bidirectional=True,
                                             attention="additive", seed=0)
        else:
            model = minis2s.PointerGenerator(V, 128, 256, bidirectional=True,
                                             coverage=name.endswith("coverage"), seed=0)
        opt = optim.Adam(model.params, model.grads, lr=1e-3)
        history, t0 = [], time.perf_counter()
        for epoch in range(args.epochs):
            losses = [train_step(model, opt, b.src, b.tgt, 5.0)[0]
                      for b in make_batches(train_ids, 64, shuffle=True, seed=epoch,
                                            bucket=True)]
            hyps = codec.translate(model, sources, max_len=30, beam_size=1)
            scores = codec.score(hyps, refs)
            copied, total = copy_rate(codec, sources, refs, hyps)
            history.append(dict(epoch=epoch + 1, loss=float(np.mean(losses)),
                                bleu=scores["bleu"], chrf=scores["chrf"], copied=copied,
                                oov_in_ref=total, copy_rate=copied / max(total, 1),
                                time=time.perf_counter() - t0))
            print(f"{name:17s} epoch {epoch + 1}: loss {np.mean(losses):.3f}  BLEU "
                  f"{scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  OOV source words "
                  f"reproduced {copied}/{total} = {copied / max(total, 1):.1%}", flush=True)
        examples = [(s, r, h) for s, r, h in zip(sources, refs, hyps)
                    if any(w not in ext.src_vocab.stoi for w in ext.src_tokenizer.tokenize(s))]
        results[name] = dict(history=history, examples=examples[:10])
    print(f"V = {V} (shared, min_freq {args.min_freq}); {len(data.train)} training pairs, "
          f"{len(data.test)} test pairs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), V=V, results=results, machine=platform.platform(),
                           cpus=os.cpu_count(), date=time.strftime("%Y-%m-%d")), f, indent=1)


if __name__ == "__main__":
    main()
