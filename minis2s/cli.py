"""The ``minis2s`` command (also ``python -m minis2s``).

    minis2s train --task dates --model attention [--epochs N] [--backend cupy] [--out DIR]
                  [--impl reference] [--force | --resume]
    minis2s train --data pairs.tsv --model seq2seq [--max-len N --on-long truncate|error]
    minis2s eval --checkpoint runs/dates/best.ckpt --task dates [--json]
    minis2s generate --checkpoint runs/dates/best.ckpt "2/10/93"
    minis2s gradcheck --model pointer
    minis2s assignment make OUT_DIR [--parts gru,attention] [--source CHECKOUT] [--solutions]
    minis2s assignment grade DIR [DIR ...] [--csv F] [--json F] [--gradescope P] [--impl reference]

A user error (bad argument, missing file, bad data) prints one line ``minis2s: error: ...`` and
exits with status 2, without a traceback, in the command line's words (its flags, "did you
mean", choices listed one way). Set MINIS2S_DEBUG=1 to see tracebacks. ``--backend`` and
``--impl`` go before the command or after it and hold for that one command; ``minis2s
--version`` prints the version. ``train`` locks its ``--out`` and refuses one that holds an
earlier run unless ``--force`` or ``--resume`` (:func:`minis2s.train.claim_run_dir`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import re
import sys

__all__ = ["main"]

MODEL_CHOICES = ("seq2seq", "attention", "pointer")
ATTENTION_CHOICES = ("dot", "general", "additive", "cosine")


class UserError(Exception):
    """An error in what the user asked for: reported in one line, exit status 2."""


def _one_of(values):
    """The one way the CLI lists choices: "choose one of: a, b, c"."""
    return "choose one of: " + ", ".join(str(v) for v in values)


def _did_you_mean(word, candidates):
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with "(default: X)" after every option whose help does not say its
    default already (the flags that are off unless given say nothing)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and "default" not in text and action.default is not None
                and action.default is not False and action.default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """One-line errors (exit status 2) without a doubled prefix, "did you mean" for a
    misspelled flag or command, and choices listed one way."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.children = {}  # subcommand name -> its parser (set by build_parser)
        self.children_dest = None

    def error(self, message):  # argparse prints usage + "prog: error: message" and exits
        raise UserError(self._polish(message))

    def _where(self):
        """The subcommand a message is about ("train: "), or nothing at the top level."""
        words = self.prog.split()[1:]
        return " ".join(words) + ": " if words else ""

    def _polish(self, message):
        m = re.match(r"argument (\S+): invalid choice: '?(.*?)'? \(choose from (.*)\)$", message)
        if m:
            flag, value, listed = m.groups()
            choices = [c.strip().strip("'") for c in listed.split(",")]
            what = {"COMMAND": "command", "command": "command", "action": "action"}.get(flag)
            head = f"unknown {what} {value!r}" if what else f"{flag}: unknown choice {value!r}"
            return (f"{self._where()}{head}; {_one_of(choices)}"
                    f"{_did_you_mean(value, choices)}")
        message = re.sub(r"^argument (\S+?)(/\S+)?: ", r"\1: ", message)
        return self._where() + message

    def parse_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        try:
            ns, extras = self.parse_known_args(argv, namespace)
        except UserError:  # e.g. "--checkpoint is required" when it was misspelled
            self._misspelled(argv)
            raise
        if extras:
            parser = self
            while parser.children and getattr(ns, parser.children_dest, None) in parser.children:
                parser = parser.children[getattr(ns, parser.children_dest)]
            options = [o for a in parser._actions + self._actions for o in a.option_strings]
            hint = next((h for h in (_did_you_mean(x.split("=")[0], options)
                                     for x in extras if x.startswith("-")) if h), "")
            many = "s" if len(extras) > 1 else ""
            raise UserError(f"{parser._where()}unrecognized argument{many}: "
                            f"{' '.join(extras)}{hint} (see {parser.prog} --help)")
        return ns


    def _misspelled(self, argv):
        """Raise "unrecognized argument" with "did you mean" for a flag in ``argv`` that no
        parser knows (argparse would complain first that the right flag is missing)."""
        parser, options = self, [o for a in self._actions for o in a.option_strings]
        for token in argv:
            if token == "--":
                return
            if token in parser.children:
                parser = parser.children[token]
                options += [o for a in parser._actions for o in a.option_strings]
            elif token.startswith("--"):
                flag = token.split("=")[0]
                if not any(o.startswith(flag) for o in options):
                    raise UserError(f"{parser._where()}unrecognized argument: {flag}"
                                    f"{_did_you_mean(flag, options)} (see {parser.prog} --help)")


def _add_runtime_args(p, dest_suffix=""):
    """--backend and --impl: before the command (for any command) or after it."""
    from .backend import BACKENDS, IMPLS

    p.add_argument("--backend", dest="backend" + dest_suffix, default=None, choices=BACKENDS,
                   help="the array backend: numpy (the CPU, the default) or cupy (an NVIDIA "
                        "GPU; install CuPy with pip install \".[gpu]\"); the MINIS2S_BACKEND "
                        "environment variable sets it too")
    p.add_argument("--impl", dest="impl" + dest_suffix, default=None, choices=IMPLS,
                   help="the tier the models compute with: fast (the default) or reference "
                        "(the textbook code of minis2s.functional, which the coursework blanks "
                        "out); the MINIS2S_IMPL environment variable sets it too")


def _add_model_args(p):
    p.add_argument("--model", default="attention", choices=MODEL_CHOICES,
                   help="seq2seq (GRU encoder-decoder), attention (with attention over the "
                        "source) or pointer (the pointer-generator, which can copy source "
                        "words)")
    p.add_argument("--attention", default=None, choices=ATTENTION_CHOICES,
                   help="--model attention's score: dot, general, additive or cosine "
                        "(default: dot; the pointer always uses additive attention)")
    p.add_argument("--coverage", action="store_true",
                   help="--model pointer: train with coverage (See et al. 2017)")
    p.add_argument("--embed-dim", type=int, default=None, help="D (default: per task)")
    p.add_argument("--hidden-dim", type=int, default=None, help="H (default: per task)")
    p.add_argument("--layers", type=int, default=1, help="GRU layers (default 1)")
    p.add_argument("--bidirectional", action="store_true", help="bidirectional encoder")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="float32 (default) or float64")


def _add_data_args(p, required=True):
    g = p.add_mutually_exclusive_group(required=False)
    g.add_argument("--task", help="a generated task (copy, reverse, addition, dates, entities) "
                                  "or a shipped corpus (tatoeba, dlfs2-date, dlfs2-addition); "
                                  "default: dates")
    g.add_argument("--data", help="a file of 'source<TAB>target' lines (a third 'CC-BY ...' "
                                  "attribution column is dropped; a header line is skipped), "
                                  "or with --format dlfs2 of 'source_target' lines")
    g.add_argument("--src-file", help="two line-aligned files, one sentence per line: the "
                                      "source side (give --tgt-file too)")
    p.add_argument("--tgt-file", help="the target side of --src-file")
    p.add_argument("--format", default="tsv", choices=("tsv", "dlfs2"),
                   help="the --data file's format: tsv (default) or dlfs2")
    p.add_argument("--reverse", action="store_true", default=None,
                   help="swap source and target (tatoeba: English -> French)")
    p.add_argument("--n-train", type=int, default=None,
                   help="training examples (default: per task)")
    p.add_argument("--n-val", type=int, default=None,
                   help="validation examples (default: per task)")
    p.add_argument("--n-test", type=int, default=None,
                   help="test examples (eval --data: the first N lines)")


def _add_text_args(p):
    """How text is read (train; eval and generate take it from the checkpoint)."""
    p.add_argument("--level", default=None, choices=("char", "word", "subword"),
                   help="tokens: characters, words and punctuation, or BPE pieces learned on "
                        "the training split (needs minis2s[subword]); default: the task's "
                        "(char; word for entities and tatoeba; char for --data)")
    p.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lowercase the text (default: tatoeba yes, others no)")
    p.add_argument("--nfc", action=argparse.BooleanOptionalAction, default=None,
                   help="Unicode NFC (default: yes at word and subword level for --data and "
                        "tatoeba, no for the generated tasks)")
    p.add_argument("--bpe-vocab-size", type=int, default=None,
                   help="--level subword: the number of BPE pieces (default 4000)")


