"""The ``minis2s`` command (also ``python -m minis2s``).

    minis2s train --task dates --model attention [--epochs N] [--backend cupy] [--out DIR]
    minis2s train --data pairs.tsv --model seq2seq [--max-len N --on-long truncate|error]
    minis2s eval --checkpoint runs/dates/best.ckpt --task dates
    minis2s generate --checkpoint runs/dates/best.ckpt "2/10/93"
    minis2s gradcheck --model pointer
    minis2s assignment make OUT_DIR [--parts gru,attention] [--source CHECKOUT] [--solutions]
    minis2s assignment grade DIR [DIR ...] [--csv F] [--json F] [--gradescope P] [--impl reference]

A user error (bad argument, missing file, bad data) prints one line ``minis2s: error: ...`` and
exits with status 2, without a traceback. Set MINIS2S_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

__all__ = ["main"]

MODEL_CHOICES = ("seq2seq", "attention", "pointer")
ATTENTION_CHOICES = ("dot", "general", "additive", "cosine")


class UserError(Exception):
    """An error in what the user asked for: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        raise UserError(f"{self.prog}: {message}")


def _add_model_args(p):
    p.add_argument("--model", default="attention",
                   help=f"model: one of {', '.join(MODEL_CHOICES)} (default attention)")
    p.add_argument("--attention", default="dot", choices=ATTENTION_CHOICES,
                   help="attention score: dot, general, additive or cosine (default dot)")
    p.add_argument("--coverage", action="store_true", help="pointer: train with coverage")
    p.add_argument("--embed-dim", type=int, default=None, help="D (default: per task)")
    p.add_argument("--hidden-dim", type=int, default=None, help="H (default: per task)")
    p.add_argument("--layers", type=int, default=1, help="GRU layers (default 1)")
    p.add_argument("--bidirectional", action="store_true", help="bidirectional encoder")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="float32 (default) or float64")


def _add_data_args(p, required=True):
    g = p.add_mutually_exclusive_group(required=False)
    g.add_argument("--task", help="a generated task: copy, reverse, addition, dates, entities")
    g.add_argument("--data", help="a TSV file of 'source<TAB>target' lines")
    p.add_argument("--n-train", type=int, default=None, help="training examples (generated)")
    p.add_argument("--n-val", type=int, default=None, help="validation examples")
    p.add_argument("--n-test", type=int, default=None, help="test examples (eval)")


