"""The book's data sets (Deep Learning from Scratch 2, chapters 7 and 8) with the book's settings:
test accuracy after every epoch, to compare with the book's figures.

    python benchmarks/dlfs2.py                                    # the four variants, in turn
    python benchmarks/dlfs2.py --variants addition-reverse --epochs 3   # a quick check
    python benchmarks/dlfs2.py --json runs/dlfs2.json

The variants (``--variants``, default all four, run one after the other):

- ``addition``: Seq2Seq on ``dlfs2-addition``, source as written (the book's ch07 baseline);
- ``addition-reverse``: the same with the source reversed (the book's "reverse");
- ``date-attention``: AttentionSeq2Seq (dot score) on ``dlfs2-date``, source reversed, as the
  book's ch08 ``train.py`` trains its ``AttentionSeq2seq``;
- ``date-seq2seq``: Seq2Seq on ``dlfs2-date``, source reversed (ch08's comparison).

The book's ``PeekySeq2seq`` (the encoder's state fed to every decoder step) has no counterpart in
minis2s, so it is not run.

Settings, from the book's ``ch07/train_seq2seq.py`` and ``ch08/train.py``: the book's split
(``minis2s.data.tasks.dlfs2.book_split``: 45,000 training and 5,000 test pairs, no validation
set), character level, D = 16, H = 128 (addition) or 256 (dates), batch 128, Adam with
lr 1e-3, gradient clipping at norm 5, 25 epochs (addition) or 10 (dates), float32, batches
shuffled each epoch (no length bucketing, as the book's ``Trainer``). After every epoch the model
decodes the 5,000 test sources greedily and the script reports the exact match of the whole
answer (the book's ``eval_seq2seq``), on all 5,000 (comparable with the book) and on the test
pairs whose source does not occur in the training part (28.1% of the date test sources do;
none of the addition ones). ``--json PATH`` writes the configuration, the per-epoch figures and
the machine.

Differences that remain: minis2s's models are GRU encoder-decoders (the book's are LSTMs), and
minis2s strips the book's padding spaces and ``_`` (it pads batches with PAD and starts targets
with BOS, and stops decoding at EOS rather than after a fixed number of characters).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import minis2s
from minis2s import backend, optim
from minis2s.data import Vocab, encode_pairs
from minis2s.data.tasks import dlfs2
from minis2s.train import evaluate, fit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import add_common_args, write_json  # noqa: E402

# variant -> (data set, model, reverse the source, D, H, epochs): the book's settings
VARIANTS = {
    "addition": ("addition", "seq2seq", False, 16, 128, 25),
    "addition-reverse": ("addition", "seq2seq", True, 16, 128, 25),
    "date-attention": ("date", "attention", True, 16, 256, 10),
    "date-seq2seq": ("date", "seq2seq", True, 16, 256, 10),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS),
                   help="which variants to run, in this order (default: all four)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs for every variant (default: the book's, 25 addition / 10 dates)")
    p.add_argument("--batch-size", type=int, default=128, help="B (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    add_common_args(p)
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0; got {value}")
    return args


def exact(hyps, refs, keep):
    """Exact match of the whole answer over the indices ``keep``."""
    return sum(hyps[i] == refs[i] for i in keep) / max(len(keep), 1)


def run(variant, args):
    data, model_name, reverse, embed_dim, hidden_dim, book_epochs = VARIANTS[variant]
    epochs = args.epochs or book_epochs
    train, test = dlfs2.book_split(data)
    if reverse:  # the book's x[:, ::-1]; the target is unchanged
        train = [(s[::-1], t) for s, t in train]
        test = [(s[::-1], t) for s, t in test]
    seen = {s for s, _ in train}
    unseen = [i for i, (s, _) in enumerate(test) if s not in seen]
    src_vocab = Vocab.build([s for s, _ in train], level="char")
    tgt_vocab = Vocab.build([t for _, t in train], level="char")
    train_ids = encode_pairs(train, src_vocab, tgt_vocab)
    test_ids = encode_pairs(test, src_vocab, tgt_vocab)
    refs = [[int(i) for i in t[1:-1]] for _, t in test_ids]
    kw = dict(embed_dim=embed_dim, hidden_dim=hidden_dim, dtype=args.dtype, seed=args.seed)
    if model_name == "attention":
        model = minis2s.AttentionSeq2Seq(len(src_vocab), len(tgt_vocab), attention="dot", **kw)
    else:
        model = minis2s.Seq2Seq(len(src_vocab), len(tgt_vocab), **kw)
    opt = optim.Adam(model.params, model.grads, lr=args.lr)
    print(f"== {variant}: {model!r}, {model.num_params():,} parameters; dlfs2-{data}, "
          f"{len(train_ids):,} training and {len(test_ids):,} test pairs ({len(unseen):,} with "
          f"a source not in training); reverse source {reverse}; {epochs} epochs", flush=True)

    history, rows = None, []
    for epoch in range(epochs):
        res = fit(model, opt, train_ids, None, epochs=epoch + 1, start_epoch=epoch,
                  history=history, batch_size=args.batch_size, clip=args.clip, seed=args.seed,
                  bucket=False, progress=args.progress, log=None)
        history = res.history
        start = history["epoch_end_step"][-2] if epoch else 0
        losses = history["step_loss"][start:history["epoch_end_step"][-1]]
        t0 = time.perf_counter()
        ev = evaluate(model, test_ids, beam_size=1)
        eval_time = time.perf_counter() - t0
        row = dict(epoch=epoch + 1, train_time_s=history["epoch_time"][-1], eval_time_s=eval_time,
                   mean_loss=sum(losses) / max(len(losses), 1), exact_match=ev["exact_match"],
                   exact_match_unseen=exact(ev["hyps"], refs, unseen),
                   token_accuracy=ev["token_accuracy"])
        rows.append(row)
        print(f"{variant} epoch {epoch + 1}: train {row['train_time_s']:.1f} s, loss "
              f"{row['mean_loss']:.4f}; test exact match {row['exact_match']:.4f} (unseen "
              f"sources {row['exact_match_unseen']:.4f}), token accuracy "
              f"{row['token_accuracy']:.4f} (eval {eval_time:.1f} s)", flush=True)
    for (s, t), h in list(zip(test, ev["hyps"]))[:3]:
        print(f"  {s!r} -> {tgt_vocab.decode(h)!r} (reference {t!r})")
    return dict(variant=variant, data=f"dlfs2-{data}", model=model_name, model_repr=repr(model),
                num_params=model.num_params(), reverse_source=reverse, embed_dim=embed_dim,
                hidden_dim=hidden_dim, epochs=epochs, n_train=len(train_ids),
                n_test=len(test_ids), n_test_unseen=len(unseen), history=rows)


def main(argv=None):
    args = parse_args(argv)
    backend.use(args.backend)
    print(f"backend {backend.name}; python {platform.python_version()} on "
          f"{platform.machine()} ({os.cpu_count()} CPUs); OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}", flush=True)
    t0 = time.perf_counter()
    results = [run(v, args) for v in args.variants]
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    if args.json:
        write_json(args.json, config=vars(args), results=results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