def _add_dropout_args(p):
    """train: inverted dropout, per place (docs/derivations/dropout.md)."""
    p.add_argument("--dropout", type=float, default=None, metavar="P",
                   help="inverted dropout in [0, 1) on the embeddings, between stacked GRU "
                        "layers and on the readout, during training only (default 0: none); "
                        "recorded in the checkpoint")
    for place, what in (("embed", "the source and target embedding outputs"),
                        ("hidden", "the inputs of GRU layers 2 .. --layers"),
                        ("readout", "the output layer's input")):
        p.add_argument(f"--dropout-{place}", type=float, default=None, metavar="P",
                       help=f"the dropout rate of {what} (default: --dropout)")


def _dropout_kwargs(args):
    """The models' dropout keywords from train's flags; UserError naming a bad flag."""
    from .functional.dropout import dropout_rate

    kw = {"dropout": args.dropout}
    for place in ("embed", "hidden", "readout"):
        kw[f"dropout_{place}"] = getattr(args, f"dropout_{place}")
    for k, v in kw.items():
        if v is not None:
            try:
                dropout_rate(k, v)
            except ValueError:
                raise UserError(f"--{k.replace('_', '-')} must be in [0, 1) (the probability "
                                f"of dropping a unit; 0: none); got {v}") from None
    return kw


LR_SCHEDULES = ("constant", "linear", "cosine", "inverse-sqrt", "plateau")
VAL_METRICS = ("loss", "exact", "token_acc", "bleu")
TF_SCHEDULES = ("constant", "linear", "exponential", "inverse-sigmoid")  # optim.TF_SCHEDULES


def _add_optim_args(p):
    """train: weight decay, the learning-rate schedule and early stopping (minis2s.optim)."""
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA",
                   help="AdamW's decoupled weight decay: each step also shrinks the weights "
                        "by the factor (1 - lr * LAMBDA), biases and embeddings excepted "
                        "(default 0: plain Adam)")
    p.add_argument("--decay-biases", action="store_true",
                   help="--weight-decay: decay the biases too")
    p.add_argument("--decay-embeddings", action="store_true",
                   help="--weight-decay: decay the embedding tables too")
    p.add_argument("--lr-schedule", default=None, choices=LR_SCHEDULES,
                   help="the learning rate over training (default: the task's recipe, linear "
                        "for tatoeba; else constant): constant, linear or "
                        "cosine decay to --min-lr at the last step, inverse-sqrt decay, each "
                        "after --warmup-steps of linear warmup; or plateau: multiply it by "
                        "--plateau-factor when the validation metric (--early-stopping-metric) "
                        "has not improved for more than --plateau-patience epochs")
    p.add_argument("--warmup-steps", type=int, default=None, metavar="N",
                   help="raise the rate linearly from lr/N to lr over the first N steps "
                        "(default: the task's recipe, 200 for tatoeba; else 0: no warmup; not "
                        "with plateau)")
    p.add_argument("--min-lr", type=float, default=0.0,
                   help="the lowest rate: where linear and cosine end, and the floor of "
                        "inverse-sqrt and plateau (default 0)")
    p.add_argument("--plateau-patience", type=int, default=1, metavar="N",
                   help="--lr-schedule plateau: the epochs without improvement tolerated "
                        "before the rate is reduced (default 1)")
    p.add_argument("--plateau-factor", type=float, default=0.5,
                   help="--lr-schedule plateau: the factor in (0, 1) that reduces the rate "
                        "(default 0.5)")
    p.add_argument("--early-stopping-patience", type=int, default=None, metavar="N",
                   help="stop when the validation metric has not improved for more than N "
                        "epochs (default: no early stopping)")
    p.add_argument("--early-stopping-metric", default=None, choices=VAL_METRICS,
                   help="the validation metric that early stopping, --lr-schedule plateau and "
                        "best.ckpt follow: loss (teacher-forced, lower is better), exact "
                        "(exact match), token_acc or bleu (corpus BLEU of the model's tokens); "
                        "default: loss with early stopping or plateau, else exact")


def _add_teacher_forcing_args(p):
    """train: the teacher-forcing ratio and scheduled sampling (minis2s.optim.TeacherForcing)."""
    p.add_argument("--teacher-forcing", type=float, default=None, metavar="RATIO",
                   help="the probability in [0, 1] that each decoder input is the gold token; "
                        "otherwise it is the model's own greedy prediction of the step before "
                        "(scheduled sampling, trained step by step; default 1: teacher forcing "
                        "throughout, the all-at-once path)")
    p.add_argument("--ss-schedule", default="constant", choices=TF_SCHEDULES,
                   help="how the teacher-forcing ratio changes over the training steps i "
                        "(Bengio et al. 2015): constant (--teacher-forcing, the default), "
                        "linear max(--ss-min, K - C*i), exponential K**i, or inverse-sigmoid "
                        "K/(K + exp(i/K)); the decaying ones are floored at --ss-min")
    p.add_argument("--ss-k", type=float, default=None, metavar="K",
                   help="--ss-schedule's K: linear's start (default 1), exponential's base in "
                        "(0, 1), inverse-sigmoid's K >= 1 (the steps it stays near 1 grow "
                        "with K)")
    p.add_argument("--ss-c", type=float, default=None, metavar="C",
                   help="--ss-schedule linear: the decrease of the ratio per step, > 0")
    p.add_argument("--ss-min", type=float, default=0.0, metavar="RATIO",
                   help="the lowest ratio of a decaying --ss-schedule (default 0)")


def _teacher_forcing(args):
    """train's TeacherForcing from the flags (seeded by --seed), or None for plain teacher
    forcing. Raises UserError naming the flag."""
    from . import optim

    constant = args.ss_schedule == "constant"
    if not constant and args.teacher_forcing is not None:
        raise UserError(f"--teacher-forcing is the constant ratio; --ss-schedule "
                        f"{args.ss_schedule} starts from --ss-k instead")
    if constant and (args.ss_k is not None or args.ss_c is not None or args.ss_min):
        raise UserError("--ss-k, --ss-c and --ss-min need --ss-schedule linear, exponential or "
                        "inverse-sigmoid (give --teacher-forcing RATIO for a constant ratio)")
    if args.ss_c is not None and args.ss_schedule != "linear":
        raise UserError(f"--ss-c is the slope of --ss-schedule linear; got --ss-schedule "
                        f"{args.ss_schedule}")
    flags = {"ratio": "--teacher-forcing", "k": "--ss-k", "c": "--ss-c",
             "min_ratio": "--ss-min", "seed": "--seed"}
    try:
        tf = optim.TeacherForcing(args.ss_schedule, ratio=args.teacher_forcing, k=args.ss_k,
                                  c=args.ss_c, min_ratio=args.ss_min, seed=args.seed)
    except (TypeError, ValueError) as e:
        msg = str(e)
        for name, flag in flags.items():  # the message names the flag, not the argument
            if msg.startswith(f"{name} "):
                msg = flag + msg[len(name):]
                break
        raise UserError(msg) from None
    if constant and tf.ratio == 1.0:
        return None
    return tf