def build_parser():
    parser = _Parser(prog="minis2s", description="Sequence-to-sequence models from scratch.")
    parser.add_argument("--backend", default=None, help="numpy (default) or cupy")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model on a task or a TSV file")
    _add_data_args(t)
    _add_model_args(t)
    t.add_argument("--epochs", type=int, default=None, help="epochs (default: per task)")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 2e-3)")
    t.add_argument("--clip", type=float, default=5.0, help="max gradient norm (0: no clipping)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--min-freq", type=int, default=None,
                   help="keep tokens seen at least this often (default 1; pointer on words: 5)")
    t.add_argument("--out", default=None, help="output directory (default runs/<task>-<model>)")
    t.add_argument("--on-nonfinite", default="stop", choices=("stop", "skip"),
                   help="stop (default) or skip")
    t.add_argument("--max-len", type=int, default=None,
                   help="the most tokens kept per source/target (default: no limit)")
    t.add_argument("--on-long", default="truncate", choices=("truncate", "error"),
                   help="an example longer than --max-len: truncate it (with a warning, the "
                        "default) or stop with an error")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.ckpt: the model, optimizer, "
                        "vocabularies and seed come from the checkpoint; give the same data "
                        "options, and --epochs as the total")
    t.add_argument("--backend", dest="backend_sub", default=None, help="numpy or cupy")

    e = sub.add_parser("eval", help="evaluate a checkpoint on a task's test split or a TSV file")
    e.add_argument("--checkpoint", required=True)
    _add_data_args(e)
    e.add_argument("--beam-size", type=int, default=None)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--backend", dest="backend_sub", default=None)

    g = sub.add_parser("generate", help="translate input strings with a checkpoint")
    g.add_argument("--checkpoint", required=True)
    g.add_argument("inputs", nargs="+", help="one or more input strings")
    g.add_argument("--beam-size", type=int, default=None)
    g.add_argument("--max-len", type=int, default=100)
    g.add_argument("--backend", dest="backend_sub", default=None)

    c = sub.add_parser("gradcheck", help="gradient-check a small float64 model and print a table")
    c.add_argument("--model", default="seq2seq", help=f"one of {', '.join(MODEL_CHOICES)}")
    c.add_argument("--attention", default="dot", choices=ATTENTION_CHOICES)
    c.add_argument("--coverage", action="store_true")
    c.add_argument("--layers", type=int, default=2)
    c.add_argument("--bidirectional", action="store_true")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--backend", dest="backend_sub", default=None)

    a = sub.add_parser("assignment", help="coursework: make a student copy, or grade copies")
    asub = a.add_subparsers(dest="action", parser_class=_Parser)
    am = asub.add_parser("make", help="write a student copy with solutions blanked out")
    am.add_argument("out_dir")
    am.add_argument("--parts", default=None, help="comma-separated parts (default: all)")
    am.add_argument("--force", action="store_true", help="overwrite a non-empty OUT_DIR")
    am.add_argument("--source", default=None,
                    help="the minis2s checkout to copy (default: the one minis2s runs from; "
                         "an installed package is refused)")
    am.add_argument("--solutions", action="store_true",
                    help="write an instructor's answer copy (the solutions kept)")
    ag = asub.add_parser("grade", help="grade student copies by gradient checks")
    ag.add_argument("dirs", nargs="+", metavar="DIR", help="one or more copies (submissions)")
    ag.add_argument("--parts", default=None, help="comma-separated parts (default: the copy's)")
    ag.add_argument("--timeout", type=float, default=300.0,
                    help="seconds per part (default 300); a part that runs longer scores 0")
    ag.add_argument("--impl", dest="grade_impl", default=None, choices=("reference",),
                    help="reference: also train each copy's own models on the reference tier "
                         "(the student's ops) on a tiny task")
    ag.add_argument("--csv", default=None, help="write one row per submission to this CSV file")
    ag.add_argument("--json", default=None, help="write every check's result to this JSON file")
    ag.add_argument("--gradescope", default=None,
                    help="write Gradescope's results.json: this file (one copy) or this folder "
                         "(NAME/results.json per copy)")
    return parser


# --- commands ---------------------------------------------------------------------------------
def _positive(name, value):
    if value is not None and value <= 0:
        raise UserError(f"--{name} must be > 0; got {value}")


def _model_class_name(name):
    from .models import MODEL_NAMES

    if name not in MODEL_NAMES:
        raise UserError(f"unknown model {name!r}: choose one of {', '.join(sorted(MODEL_NAMES))}")
    return MODEL_NAMES[name]