def build_parser():
    from . import __version__

    parser = _Parser(prog="minis2s", description="Sequence-to-sequence models from scratch.",
                     epilog="minis2s COMMAND --help lists the options of a command.")
    parser.add_argument("--version", action="version", version=f"minis2s {__version__}")
    _add_runtime_args(parser)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND",
                                title="commands")

    t = sub.add_parser("train", help="train a model on a task or a TSV file")
    _add_data_args(t)
    _add_text_args(t)
    _add_model_args(t)
    _add_dropout_args(t)
    t.add_argument("--epochs", type=int, default=None, help="epochs (default: per task)")
    t.add_argument("--batch-size", type=int, default=128, help="B, examples per step")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 2e-3)")
    t.add_argument("--clip", type=float, default=5.0, help="max gradient norm (0: no clipping)")
    t.add_argument("--label-smoothing", type=float, default=None, metavar="EPS",
                   help="train against (1 - EPS) on the gold token + EPS spread evenly over the "
                        "vocabulary, EPS in [0, 1) (default: the task's recipe, 0.1 for "
                        "tatoeba; else 0: the plain NLL); recorded in the checkpoint; the "
                        "validation loss stays the plain NLL")
    t.add_argument("--recipe", action=argparse.BooleanOptionalAction, default=True,
                   help="take the task's recommended recipe (RECIPES; tatoeba: lr 2e-3 with "
                        "200 warmup steps and linear decay, label smoothing 0.1, beam search "
                        "of 5 with length penalty 1.0) for the flags not given; --no-recipe: "
                        "the plain setting (constant rate, no smoothing, greedy decoding)")
    _add_optim_args(t)
    _add_teacher_forcing_args(t)
    t.add_argument("--seed", type=int, default=0,
                   help="seeds the weights, the generated data and the batch order")
    t.add_argument("--min-freq", type=int, default=None,
                   help="keep tokens seen at least this often in training (default 1; "
                        "tatoeba 2; pointer at word level 5)")
    t.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: runs/<task>-<model>)")
    t.add_argument("--on-nonfinite", default="stop", choices=("stop", "skip"),
                   help="a NaN or infinite loss or gradient: stop with an error that names the "
                        "step (the default), or skip that batch")
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
    t.add_argument("--force", action="store_true",
                   help="train into an --out that holds an earlier run: its checkpoints, "
                        "pictures and metrics.json are removed first")
    _add_runtime_args(t, "_sub")

    e = sub.add_parser("eval", help="evaluate a checkpoint on a task's test split or a TSV file")
    e.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a checkpoint written by minis2s train, e.g. runs/dates-attention/"
                        "best.ckpt (required)")
    _add_data_args(e)
    e.add_argument("--beam-size", type=int, default=None, help=BEAM_HELP)
    _add_decoding_args(e)
    e.add_argument("--seed", type=int, default=None,
                   help="a generated task's seed (default: the one the checkpoint records)")
    e.add_argument("--predictions", default=None, metavar="OUT.tsv",
                   help="write source, reference, prediction, sentence chrF and exact (1/0) "
                        "per example to this TSV file")
    e.add_argument("--json", action="store_true",
                   help="print the scores as one JSON object (for scripts) instead of a table")
    _add_runtime_args(e, "_sub")

    g = sub.add_parser("generate", help="translate input strings with a checkpoint")
    g.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a checkpoint written by minis2s train, e.g. runs/dates-attention/"
                        "best.ckpt (required)")
    g.add_argument("inputs", nargs="*", help="input strings; '-' reads lines from standard input")
    g.add_argument("--input", default=None, metavar="FILE",
                   help="translate every line of FILE ('-': standard input); an empty line "
                        "gives an empty output line")
    g.add_argument("--attention", dest="attention_png", default=None, metavar="PNG",
                   help="draw the attention heatmap of the input to PNG (several inputs: "
                        "PNG's name with _1, _2, ...)")
    g.add_argument("--beam-size", type=int, default=None, help=BEAM_HELP)
    g.add_argument("--max-len", type=int, default=100,
                   help="the most tokens generated per input, the end token included; an "
                        "output cut at this limit is flagged on standard error")
    _add_decoding_args(g, sampling=True)
    _add_runtime_args(g, "_sub")

    c = sub.add_parser("gradcheck", help="gradient-check a small float64 model and print a table")
    c.add_argument("--model", default="seq2seq", choices=MODEL_CHOICES,
                   help="the model to check: seq2seq, attention or pointer")
    c.add_argument("--attention", default=None, choices=ATTENTION_CHOICES,
                   help="--model attention's score (default: dot)")
    c.add_argument("--coverage", action="store_true", help="--model pointer: with coverage")
    c.add_argument("--layers", type=int, default=2,
                   help="GRU layers of the encoder and the decoder")
    c.add_argument("--bidirectional", action="store_true", help="a bidirectional encoder")
    c.add_argument("--seed", type=int, default=0, help="seeds the weights and the batch")
    _add_runtime_args(c, "_sub")

    a = sub.add_parser("assignment", help="coursework: make a student copy, or grade copies")
    asub = a.add_subparsers(dest="action", parser_class=_Parser)
    from .coursework.parts import PARTS

    _PART_NAMES = ", ".join(PARTS)
    am = asub.add_parser("make", help="write a student copy with solutions blanked out")
    am.add_argument("out_dir", metavar="OUT_DIR", help="the directory to write the copy to")
    am.add_argument("--parts", default=None,
                    help=f"comma-separated parts, of {_PART_NAMES} (default: all)")
    am.add_argument("--force", action="store_true", help="overwrite a non-empty OUT_DIR")
    am.add_argument("--source", default=None,
                    help="the minis2s checkout to copy (default: the one minis2s runs from; "
                         "an installed package is refused)")
    am.add_argument("--solutions", action="store_true",
                    help="write an instructor's answer copy (the solutions kept)")
    ag = asub.add_parser("grade", help="grade student copies by gradient checks")
    ag.add_argument("dirs", nargs="+", metavar="DIR", help="one or more copies (submissions)")
    ag.add_argument("--parts", default=None,
                    help=f"comma-separated parts, of {_PART_NAMES} (default: the copy's)")
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
    parser.children, parser.children_dest = dict(sub.choices), "command"
    a.children, a.children_dest = dict(asub.choices), "action"
    return parser


BEAM_HELP = ("1: greedy decoding; more: beam search keeping that many hypotheses (default: the "
             "model's, 1, or 4 for the pointer)")


def _add_decoding_args(p, sampling=False):
    """Beam search's options (eval and generate) and, with ``sampling``, generate's sampling
    options; docs/decoding.md explains each."""
    p.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                   help="beam search ranks by log P / ((5 + length) / 6)^ALPHA (GNMT): 0 ranks "
                        "by log P alone, larger favours longer outputs (GNMT: 0.6-1); default: "
                        "log P / length, the mean per token")
    p.add_argument("--coverage-penalty", type=float, default=0.0, metavar="BETA",
                   help="beam search adds BETA * sum over source words of log(min(attention "
                        "received, 1)) (Wu et al. 2016), favouring outputs that attend to every "
                        "source word; models with attention only")
    p.add_argument("--min-len", type=int, default=0, metavar="N",
                   help="no end token before N output tokens")
    p.add_argument("--no-repeat-ngram", type=int, default=0, metavar="N",
                   help="never repeat an N-gram of tokens within an output (0: off)")
    what = ("print the K best outputs of the beam per input, with their scores"
            if sampling else "also report the oracle exact match: the share of references "
            "among the K best outputs of the beam")
    p.add_argument("--n-best", type=int, default=1, metavar="K",
                   help=f"{what}; --beam-size is then at least K (default: 1)")
    if not sampling:
        return
    p.add_argument("--sample", action="store_true",
                   help="draw each token at random (see --temperature, --top-k, --top-p, "
                        "--seed) instead of greedy decoding or beam search")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="--sample: divide the log-probabilities by this (> 0): below 1 sharper, "
                        "above 1 flatter")
    p.add_argument("--top-k", type=int, default=0, metavar="K",
                   help="--sample: draw among the K most probable tokens only (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, metavar="P",
                   help="--sample: draw among the nucleus, the fewest most probable tokens of "
                        "total probability >= P (1: all)")
    p.add_argument("--seed", type=int, default=None,
                   help="--sample: the seed of the draws, for the same outputs again (default: "
                        "different draws every run)")


SAMPLING_FLAGS = (("--temperature", "temperature", 1.0), ("--top-k", "top_k", 0),
                  ("--top-p", "top_p", 1.0), ("--seed", "seed", None))


def _decoding_options(args, model, recorded=None):
    """The keyword arguments of ``model.generate`` that the decoding flags ask for (the
    library checks their values; its messages name the flags). ``recorded``: the decoding
    that the checkpoint records (its task's recipe: beam size and length penalty), used where
    the flags do not say otherwise."""
    options = dict(beam_size=args.beam_size)
    for name in ("length_penalty", "coverage_penalty", "min_len", "no_repeat_ngram"):
        options[name] = getattr(args, name)
    sample = getattr(args, "sample", False)
    if recorded and not sample:
        if options["beam_size"] is None and args.n_best == 1:
            options["beam_size"] = recorded.get("beam_size")
        beam = options["beam_size"] or model.default_beam_size
        if options["length_penalty"] is None and beam > 1:
            options["length_penalty"] = recorded.get("length_penalty")
    if args.n_best != 1:
        options["n_best"] = args.n_best
        if args.beam_size is None and args.n_best > 1 and not sample:
            options["beam_size"] = max(args.n_best, model.default_beam_size)
    if not sample:
        for flag, name, default in SAMPLING_FLAGS if hasattr(args, "sample") else ():
            if getattr(args, name) != default:
                raise UserError(f"{flag} applies to --sample only (sampling); greedy decoding "
                                "and beam search draw nothing at random")
        return options
    if args.attention_png:
        raise UserError("--attention draws the attention of greedy decoding or beam search, "
                        "not of --sample's random draws")
    _positive("temperature", args.temperature)
    options.update(sample=True, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, seed=args.seed)
    if options["beam_size"] is None:
        del options["beam_size"]
    return options


def _n_best_texts(model, codec, texts, max_len, options, batch_size=256):
    """``model.generate(..., n_best=k)`` on ``texts`` read as in training: per text a list of
    ``(output text, score)``, best first ([] for an empty text)."""
    from .data.translate import encode_sources

    prepared = [codec.src_tokenizer.prepare(t) if t.strip() else "" for t in texts]
    todo = sorted((k for k, t in enumerate(prepared) if t.strip()),
                  key=lambda k: len(codec.src_vocab.tokenize(prepared[k])))
    out = [[] for _ in texts]
    for i in range(0, len(todo), batch_size):
        rows = todo[i:i + batch_size]
        src, oovs = encode_sources(model, [prepared[k] for k in rows], codec.src_vocab)
        for k, hyps, row_oovs in zip(rows, model.generate(src, max_len=max_len, **options),
                                     oovs):
            out[k] = [(codec.tgt_tokenizer.restore(codec.tgt_vocab.decode(h.ids, oovs=row_oovs)),
                       h.score) for h in hyps]
    return out


# --- commands ---------------------------------------------------------------------------------
def _positive(name, value):
    if value is not None and value <= 0:
        raise UserError(f"--{name} must be > 0; got {value}")


def _model_class_name(name):
    from .models import MODEL_NAMES

    if name not in MODEL_NAMES:
        raise UserError(f"unknown model {name!r}; {_one_of(MODEL_CHOICES)}")
    return MODEL_NAMES[name]


def _data_config(args, default_sizes, shared=False):
    """The resolved minis2s.data.pipeline.DataConfig of --task / --data / --src-file and the
    reading options (--level, --lowercase, ...; eval and generate have none of these)."""
    from .data.pipeline import DataConfig

    _check_data_args(args)
    from_file = bool(args.data or args.src_file)
    sizes = tuple(getattr(args, n) if getattr(args, n) is not None else d
                  for n, d in zip(("n_train", "n_val", "n_test"), default_sizes))
    cfg = DataConfig(task=None if from_file else (args.task or "dates"), data=args.data,
                     src_file=args.src_file, tgt_file=args.tgt_file, format=args.format,
                     reverse=bool(args.reverse),
                     sizes=(args.n_train, args.n_val, args.n_test) if from_file else sizes,
                     seed=getattr(args, "seed", None) or 0, level=getattr(args, "level", None),
                     lowercase=getattr(args, "lowercase", None), nfc=getattr(args, "nfc", None),
                     min_freq=getattr(args, "min_freq", None),
                     bpe_vocab_size=getattr(args, "bpe_vocab_size", None))
    return cfg.resolve(shared=shared)


def _check_data_args(args):
    """One-line errors for data arguments that do not fit together."""
    for n in ("n_train", "n_val", "n_test", "min_freq", "bpe_vocab_size"):
        _positive(n.replace("_", "-"), getattr(args, n, None))  # before `or` takes a 0
    if args.tgt_file and not args.src_file:
        raise UserError("--tgt-file needs --src-file (the source side of the line-aligned "
                        "files)")
    if args.src_file and not args.tgt_file:
        raise UserError("--src-file needs --tgt-file (the target side of the line-aligned "
                        "files)")
    if args.format != "tsv" and not args.data:
        raise UserError(f"--format {args.format} is for a --data file")


def _load_data(args, default_sizes, shared=False):
    """(train, val, test) string pairs and their resolved DataConfig, from --task, --data or
    --src-file/--tgt-file (minis2s.data.pipeline.load_splits)."""
    from .data.pipeline import load_splits

    cfg = _data_config(args, default_sizes, shared=shared)
    train, val, test = load_splits(cfg)
    return train, val, test, cfg


#: The recommended recipe of a task: what train's flags default to when not given (unless
#: --no-recipe), and the decoding that the checkpoint records for eval, generate and the test
#: score. benchmarks/recipe.py measured each piece and the whole on the Tatoeba task
#: (docs/benchmarks.md, "The training and decoding tools on real sentences").
#: On the Tatoeba task, after the same 3 epochs (test BLEU): plain greedy 28.21; the schedule
#: (lr 2e-3, 200 warmup steps, linear decay) 30.58 greedy and 34.04 with beam search of 5 and
#: length penalty 1.0; with label smoothing 0.1 as well 31.95 and 35.75; plain with that beam
#: search 32.26; dropout 0.2 cost BLEU at this budget (schedule + smoothing + dropout: 31.49),
#: so it is not in the recipe.
RECIPES = {
    "tatoeba": dict(lr=2e-3, lr_schedule="linear", warmup_steps=200, label_smoothing=0.1,
                    decoding=dict(beam_size=5, length_penalty=1.0)),
}
#: the plain setting: the defaults of those flags without a recipe
PLAIN = dict(dropout=0.0, label_smoothing=0.0, lr_schedule="constant", warmup_steps=0)


def _apply_recipe(args):
    """Fill the recipe flags that were not given (None) from the task's recipe, or the plain
    setting (with --no-recipe, for a user's file, and for --resume, which goes on with what the
    checkpoint records); returns the recipe's decoding options (or None)."""
    use = args.recipe and not (args.data or args.src_file or args.resume)
    recipe = RECIPES.get(args.task, {}) if use else {}
    args.from_recipe = set()  # the flags the recipe filled
    for name, plain in PLAIN.items():
        if getattr(args, name) is None:
            setattr(args, name, recipe.get(name, plain))
            if name in recipe:
                args.from_recipe.add(name)
    if args.lr is None and "lr" in recipe:
        args.lr = recipe["lr"]
        args.from_recipe.add("lr")
    return recipe.get("decoding")