def _load_data(args, default_sizes):
    """(train, val, test) string pairs and the source level, from --task or --data."""
    from .data import load_tsv, make_splits, task_info

    for n in ("n_train", "n_val", "n_test"):  # before `or` could turn a 0 into the default
        _positive(n.replace("_", "-"), getattr(args, n))
    if args.data:
        pairs = load_tsv(args.data)
        if len(pairs) < 3:
            raise UserError(f"{args.data}: need at least 3 examples; found {len(pairs)}")
        import random

        rng = random.Random(getattr(args, "seed", 0))
        pairs = list(pairs)
        rng.shuffle(pairs)
        n_val = args.n_val or max(1, len(pairs) // 10)
        n_test = args.n_test or max(1, len(pairs) // 10)
        val, test, train = (pairs[:n_val], pairs[n_val:n_val + n_test],
                            pairs[n_val + n_test:])
        level = "word" if any(" " in s for s, _ in pairs[:100]) else "char"
        if not train:
            raise UserError(f"{args.data}: no examples left for training after the splits")
        return train, val, test, level
    task = args.task or "dates"
    info = task_info(task)
    sizes = (args.n_train or default_sizes[0], args.n_val or default_sizes[1],
             args.n_test or default_sizes[2])
    train, val, test = make_splits(task, sizes, seed=getattr(args, "seed", 0))
    return train, val, test, info.level


TASK_DEFAULTS = {  # per-task defaults: sizes, D, H, epochs, lr
    "dates": dict(sizes=(45000, 1000, 5000), embed_dim=16, hidden_dim=256, epochs=4, lr=2e-3),
    "addition": dict(sizes=(20000, 1000, 2000), embed_dim=16, hidden_dim=128, epochs=10, lr=2e-3),
    "copy": dict(sizes=(10000, 500, 1000), embed_dim=16, hidden_dim=128, epochs=5, lr=2e-3),
    "reverse": dict(sizes=(10000, 500, 1000), embed_dim=16, hidden_dim=128, epochs=5, lr=2e-3),
    "entities": dict(sizes=(20000, 500, 1000), embed_dim=64, hidden_dim=128, epochs=8, lr=2e-3),
    None: dict(sizes=(0, 0, 0), embed_dim=64, hidden_dim=128, epochs=10, lr=2e-3),
}


def cmd_train(args):
    from . import optim
    from .data import Vocab, encode_pairs
    from .models import MODELS
    from .train import fit

    for n in ("epochs", "batch_size", "embed_dim", "hidden_dim", "layers", "lr", "max_len",
              "min_freq"):
        _positive(n.replace("_", "-"), getattr(args, n))
    if args.clip < 0:
        raise UserError(f"--clip must be >= 0 (0: no clipping); got {args.clip}")
    cls_name = _model_class_name(args.model)
    out = args.out or os.path.join("runs", f"{args.task or 'data'}-{args.model}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out!r} exists and is not a directory")
    defaults = TASK_DEFAULTS.get(None if args.data else (args.task or "dates"), TASK_DEFAULTS[None])
    train, val, _test, level = _load_data(args, defaults["sizes"])
    if args.resume:
        return _resume_train(args, out, train, val, args.epochs or defaults["epochs"])
    shared = cls_name == "PointerGenerator"
    # The pointer-generator learns to copy only if training sources hold words outside the
    # vocabulary: keep only words seen 5+ times (word level), so rare names become copy slots.
    min_freq = args.min_freq or (5 if shared and level == "word" else 1)
    src_vocab = Vocab.build([s for s, _ in train] + ([t for _, t in train] if shared else []),
                            level=level, min_freq=min_freq)
    tgt_vocab = src_vocab if shared else Vocab.build([t for _, t in train], level=level,
                                                     min_freq=min_freq)
    # pointer: each row's OOV words get extended ids V + k (copied, then mapped back to words)
    long = dict(max_len=args.max_len, on_long=args.on_long)
    train_ids = encode_pairs(train, src_vocab, tgt_vocab, extend_oov=shared, **long)
    val_ids = encode_pairs(val, src_vocab, tgt_vocab, extend_oov=shared, **long)
    D = args.embed_dim or defaults["embed_dim"]
    H = args.hidden_dim or defaults["hidden_dim"]
    kw = dict(embed_dim=D, hidden_dim=H, num_layers=args.layers,
              bidirectional=args.bidirectional, dtype=args.dtype, seed=args.seed)
    if cls_name == "AttentionSeq2Seq":
        kw["attention"] = args.attention
    if cls_name == "PointerGenerator":
        kw["coverage"] = args.coverage
        model = MODELS[cls_name](len(src_vocab), **kw)
    else:
        model = MODELS[cls_name](len(src_vocab), len(tgt_vocab), **kw)
    opt = optim.Adam(model.params, model.grads, lr=args.lr or defaults["lr"])
    epochs = args.epochs or defaults["epochs"]
    print(f"{type(model).__name__}: {model.num_params():,} parameters, D={D}, H={H}; "
          f"{len(train):,} training and {len(val):,} validation examples; backend "
          f"{_backend_name()}; writing to {out}/")
    import numpy as np

    # fit checks every step's loss and gradient norm and stops (or skips) with one clear
    # message, so NumPy's overflow warnings on the way there would only be noise
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = fit(model, opt, train_ids, val_ids, epochs=epochs, batch_size=args.batch_size,
                  clip=args.clip, seed=args.seed, out_dir=out,
                  vocabs={"src": src_vocab, "tgt": tgt_vocab}, on_nonfinite=args.on_nonfinite,
                  progress=not args.no_progress)
    return _finish_train(model, res, val, src_vocab, tgt_vocab, out)


def _finish_train(model, res, val, src_vocab, tgt_vocab, out):
    """After training: example outputs, metrics.json and the closing line."""
    _save_examples(model, val[:4], src_vocab, tgt_vocab, out)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({k: v for k, v in res.history.items() if k != "step_loss"}, f, indent=1)
    print(f"best validation exact match {res.best_exact:.4f}; checkpoint {res.checkpoint}; "
          f"loss curve {os.path.join(out, 'loss_curve.png')}")
    return 0


def _resume_train(args, out, train, val, epochs):
    """``train --resume``: go on from ``out/last.ckpt`` (minis2s.train.resume)."""
    from .checkpoint import load_checkpoint
    from .data import encode_pairs
    from .train import resume

    path = os.path.join(out, "last.ckpt")
    if not os.path.isfile(path):
        raise UserError(f"--resume: there is no {path}; train without --resume first (or give "
                        "the run's --out)")
    ck = load_checkpoint(path)
    if "src" not in ck.vocabs or "tgt" not in ck.vocabs or "epoch" not in ck.extra:
        raise UserError(f"--resume: {path} was not written by 'minis2s train' (it lacks the "
                        "vocabularies or the epoch)")
    done = int(ck.extra["epoch"])
    if epochs <= done:
        raise UserError(f"--resume: {path} has already trained {done} epochs; --epochs is the "
                        f"total, so ask for more than {done}")
    src_vocab, tgt_vocab = ck.vocabs["src"], ck.vocabs["tgt"]
    shared = type(ck.model).__name__ == "PointerGenerator"
    long = dict(max_len=args.max_len, on_long=args.on_long)
    train_ids = encode_pairs(train, src_vocab, tgt_vocab, extend_oov=shared, **long)
    val_ids = encode_pairs(val, src_vocab, tgt_vocab, extend_oov=shared, **long)
    print(f"resuming {type(ck.model).__name__} from {path} after epoch {done}, up to epoch "
          f"{epochs}; backend {_backend_name()}")
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # as in cmd_train
        model, _opt, res = resume(path, train_ids, val_ids, epochs=epochs,
                                  batch_size=args.batch_size, clip=args.clip, out_dir=out,
                                  on_nonfinite=args.on_nonfinite, progress=not args.no_progress)
    return _finish_train(model, res, val, src_vocab, tgt_vocab, out)


def _save_examples(model, pairs, src_vocab, tgt_vocab, out):
    """Print a few validation translations and save pictures of the model's attention for
    them (models with attention). Returns the paths of the pictures."""
    from .data.translate import encode_sources, translate
    from .plots import plot_examples

    texts, refs = [s for s, _ in pairs], [t for _, t in pairs]
    for s, t, o in zip(texts, refs, translate(model, texts, src_vocab, tgt_vocab, max_len=60)):
        print(f"  {s!r} -> {o!r} (reference {t!r}{'' if o == t else ', wrong'})")
    if _is_seq2seq(model):
        return []
    src, oovs = encode_sources(model, texts, src_vocab)
    return plot_examples(model, src, src_vocab, tgt_vocab, out, oovs=oovs, references=refs)


def _is_seq2seq(model):
    return type(model).__name__ == "Seq2Seq"


def _is_pointer(model):
    return type(model).__name__ == "PointerGenerator"


def _encode_sources(model, texts, src_vocab):
    """Padded source ids and each row's OOV list (a pointer-generator gets extended ids, whose
    OOV list maps generated ids >= V back to the row's words; other models: None)."""
    from .data.batching import pad_sequences

    if not _is_pointer(model):
        return pad_sequences([src_vocab.encode(t) for t in texts]), [None] * len(texts)
    enc = [src_vocab.encode_extended(t) for t in texts]
    return pad_sequences([ids for ids, _ in enc]), [o for _, o in enc]


def _load_ckpt(path):
    from .checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    if not ck.vocabs:
        raise UserError(f"{path}: this checkpoint has no vocabularies (save it from "
                        "`minis2s train`); a bare model.save() file cannot read text")
    return ck


def cmd_generate(args):
    ck = _load_ckpt(args.checkpoint)
    src_vocab, tgt_vocab = ck.vocabs["src"], ck.vocabs["tgt"]
    for text in args.inputs:
        if not text.strip():
            raise UserError("input is empty: give a non-empty string to translate")
    unknown = src_vocab.unknown_tokens(args.inputs)
    if unknown:  # say so, as encode_pairs does for a data set
        what = ("got extended OOV ids (the pointer can copy them)" if _is_pointer(ck.model)
                else "became <unk>")
        top = ", ".join(f"{t!r} x{c}" for t, c in unknown.most_common(5))
        logging.getLogger("minis2s.data").warning(
            "%d input tokens are not in the source vocabulary and %s: %s",
            sum(unknown.values()), what, top)
    src, oovs = _encode_sources(ck.model, args.inputs, src_vocab)
    out = ck.model.generate(src, max_len=args.max_len, beam_size=args.beam_size)
    for o, row_oovs in zip(out, oovs):
        print(tgt_vocab.decode(o, oovs=row_oovs))
    return 0


def cmd_eval(args):
    from .data import encode_pairs
    from .train import evaluate

    ck = _load_ckpt(args.checkpoint)
    train_default = TASK_DEFAULTS.get(None if args.data else (args.task or "dates"),
                                      TASK_DEFAULTS[None])
    _, _, test, _ = _load_data(args, train_default["sizes"])
    pairs = encode_pairs(test, ck.vocabs["src"], ck.vocabs["tgt"],
                         extend_oov=_is_pointer(ck.model))
    ev = evaluate(ck.model, pairs, beam_size=args.beam_size)
    print(json.dumps({k: v for k, v in ev.items() if k != "hyps"}))
    return 0


def cmd_gradcheck(args):
    from .gradcheck import check_model
    from .testing import tiny_batch, tiny_model

    cls_name = _model_class_name(args.model)
    model = tiny_model(cls_name, num_layers=args.layers, bidirectional=args.bidirectional,
                       attention=args.attention, coverage=args.coverage, seed=args.seed)
    src, tgt = tiny_batch(model, seed=args.seed)
    report = check_model(model, src, tgt)
    print(report)
    return 0 if report.passed else 1


def cmd_assignment(args):
    from . import coursework

    if args.action == "make":
        try:
            manifest = coursework.make(args.out_dir, parts=args.parts, force=args.force,
                                       source=args.source, solutions=args.solutions)
        except coursework.MarkerError as e:
            more = f" (and {len(e.problems) - 1} more)" if len(e.problems) > 1 else ""
            raise UserError(f"{e.problems[0]}{more}; list them all with: python -c 'from "
                            "minis2s import coursework; print(*coursework.check_markers(), "
                            "sep=chr(10))'") from None
        what = "an answer copy" if args.solutions else "a student copy"
        print(f"wrote {what} of the parts {', '.join(manifest['parts'])} to {args.out_dir}")
        return 0
    if args.action == "grade":
        return coursework.grade_cli(args.dirs, parts=args.parts, timeout=args.timeout,
                                    impl=args.grade_impl, csv=args.csv, json=args.json,
                                    gradescope=args.gradescope)
    raise UserError("assignment needs an action: make or grade")


def _refuse_a_copy_it_does_not_run():
    """Inside a student copy, the installed command would run the installed minis2s (the
    solutions), not the copy's: stop and say what to run instead."""
    from .coursework import foreign_copy_message

    msg = foreign_copy_message()
    if msg:
        raise UserError(msg)


def _backend_name():
    from . import backend

    return backend.name


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "generate": cmd_generate,
            "gradcheck": cmd_gradcheck, "assignment": cmd_assignment}


def main(argv=None):
    """Entry point; returns the exit status."""
    from .backend import BackendError
    from .checkpoint import CheckpointError
    from .train import NonFiniteError

    debug = bool(os.environ.get("MINIS2S_DEBUG"))
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            raise UserError("give a command: train, eval, generate, gradcheck or assignment "
                            "(see minis2s --help)")
        if args.command != "assignment":
            _refuse_a_copy_it_does_not_run()
        name = getattr(args, "backend_sub", None) or args.backend
        if name:
            from . import backend

            backend.use(name)
        return COMMANDS[args.command](args)
    except (UserError, BackendError, CheckpointError, OSError, ValueError, TypeError) as e:
        if debug:
            raise
        msg = str(e).replace("\n", " ")
        print(f"minis2s: error: {msg}", file=sys.stderr)
        return 2
    except NonFiniteError as e:  # training diverged (e.g. --lr too large)
        if debug:
            raise
        msg = str(e).replace("\n", " ")
        print(f"minis2s: error: {msg} (try a smaller --lr; the last good checkpoint is kept)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minis2s: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