TASK_DEFAULTS = {  # per-task defaults: sizes, D, H, epochs, lr
    # dates: D = 64, not 16. With PyTorch's initialisers (minis2s.init.SCHEME) the attention
    # demo at D = 16 averaged 97.80% test exact match over 3 seeds (2 below 99%); at D = 64,
    # 99.59% over 5 (all at 99.1% or above). docs/benchmarks.md, "The date demo across seeds
    # and initialisers".
    "dates": dict(sizes=(45000, 1000, 5000), embed_dim=64, hidden_dim=256, epochs=4, lr=2e-3),
    # addition and copy: more epochs than before PyTorch's initialisers (10 and 5), with which
    # these small models start more slowly; the default runs then end at least as well as the
    # older initialisers' did (docs/benchmarks.md, "The other generated tasks").
    "addition": dict(sizes=(20000, 1000, 2000), embed_dim=16, hidden_dim=128, epochs=20, lr=2e-3),
    "copy": dict(sizes=(10000, 500, 1000), embed_dim=16, hidden_dim=128, epochs=10, lr=2e-3),
    "reverse": dict(sizes=(10000, 500, 1000), embed_dim=16, hidden_dim=128, epochs=5, lr=2e-3),
    "entities": dict(sizes=(20000, 500, 1000), embed_dim=64, hidden_dim=128, epochs=8, lr=2e-3),
    # the shipped corpora: their fixed splits (None: all of a part); tatoeba as the init study
    "tatoeba": dict(sizes=(None, None, None), embed_dim=256, hidden_dim=256, epochs=6, lr=1e-3),
    "dlfs2-date": dict(sizes=(None, None, None), embed_dim=16, hidden_dim=256, epochs=10,
                       lr=1e-3),  # the book's chapter 8: D=16, H=256, 10 epochs, Adam 1e-3
    "dlfs2-addition": dict(sizes=(None, None, None), embed_dim=16, hidden_dim=128, epochs=25,
                           lr=1e-3),  # the book's chapter 7: D=16, H=128, 25 epochs
    None: dict(sizes=(0, 0, 0), embed_dim=64, hidden_dim=128, epochs=10, lr=2e-3),
}


def cmd_train(args):
    from . import optim
    from .data.pipeline import Codec
    from .models import MODELS
    from .train import fit

    cls_name = _model_class_name(args.model)  # the arguments: checked by _check_train_args
    out = _train_out(args)
    from_file = args.data or args.src_file
    defaults = TASK_DEFAULTS.get(None if from_file else (args.task or "dates"), TASK_DEFAULTS[None])
    shared = cls_name == "PointerGenerator"
    # The pointer-generator learns to copy only if training sources hold words outside the
    # vocabulary: at word level the default keeps only words seen 5+ times, so rare names
    # become copy slots (minis2s.data.pipeline.DataConfig.resolve).
    train, val, test, cfg = _load_data(args, defaults["sizes"], shared=shared)
    if args.resume:
        return _resume_train(args, out, train, val, args.epochs or defaults["epochs"], test=test)
    if from_file and args.level is None:
        print(f"note: reading {from_file} at char level (the default for a file); give "
              "--level word or --level subword for sentences")
    # tokenisers (BPE pieces at subword level) and vocabularies from the training split only;
    # pointer: each row's OOV words get extended ids V + k (copied, then mapped back to words)
    codec = Codec.build(train, cfg, shared=shared)
    src_vocab, tgt_vocab = codec.src_vocab, codec.tgt_vocab
    long = dict(max_len=args.max_len, on_long=args.on_long)
    train_ids = codec.encode(train, **long)
    val_ids = codec.encode(val, **long)
    D = args.embed_dim or defaults["embed_dim"]
    H = args.hidden_dim or defaults["hidden_dim"]
    kw = dict(embed_dim=D, hidden_dim=H, num_layers=args.layers,
              bidirectional=args.bidirectional, dtype=args.dtype, seed=args.seed,
              label_smoothing=args.label_smoothing)
    kw.update(_dropout_kwargs(args))
    if cls_name == "AttentionSeq2Seq":
        kw["attention"] = args.attention or "dot"
    if cls_name == "PointerGenerator":
        kw["coverage"] = args.coverage
        model = MODELS[cls_name](len(src_vocab), **kw)
    else:
        model = MODELS[cls_name](len(src_vocab), len(tgt_vocab), **kw)
    opt = optim.Adam(model.params, model.grads, lr=args.lr or defaults["lr"],
                     weight_decay=args.weight_decay, decay_biases=args.decay_biases,
                     decay_embeddings=args.decay_embeddings)
    epochs = args.epochs or defaults["epochs"]
    if "warmup_steps" in args.from_recipe:  # at most a tenth of a short run's steps
        from .data.batching import make_batches

        steps = epochs * len(make_batches(train_ids, args.batch_size, shuffle=True,
                                          seed=args.seed))
        args.warmup_steps = min(args.warmup_steps, steps // 10)
    tools = _training_tools(args, opt)  # schedule, early_stopping, best_metric
    tools["teacher_forcing"] = tf = _teacher_forcing(args)
    if tf is not None:
        print(f"scheduled sampling: {tf!r} (each decoder input is gold with this ratio, else "
              "the model's own previous prediction)")
    if args.decoding:  # the task's recipe filled the flags not given
        d = args.decoding
        print(f"recipe of {args.task} (flags given take precedence; --no-recipe: the plain "
              f"setting): lr {args.lr:g}, {args.lr_schedule} schedule after "
              f"{args.warmup_steps} warmup steps, dropout {args.dropout:g}, label smoothing "
              f"{args.label_smoothing:g}; decoding: beam search of {d['beam_size']}, length "
              f"penalty {d['length_penalty']:g}")
    print(f"data: {cfg.describe()}; vocabularies of {len(src_vocab):,} and "
          f"{len(tgt_vocab):,} tokens")
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
                  progress=not args.no_progress,
                  extra={"data": cfg.to_dict(), "tokenizers": codec.tokenizers_dict(),
                         "decoding": args.decoding}, **tools)
    return _finish_train(model, res, val, src_vocab, tgt_vocab, out, codec=codec, test=test,
                         decoding=args.decoding)


def _check_optim_args(args):
    """One-line errors for the weight decay, schedule and early stopping flags."""
    if args.weight_decay < 0:
        raise UserError(f"--weight-decay must be >= 0; got {args.weight_decay}")
    for flag in ("decay_biases", "decay_embeddings"):
        if getattr(args, flag) and not args.weight_decay:
            raise UserError(f"--{flag.replace('_', '-')} needs --weight-decay > 0")
    for flag in ("warmup_steps", "plateau_patience", "early_stopping_patience"):
        value = getattr(args, flag)
        if value is not None and value < 0:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 0; got {value}")
    if args.min_lr < 0:
        raise UserError(f"--min-lr must be >= 0; got {args.min_lr}")
    if args.lr is not None and args.min_lr > args.lr:
        raise UserError(f"--min-lr must be <= --lr; got --min-lr {args.min_lr} and --lr "
                        f"{args.lr}")
    plateau = args.lr_schedule == "plateau"
    if not 0 < args.plateau_factor < 1:
        raise UserError(f"--plateau-factor must be in (0, 1); got {args.plateau_factor}")
    given = lambda flag, default: getattr(args, flag) != default  # noqa: E731
    if not plateau and (given("plateau_patience", 1) or given("plateau_factor", 0.5)):
        raise UserError("--plateau-patience and --plateau-factor need --lr-schedule plateau")
    if plateau and args.warmup_steps:
        raise UserError("--warmup-steps is for --lr-schedule constant, linear, cosine or "
                        "inverse-sqrt; plateau has no warmup")
    if args.lr_schedule == "constant" and args.min_lr:
        raise UserError("--min-lr needs --lr-schedule linear, cosine, inverse-sqrt or plateau "
                        "(a constant rate has no floor)")
    if args.resume and (args.lr_schedule != "constant" or args.weight_decay or
                        args.early_stopping_patience is not None):
        print("note: --resume goes on with the weight decay, schedule and early stopping that "
              "the checkpoint records; their flags are not used", file=sys.stderr)


def _training_tools(args, opt):
    """fit's schedule, early_stopping and best_metric from the flags (minis2s.optim)."""
    from . import optim

    lr = opt.lr  # before a warmup lowers it
    plateau = args.lr_schedule == "plateau"
    stopping = args.early_stopping_patience is not None
    metric = args.early_stopping_metric or ("loss" if plateau or stopping else "exact")
    if plateau:
        schedule = optim.ReduceLROnPlateau(opt, metric, factor=args.plateau_factor,
                                           patience=args.plateau_patience, min_lr=args.min_lr)
    elif args.lr_schedule != "constant" or args.warmup_steps:
        if args.min_lr > opt.lr:
            raise UserError(f"--min-lr must be <= the learning rate {opt.lr}; got "
                            f"{args.min_lr}")
        schedule = optim.WarmupSchedule(opt, args.lr_schedule, warmup_steps=args.warmup_steps,
                                        min_lr=args.min_lr)  # fit sets total_steps
    else:
        schedule = None
    early = optim.EarlyStopping(args.early_stopping_patience, metric) if stopping else None
    parts = [f"Adam lr {lr:g}"]
    if opt.weight_decay:
        parts.append(f"weight decay {opt.weight_decay:g} on {len(opt.decayed)} of "
                     f"{len(opt.params)} parameters")
    if schedule is not None:
        parts.append(f"schedule {args.lr_schedule}" + (
            f" after {args.warmup_steps} warmup steps" if args.warmup_steps else ""))
    if early is not None:
        parts.append(f"early stopping on val {metric} (patience {early.patience})")
    if len(parts) > 1 or metric != "exact":
        print("optimizer: " + "; ".join(parts) + f"; best.ckpt follows val {metric}")
    return {"schedule": schedule, "early_stopping": early, "best_metric": metric}


def _finish_train(model, res, val, src_vocab, tgt_vocab, out, codec=None, test=None,
                  decoding=None):
    """After training: example outputs and their pictures, the test score of best.ckpt when
    there is a test split, metrics.json, and the list of every file written."""
    from .files import atomic_write

    files = list(res.files)
    files += _save_examples(model, val[:4], src_vocab, tgt_vocab, out, codec=codec)
    metrics = {k: v for k, v in res.history.items()
               if not k.startswith("step_")}  # per epoch (lr: the rate of each epoch's last step)
    summary = f"best validation exact match {res.best_exact:.4f}"
    if res.best_metric != "exact" and res.best_value is not None:  # best.ckpt followed another
        summary = (f"best.ckpt: the best validation {res.best_metric} {res.best_value:.4f}; "
                   f"{summary}")
    if test and codec is not None and res.checkpoint:
        score = _test_score(res.checkpoint, test, codec, decoding)
        metrics.update(test_exact=score["exact_match"], test_token_acc=score["token_accuracy"],
                       n_test=score["n"])
        summary += (f"; test exact match {score['exact_match']:.4f}, token accuracy "
                    f"{score['token_accuracy']:.4f} ({score['n']:,} test examples, best.ckpt)")
        if "bleu" in score:  # text: BLEU and chrF of the detokenised outputs
            metrics.update(test_bleu=score["bleu"], test_chrf=score["chrf"],
                           test_decoding=score["decoding"])
            summary += (f"\ntest BLEU {score['bleu']:.2f}, chrF {score['chrf']:.2f} "
                        f"({score['decoding']}, detokenised, against the raw references; "
                        f"{score['bleu_signature']})")
    path = os.path.join(out, "metrics.json")
    atomic_write(path, json.dumps(metrics, indent=1) + "\n")
    files.append(path)
    print(summary)
    names = ", ".join(os.path.basename(f) for f in dict.fromkeys(files))
    print(f"wrote {len(set(files))} files to {out}{os.sep}: {names}")
    return 0


def _test_score(checkpoint, test, codec, decoding=None):
    """Exact match and token accuracy of ``checkpoint``'s model on the test pairs (greedy); for
    word or subword level text also corpus BLEU and chrF (sacrebleu) of its outputs, decoded
    as ``decoding`` says (the task's recipe: beam size and length penalty), else greedily."""
    from .checkpoint import load_checkpoint
    from .train import evaluate

    model = load_checkpoint(checkpoint).model
    score = dict(evaluate(model, codec.encode(test)))
    if codec.tgt_tokenizer.level in ("word", "subword"):
        options = dict(decoding or {"beam_size": 1})
        hyps = codec.translate(model, [s for s, _ in test], **options)
        text = codec.score(hyps, [t for _, t in test])
        how = "greedy" if options.get("beam_size", 1) == 1 else (
            f"beam search of {options['beam_size']}, length penalty "
            f"{options.get('length_penalty')}")
        score.update(bleu=text["bleu"], chrf=text["chrf"], decoding=how,
                     bleu_signature=text.get("bleu_signature", ""))
    return score


def _resume_train(args, out, train, val, epochs, test=None):
    """``train --resume``: go on from ``out/last.ckpt`` (minis2s.train.resume)."""
    from .checkpoint import load_checkpoint
    from .data.pipeline import Codec
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
    codec = Codec.from_checkpoint(ck)  # the run's own tokenisers and vocabularies
    src_vocab, tgt_vocab = codec.src_vocab, codec.tgt_vocab
    long = dict(max_len=args.max_len, on_long=args.on_long)
    train_ids = codec.encode(train, **long)
    val_ids = codec.encode(val, **long)
    print(f"resuming {type(ck.model).__name__} from {path} after epoch {done}, up to epoch "
          f"{epochs}; backend {_backend_name()}")
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # as in cmd_train
        model, _opt, res = resume(path, train_ids, val_ids, epochs=epochs,
                                  batch_size=args.batch_size, clip=args.clip, out_dir=out,
                                  on_nonfinite=args.on_nonfinite, progress=not args.no_progress)
    # the test is scored as the run's first part would have scored it (the recipe's decoding)
    return _finish_train(model, res, val, src_vocab, tgt_vocab, out, codec=codec, test=test,
                         decoding=ck.extra.get("decoding"))


def _save_examples(model, pairs, src_vocab, tgt_vocab, out, codec=None):
    """Print a few validation translations and save pictures of the model's attention for
    them (models with attention). Returns the paths of the pictures. ``codec``
    (minis2s.data.pipeline.Codec): tokenise the sources and detokenise the outputs as in
    training."""
    from .data.translate import encode_sources, translate
    from .plots import plot_examples

    texts, refs = [s for s, _ in pairs], [t for _, t in pairs]
    outputs = (codec.translate(model, texts, max_len=60) if codec is not None
               else translate(model, texts, src_vocab, tgt_vocab, max_len=60))
    for s, t, o in zip(texts, refs, outputs):
        print(f"  {s!r} -> {o!r} (reference {t!r}{'' if o == t else ', wrong'})")
    if _is_seq2seq(model):
        return []
    if codec is not None:  # the tokens the model reads
        texts = [codec.src_tokenizer.prepare(t) for t in texts]
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
    from .data.pipeline import Codec

    ck = _load_ckpt(args.checkpoint)
    codec = Codec.from_checkpoint(ck)  # the tokenisers and normalisation of training
    texts = _generate_inputs(args)
    given = [t for t in texts if t.strip()]
    if not given:
        raise UserError("input is empty: give a non-empty string to translate")
    unknown = codec.unknown_source_tokens(given)
    if unknown:  # say so, as encode_pairs does for a data set
        what = ("got extended OOV ids (the pointer can copy them)" if _is_pointer(ck.model)
                else "became <unk>")
        top = ", ".join(f"{t!r} x{c}" for t, c in unknown.most_common(5))
        logging.getLogger("minis2s.data").warning(
            "%d input tokens are not in the source vocabulary and %s: %s",
            sum(unknown.values()), what, top)
    options = _decoding_options(args, ck.model, ck.extra.get("decoding"))
    if "n_best" in options:  # per input: the input, then "rank  score  output" lines
        n_best = _n_best_texts(ck.model, codec, texts, args.max_len, options)
        for k, (text, hyps) in enumerate(zip(texts, n_best)):
            print(f"input {k + 1}: {text!r}")
            for rank, (out, score) in enumerate(hyps, 1):
                print(f"  {rank}  {score:.4f}  {out}")
        outputs = [h[0][0] if h else "" for h in n_best]
        del options["n_best"]
    else:  # an empty line gives an empty output line, so outputs stay aligned with the inputs
        outputs = codec.translate(ck.model, texts, max_len=args.max_len, **options)
        for line in outputs:
            print(line)
    for warning in _output_warnings(ck, codec, texts, outputs, args.max_len):
        print(f"warning: {warning}", file=sys.stderr)
    if args.attention_png:
        for path in _draw_attention(ck.model, codec, texts, args.attention_png, args.max_len,
                                    options):
            print(f"attention heatmap: {path}", file=sys.stderr)
    return 0


DATE_YEARS = (1950, 2049)  #: the years of the dates task (minis2s.data.tasks.dates)


def _output_warnings(ck, codec, texts, outputs, max_len):
    """What generate says about its outputs on standard error: an output that reached
    --max-len (it may be cut), and for a model of the dates task an output that is not a valid
    ISO date, or an input year outside the years the model learned."""
    task = (ck.extra.get("data") or {}).get("task")
    many = len(texts) > 1
    for k, (text, out) in enumerate(zip(texts, outputs)):
        which = f"output {k + 1} " if many else "the output "
        if out and codec.target_length(out) >= max_len:
            yield (f"{which}{out!r} reached --max-len {max_len} before the end token, so it may "
                   "be cut: give a larger --max-len")
        if task == "dates" and text.strip():
            lo, hi = DATE_YEARS
            years = [int(y) for y in re.findall(r"(?<!\d)(\d{4})(?!\d)", text)]
            if any(not lo <= y <= hi for y in years):
                yield (f"input {text!r} has a year outside {lo}-{hi}, the years the dates model "
                       "learned: its output is a guess")
            if not _is_iso_date(out, lo, hi):
                yield (f"{which}{out!r} is not a valid ISO date (YYYY-MM-DD of a real day in "
                       f"{lo}-{hi}): the input {text!r} may be an impossible date, or not a "
                       "date in one of the formats the model learned (README.md lists them)")


def _is_iso_date(text, first_year, last_year):
    import datetime

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:  # 2019-02-29
        return False
    return first_year <= day.year <= last_year


def _generate_inputs(args):
    """The lines to translate: the arguments, the lines of --input FILE, or standard input
    ('-' as --input or as the only argument)."""
    from .data.io import load_lines

    if args.input is not None and args.inputs:
        raise UserError("give input strings or --input FILE, not both")
    source = args.input if args.input is not None else (
        "-" if args.inputs == ["-"] else None)
    if source is None:
        if not args.inputs:
            raise UserError("give input strings, --input FILE, or '-' to read standard input")
        return list(args.inputs)
    if source == "-":
        lines = sys.stdin.read().split("\n")
        if lines[-1] == "":  # the newline that ends the last line
            lines.pop()
        return [line.rstrip("\r") for line in lines]
    return load_lines(source)


def _draw_attention(model, codec, texts, png, max_len, options):
    """Attention heatmaps (minis2s.plots.attention_heatmap) of the non-empty ``texts``: at
    ``png`` for one input, else ``<stem>_<k><ext>`` for input line k, decoded with
    ``options`` (beam_size and the penalties). Returns the paths."""
    import matplotlib.pyplot as plt

    from .constants import EOS
    from .data.translate import encode_sources
    from .plots import attention_heatmap

    if _is_seq2seq(model):
        raise UserError("--attention needs a model with attention; the checkpoint holds a "
                        "Seq2Seq")
    rows = [k for k, t in enumerate(texts) if t.strip()]
    prepared = [codec.src_tokenizer.prepare(texts[k]) for k in rows]
    src, oovs = encode_sources(model, prepared, codec.src_vocab)
    ids, traces = model.generate(src, max_len=max_len, trace=True, **options)
    stem, ext = os.path.splitext(png)
    paths = []
    for j, (k, out_ids, tr, row_oovs) in enumerate(zip(rows, ids, traces, oovs)):
        src_tokens = codec.src_vocab.tokenize(prepared[j])
        out_tokens = [codec.tgt_vocab.decode([i], strip_special=False, oovs=row_oovs)
                      for i in out_ids]
        if tr["alpha"].shape[0] > len(out_ids):  # the EOS step has weights too
            out_tokens.append(codec.tgt_vocab.itos[EOS])
        path = png if len(rows) == 1 else f"{stem}_{k + 1}{ext or '.png'}"
        output = codec.tgt_tokenizer.restore(codec.tgt_vocab.decode(out_ids, oovs=row_oovs))
        title = (f"attention weights\nsource: {texts[k]!r}\noutput: {output!r}").replace(
            "$", "\\$")  # never mathtext
        plt.close(attention_heatmap(tr["alpha"], src_tokens, out_tokens, path=path,
                                    title=title))
        paths.append(path)
    return paths


def _eval_config(args, ck, notes):
    """What eval scores: --data / --src-file (every line), --task, or the task or file the
    checkpoint records (its test split, rebuilt as in training)."""
    import dataclasses

    from .data.pipeline import DataConfig

    rec = ck.extra.get("data")
    rec = DataConfig.from_dict(rec) if rec else None
    _check_data_args(args)
    if args.data or args.src_file:
        return DataConfig(data=args.data, src_file=args.src_file, tgt_file=args.tgt_file,
                          format=args.format, reverse=bool(args.reverse)).resolve(), False
    if args.task and not (rec and rec.task == args.task):
        if rec:
            notes.append(f"note: {ck.path} was trained on {rec.describe()}; scoring it on the "
                         f"task {args.task}")
        defaults = TASK_DEFAULTS.get(args.task, TASK_DEFAULTS[None])["sizes"]
        sizes = tuple(d if a is None else a for a, d in
                      zip((args.n_train, args.n_val, args.n_test), defaults))
        return DataConfig(task=args.task, reverse=bool(args.reverse), sizes=sizes,
                          seed=args.seed or 0).resolve(), True
    if rec is None:
        raise UserError(f"{ck.path} does not record the data it was trained on (written by an "
                        "older minis2s); give --task or --data")
    changes = {}
    if rec.sizes is not None and (args.n_train or args.n_val):
        changes["sizes"] = (args.n_train or rec.sizes[0], args.n_val or rec.sizes[1],
                            rec.sizes[2])
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.reverse:
        changes["reverse"] = True
    return dataclasses.replace(rec, **changes), True


def cmd_eval(args):
    from .data.pipeline import Codec, load_eval_pairs, load_splits, write_predictions

    ck = _load_ckpt(args.checkpoint)
    codec = Codec.from_checkpoint(ck)
    notes = []  # printed once the data has loaded, so that an error stays one line
    cfg, held_out = _eval_config(args, ck, notes)
    if not codec.recorded:
        how = "characters" if codec.src_vocab.level == "char" else "words split at spaces"
        notes.append(f"note: {args.checkpoint} does not record its tokeniser (an older "
                     f"checkpoint): reading text as its vocabularies imply ({how})")
    if held_out and cfg.source != "task":  # the test part of the file the run was trained on
        pairs = load_splits(cfg)[2]
        pairs = pairs if args.n_test is None else pairs[:args.n_test]
        what = f"the test part of {cfg.data or cfg.src_file}"
    else:
        pairs = load_eval_pairs(cfg, n=args.n_test)
        what = f"the test split of {cfg.describe().split(';')[0]}" if held_out else \
            f"every line of {cfg.data or cfg.src_file}"
    if not pairs:
        raise UserError(f"{what}: no pairs to score")
    for note in notes:
        print(note, file=sys.stderr)
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    max_len = max(codec.target_length(r) for r in refs) + 5
    options = _decoding_options(args, ck.model, ck.extra.get("decoding"))
    if "n_best" in options:
        n_best = _n_best_texts(ck.model, codec, sources, max_len, options)
        hyps = [h[0][0] if h else "" for h in n_best]
    else:
        hyps = codec.translate(ck.model, sources, max_len=max_len, **options)
    res = codec.score(hyps, refs)
    if "n_best" in options:  # the share of references among the k best
        exact = [[e for _, e in codec.sentence_scores([h for h, _ in hs], [r] * len(hs))]
                 for hs, r in zip(n_best, refs)]
        res.update(n_best=options["n_best"],
                   oracle_exact_match=sum(max(e) for e in exact) / len(exact))
    if args.predictions:
        write_predictions(args.predictions, sources, refs, hyps,
                          codec.sentence_scores(hyps, refs))
    if args.json:  # for scripts: one JSON object on standard output, the summary on stderr
        print(f"{what}: {res['n']:,} pairs; exact match {res['exact_match']:.4f}, token "
              f"accuracy {res['token_accuracy']:.4f}; BLEU {res['bleu']:.2f}; chrF "
              f"{res['chrf']:.2f}", file=sys.stderr)
        print(json.dumps(res))
    else:
        print(_score_table(what, res))
    return 0


def _score_table(what, res):
    """eval's scores as a small table for people (``--json`` gives them to scripts)."""
    rows = [("exact match", f"{res['exact_match']:.4f}", "outputs equal to the reference"),
            ("token accuracy", f"{res['token_accuracy']:.4f}", "tokens right, position by "
                                                                "position")]
    if "oracle_exact_match" in res:
        rows.append((f"oracle exact@{res['n_best']}", f"{res['oracle_exact_match']:.4f}",
                     f"the reference among the {res['n_best']} best outputs"))
    for key, name in (("bleu", "BLEU"), ("chrf", "chrF")):
        if key in res:
            rows.append((name, f"{res[key]:.2f}", res.get(f"{key}_signature", "")))
    width = max(len(r[0]) for r in rows)
    lines = [f"{what}: {res['n']:,} pairs"]
    lines += [f"  {name:<{width}}  {value:>7}  {note}".rstrip() for name, value, note in rows]
    return "\n".join(lines)


def cmd_gradcheck(args):
    from .gradcheck import check_model
    from .testing import tiny_batch, tiny_model

    cls_name = _model_class_name(args.model)
    model = tiny_model(cls_name, num_layers=args.layers, bidirectional=args.bidirectional,
                       attention=args.attention or "dot", coverage=args.coverage,
                       seed=args.seed)
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
    from . import backend
    from .backend import BackendError
    from .checkpoint import CheckpointError
    from .data.tokenize import MissingExtraError
    from .train import NonFiniteError

    debug = bool(os.environ.get("MINIS2S_DEBUG"))
    parser, chosen = build_parser(), None
    before = backend.name, backend.impl()  # one command's --backend/--impl end with it
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help and --version print, then end here
            return e.code if isinstance(e.code, int) else 0
        chosen = _chosen_parser(parser, args)
        if not args.command:
            raise UserError("give a command: train, eval, generate, gradcheck or assignment "
                            "(see minis2s --help)")
        if args.command != "assignment":
            _refuse_a_copy_it_does_not_run()
        name = getattr(args, "backend_sub", None) or args.backend
        if name:
            backend.use(name)
        tier = getattr(args, "impl_sub", None) or args.impl
        if tier:
            backend.use_impl(tier)
        if args.command in ("train", "gradcheck"):
            _check_model_options(args)
        _check_input_files(args)
        if args.command == "train":
            from .train import claim_run_dir

            _check_train_args(args)
            lock = claim_run_dir(_train_out(args), force=args.force, resume=args.resume)
            try:
                return cmd_train(args)
            finally:
                lock.release()
        return COMMANDS[args.command](args)
    except (UserError, BackendError, CheckpointError, OSError, ValueError, TypeError,
            MissingExtraError) as e:
        if debug:
            raise
        print(f"minis2s: error: {_for_the_command_line(e, chosen)}", file=sys.stderr)
        return 2
    except NonFiniteError as e:  # training diverged (e.g. --lr too large)
        if debug:
            raise
        print(f"minis2s: error: {_for_the_command_line(e, chosen)} (try a smaller --lr; the "
              "last good checkpoint is kept)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minis2s: interrupted", file=sys.stderr)
        return 130
    finally:
        if (backend.name, backend.impl()) != before:
            backend.use(before[0])
            backend.use_impl(before[1])


def _chosen_parser(parser, args):
    """The parser of the (sub)command that ``args`` ran."""
    while parser.children and getattr(args, parser.children_dest, None) in parser.children:
        parser = parser.children[getattr(args, parser.children_dest)]
    return parser


def _for_the_command_line(error, parser):
    """An error's message as one line in the command line's words: the flags (``--beam-size``,
    ``--force``) where the library names its parameters (``beam_size``, ``force=True``), an
    OSError as "PATH: reason", and every list of choices as "choose one of: a, b"."""
    msg = str(error)
    if isinstance(error, OSError) and error.strerror:  # not "[Errno 28] ..."
        msg = error.strerror
        if error.filename and str(error.filename) not in msg:
            msg = f"{error.filename}: {msg}"
    msg = " ".join(msg.split("\n"))
    for action in parser._actions if parser is not None else ():
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs:
            continue
        flag = longs[0]
        for name in {action.dest, flag[2:].replace("-", "_")}:
            msg = re.sub(rf"(?<![\w.\-/]){re.escape(name)}=True\b", flag, msg)
            if "_" in name:
                msg = re.sub(rf"(?<![\w.\-/]){re.escape(name)}(?![\w(/])", flag, msg)

    def items(m):
        return "one of: " + ", ".join(x.strip().strip("'\"") for x in m.group(1).split(",")
                                      if x.strip())

    msg = re.sub(r"\bone of [\[(]([^\])]*)[\])]", items, msg)
    return re.sub(r"\bchoose from\b:?", "choose one of:", msg)


def _check_model_options(args):
    """Refuse the model options that do not apply to --model (rather than ignore them)."""
    if getattr(args, "resume", False):
        return
    if args.coverage and args.model != "pointer":
        raise UserError(f"--coverage applies to --model pointer only (coverage is part of the "
                        f"pointer-generator's attention), not to --model {args.model}")
    if args.attention is not None and args.model == "seq2seq":
        raise UserError("--attention applies to --model attention only: the plain seq2seq has "
                        "no attention")
    if args.attention is not None and args.model == "pointer":
        raise UserError("--attention applies to --model attention only: the pointer-generator "
                        "always uses additive attention (See et al. 2017)")


INPUT_FILES = (("--data", "data", "a file of 'source<TAB>target' lines"),
               ("--src-file", "src_file", "a text file with one source sentence per line"),
               ("--tgt-file", "tgt_file", "a text file with one target sentence per line"),
               ("--input", "input", "a text file with one input per line"))


def _check_input_files(args):
    """A directory or a missing file given for a file flag: say which flag, and what it
    expects."""
    for flag, name, expected in INPUT_FILES:
        path = getattr(args, name, None)
        if not path or path == "-":
            continue
        if os.path.isdir(path):
            raise UserError(f"{flag} {path} is a directory; {flag} expects {expected}")
        if not os.path.exists(path):
            raise UserError(f"{flag} {path}: no such file; {flag} expects {expected}")


def _check_train_args(args):
    """train's arguments, checked before its --out is claimed and its data loaded."""
    for n in ("epochs", "batch_size", "embed_dim", "hidden_dim", "layers", "lr", "max_len",
              "min_freq"):
        _positive(n.replace("_", "-"), getattr(args, n))
    if args.clip < 0:
        raise UserError(f"--clip must be >= 0 (0: no clipping); got {args.clip}")
    args.decoding = _apply_recipe(args)
    _dropout_kwargs(args)  # one-line errors for the dropout flags
    if not 0 <= args.label_smoothing < 1:
        raise UserError(f"--label-smoothing must be in [0, 1) (0: none); got "
                        f"{args.label_smoothing}")
    _check_optim_args(args)
    _teacher_forcing(args)  # one-line errors for the scheduled-sampling flags
    if args.resume and (args.teacher_forcing is not None or args.ss_schedule != "constant"):
        print("note: --resume goes on with the teacher forcing that the checkpoint records; "
              "--teacher-forcing and --ss-* are not used", file=sys.stderr)
    _model_class_name(args.model)


def _train_out(args):
    """train's output directory: --out, or runs/<task>-<model>."""
    return args.out or os.path.join("runs", f"{args.task or 'data'}-{args.model}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
