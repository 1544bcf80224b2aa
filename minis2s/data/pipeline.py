"""From a data configuration to what a model trains on, and from its outputs back to text.

    from minis2s.data.pipeline import DataConfig, load_task_data

    data = load_task_data(DataConfig(task="tatoeba", level="word", min_freq=2))
    train_ids, val_ids = data.encode(data.train), data.encode(data.val)   # for minis2s.train.fit
    ...
    hyps = data.translate(model, [s for s, _ in data.test])               # detokenised text
    print(data.score(hyps, [t for _, t in data.test]))                    # BLEU, chrF, ...

- :class:`DataConfig`: where the pairs come from (a task, a user's file or two line-aligned
  files) and how they are read (``level``, ``lowercase``, ``nfc``, ``min_freq``, ...).
  :meth:`DataConfig.resolve` fills in each option's default for that source, and the resolved
  configuration is what a checkpoint records (``extra["data"]``), so that ``minis2s eval`` and
  ``generate`` can rebuild the same test split and read text the same way.
- :class:`Codec`: the source and target :class:`~minis2s.data.tokenize.Tokenizer` and
  :class:`~minis2s.data.Vocab`: text pairs to ids (:meth:`Codec.encode`), texts through a model
  to detokenised text (:meth:`Codec.translate`), and the scores of outputs against raw
  references (:meth:`Codec.score`). Tokenisers and vocabularies are learned on the training
  split only (:meth:`Codec.build`).

Defaults (:meth:`DataConfig.resolve`): the generated tasks are read at their own level (char,
words for ``entities``) with no normalisation, exactly as before; ``tatoeba`` at word level,
lowercased, NFC, ``min_freq=2`` (1 at the other levels); the DLFS2 tasks at char level; a
user's file at char level (say ``level="word"`` for sentences), with NFC at word and subword
level. The pointer-generator
(``shared=True``) at word level keeps words seen 5 times or more unless ``min_freq`` is given,
so that rare names are left out of the vocabulary and copied.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .. import metrics
from ..files import atomic_write
from .batching import encode_pairs
from .io import FORMATS, load_pairs
from .splits import split_by_source, subset
from .tasks import CORPUS_TASKS, TASKS, make_splits, task_info, task_level
from .tokenize import LEVELS, Tokenizer, normalize, word_tokenize
from .vocab import Vocab

__all__ = ["DataConfig", "Codec", "TaskData", "load_task_data", "load_splits",
           "load_eval_pairs", "write_predictions"]

_RECORD = "minis2s.data-config"


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs come from and how they are read (see the module docstring).

    Exactly one source: ``task`` (a generated task or a shipped corpus), ``data`` (one file in
    ``format``: ``"tsv"`` or ``"dlfs2"``), or ``src_file`` and ``tgt_file`` (two line-aligned
    files).

    Attributes:
        reverse: swap source and target (``tatoeba``: English -> French).
        sizes: ``(n_train, n_val, n_test)``. A generated task needs all three; for a corpus,
            None means the whole part and an int a seeded subset; for a file, n_val and n_test
            default to 10% each (at least 1) and n_train to the rest.
        seed: the generated task's seed, the seed of a file's split and of subsets.
        level, lowercase, nfc: the tokeniser (None: the source's default).
        min_freq: keep tokens seen at least this often in training (None: the default).
        bpe_vocab_size: subword level: the number of BPE pieces (None: 4000).
        header: a TSV file's header line: ``"auto"``, True or False (see ``load_tsv``).
    """

    task: str | None = None
    data: str | None = None
    src_file: str | None = None
    tgt_file: str | None = None
    format: str = "tsv"
    reverse: bool = False
    sizes: tuple | None = None
    seed: int = 0
    level: str | None = None
    lowercase: bool | None = None
    nfc: bool | None = None
    min_freq: int | None = None
    bpe_vocab_size: int | None = None
    header: object = "auto"

    # -- the source ---------------------------------------------------------------------------
    @property
    def source(self):
        """``"task"``, ``"file"`` or ``"files"`` (two line-aligned files)."""
        given = [k for k, v in (("task", self.task), ("file", self.data),
                                ("files", self.src_file or self.tgt_file)) if v]
        if len(given) != 1:
            raise ValueError("give exactly one data source: a task, a data file, or a source "
                             "and a target file; got " + (" and ".join(given) or "none"))
        if given[0] == "files" and not (self.src_file and self.tgt_file):
            missing = "tgt_file (--tgt-file)" if self.src_file else "src_file (--src-file)"
            raise ValueError(f"two line-aligned files need both src_file and tgt_file; "
                             f"{missing} is missing")
        return given[0]

    @property
    def is_corpus(self):
        return self.task in CORPUS_TASKS

    def langs(self):
        """``(source language, target language)`` for word-level detokenisation."""
        src, tgt = CORPUS_TASKS[self.task].langs if self.is_corpus else (None, None)
        return (tgt, src) if self.reverse else (src, tgt)

    # -- defaults -----------------------------------------------------------------------------
    def resolve(self, shared=False):
        """A copy with every None option replaced by its default for this source (and
        ``shared``, the pointer-generator's one vocabulary); checks every option."""
        source = self.source
        if source == "task":
            if self.task not in TASKS and self.task not in CORPUS_TASKS:
                task_info(self.task)  # the error that lists the tasks
            defaults = (dict(CORPUS_TASKS[self.task].defaults) if self.is_corpus else
                        dict(level=task_level(self.task), lowercase=False, nfc=False,
                             min_freq=1))
        else:
            if self.format not in FORMATS:
                raise ValueError(f"format must be one of {FORMATS}; got {self.format!r}")
            defaults = dict(level="char", lowercase=False, nfc=None, min_freq=1)
        level = self.level or defaults["level"]
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
        nfc = self.nfc if self.nfc is not None else (
            defaults["nfc"] if defaults["nfc"] is not None else level != "char")
        lowercase = self.lowercase if self.lowercase is not None else defaults["lowercase"]
        if self.min_freq is not None:
            min_freq = self.min_freq
        else:
            # the task's own default holds at its own level (tatoeba: words seen twice)
            min_freq = 5 if (shared and level == "word") else (
                defaults["min_freq"] if level == defaults["level"] else 1)
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an int >= 1; got {min_freq!r}")
        if self.bpe_vocab_size is not None and level != "subword":
            raise ValueError(f"bpe_vocab_size (--bpe-vocab-size) applies to level 'subword'; "
                             f"the level is {level!r}")
        sizes = self.sizes
        if sizes is not None:
            if not isinstance(sizes, (tuple, list)) or len(sizes) != 3:
                raise ValueError(f"sizes must be (n_train, n_val, n_test); got {sizes!r}")
            sizes = tuple(sizes)
        if source == "task" and not self.is_corpus and (sizes is None or None in sizes):
            raise ValueError(f"the generated task {self.task!r} needs sizes (n_train, n_val, "
                             f"n_test); got {sizes!r}")
        return dataclasses.replace(self, level=level, lowercase=bool(lowercase), nfc=bool(nfc),
                                   min_freq=min_freq, sizes=sizes)

    # -- records ------------------------------------------------------------------------------
    def to_dict(self):
        """A JSON-safe dict; :meth:`from_dict` inverts it."""
        d = {"format_record": _RECORD, **dataclasses.asdict(self)}
        d["sizes"] = None if self.sizes is None else list(self.sizes)
        return d

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict) or d.get("format_record") != _RECORD:
            raise ValueError(f"not a minis2s data configuration: {d!r:.80}")
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in fields}
        if kw.get("sizes") is not None:
            kw["sizes"] = tuple(kw["sizes"])
        return cls(**kw)

    def describe(self):
        """One line for people: the source and the reading options."""
        if self.source == "task":
            what = f"task {self.task}"
            if self.is_corpus and self.langs()[0]:
                what += f" ({self.langs()[0]} -> {self.langs()[1]})"
            elif self.reverse:
                what += " (reversed)"
        elif self.source == "file":
            what = f"{self.data} ({self.format}{', reversed' if self.reverse else ''})"
        else:
            what = f"{self.src_file} -> {self.tgt_file}"
        opts = [f"{self.level} level"]
        if self.level == "subword":
            opts.append(f"{self.bpe_vocab_size or 4000} BPE pieces")
        if self.lowercase:
            opts.append("lowercased")
        if self.nfc:
            opts.append("NFC")
        if self.min_freq and self.min_freq > 1:
            opts.append(f"min_freq {self.min_freq}")
        return f"{what}; {', '.join(opts)}"


# --- loading ----------------------------------------------------------------------------------
def _swap(pairs):
    return [(t, s) for s, t in pairs]


def _file_pairs(cfg):
    if cfg.source == "file":
        return load_pairs(cfg.data, format=cfg.format, header=cfg.header)
    return load_pairs(src_path=cfg.src_file, tgt_path=cfg.tgt_file)


def load_splits(cfg):
    """``(train, val, test)`` text pairs of a resolved :class:`DataConfig`."""
    if cfg.source == "task":
        parts = make_splits(cfg.task, cfg.sizes, seed=cfg.seed)
    else:
        pairs = _file_pairs(cfg)
        if len(pairs) < 3:
            where = cfg.data or cfg.src_file
            raise ValueError(f"{where}: need at least 3 examples to split into training, "
                             f"validation and test; found {len(pairs)}")
        n_train, n_val, n_test = cfg.sizes or (None, None, None)
        tenth = max(1, len(pairs) // 10)
        train, val, test = split_by_source(pairs, tenth if n_val is None else n_val,
                                           tenth if n_test is None else n_test, seed=cfg.seed)
        parts = (subset(train, n_train, cfg.seed, "the training part"), val, test)
    return tuple(_swap(p) for p in parts) if cfg.reverse else tuple(parts)


def load_eval_pairs(cfg, n=None):
    """The pairs to score for a resolved :class:`DataConfig`.

    A file source: **every** line of the file(s), in order (or the first ``n``). A task: its
    test part (or ``n`` pairs of it: a seeded subset for a corpus, the first ``n`` for a
    generated task; more than a generated test part holds are drawn afresh, keeping only
    sources that the training and validation parts do not hold).
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int or None; got {n!r}")
    if cfg.source != "task":
        pairs = _file_pairs(cfg)
        pairs = _swap(pairs) if cfg.reverse else pairs
        return pairs if n is None else pairs[:n]
    train, val, test = load_splits(cfg)
    if n is None or n == len(test):
        return test
    if cfg.is_corpus:
        return subset(test, n, cfg.seed, f"the test part of {cfg.task!r}")
    if n < len(test):
        return test[:n]
    bigger = dataclasses.replace(cfg, sizes=(cfg.sizes[0], cfg.sizes[1], n))
    seen = {s for s, _ in train} | {s for s, _ in val}
    return [p for p in load_splits(bigger)[2] if p[0] not in seen][:n]


# --- tokenisers + vocabularies ----------------------------------------------------------------
class Codec:
    """Text <-> ids for one model: a tokeniser and a vocabulary per side.

    Args:
        src_tokenizer, tgt_tokenizer: :class:`Tokenizer` (may be the same object).
        src_vocab, tgt_vocab: :class:`Vocab` (the same object for the pointer-generator).
        extended_ids: encode with per-row OOV ids (the pointer-generator copies them).
    """

    def __init__(self, src_tokenizer, tgt_tokenizer, src_vocab, tgt_vocab, extended_ids=False):
        for name, tok in (("src_tokenizer", src_tokenizer), ("tgt_tokenizer", tgt_tokenizer)):
            if not isinstance(tok, Tokenizer):
                raise TypeError(f"{name} must be a Tokenizer; got {type(tok).__name__}")
        for name, tok, vocab in (("src", src_tokenizer, src_vocab),
                                 ("tgt", tgt_tokenizer, tgt_vocab)):
            if not isinstance(vocab, Vocab):
                raise TypeError(f"{name}_vocab must be a Vocab; got {type(vocab).__name__}")
            if vocab.level != tok.vocab_level:
                raise ValueError(f"{name}_vocab has level {vocab.level!r} but the {tok.level!r} "
                                 f"tokeniser needs a {tok.vocab_level!r} vocabulary")
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.extended_ids = bool(extended_ids)

    @classmethod
    def build(cls, train, cfg, shared=False):
        """Learn the tokenisers (BPE pieces at subword level) and vocabularies from the training
        pairs ``train`` for the resolved :class:`DataConfig` ``cfg``. ``shared``: one
        vocabulary (and one BPE model) for both sides, with extended ids (the
        pointer-generator)."""
        if not train:
            raise ValueError("train must hold at least one (source, target) pair")
        src_lang, tgt_lang = cfg.langs()
        kw = dict(lowercase=cfg.lowercase, nfc=cfg.nfc)
        if cfg.level == "subword":
            kw["vocab_size"] = cfg.bpe_vocab_size
        sources, targets = [s for s, _ in train], [t for _, t in train]
        if cfg.level == "subword":
            if shared:
                src_tok = tgt_tok = Tokenizer("subword", **kw).fit(sources + targets)
            else:
                src_tok = Tokenizer("subword", **kw).fit(sources)
                tgt_tok = Tokenizer("subword", **kw).fit(targets)
        else:  # the language only sets word-level spacing
            word = cfg.level == "word"
            src_tok = Tokenizer(cfg.level, lang=src_lang if word else None, **kw)
            tgt_tok = Tokenizer(cfg.level, lang=tgt_lang if word else None, **kw)
        src_texts = [src_tok.prepare(s) for s in sources]
        tgt_texts = [tgt_tok.prepare(t) for t in targets]
        level = src_tok.vocab_level
        if shared:
            src_vocab = tgt_vocab = Vocab.build(src_texts + tgt_texts, level=level,
                                                min_freq=cfg.min_freq)
        else:
            src_vocab = Vocab.build(src_texts, level=level, min_freq=cfg.min_freq)
            tgt_vocab = Vocab.build(tgt_texts, level=level, min_freq=cfg.min_freq)
        return cls(src_tok, tgt_tok, src_vocab, tgt_vocab, extended_ids=shared)

    @classmethod
    def from_checkpoint(cls, ck):
        """The codec a checkpoint written by ``minis2s train`` records (its vocabularies and
        ``extra["tokenizers"]``). A checkpoint from before tokenisers were recorded gets the
        tokenisation its vocabularies imply (characters, or whitespace-separated words), and
        :attr:`recorded` is then False."""
        from .translate import uses_extended_ids

        if "src" not in ck.vocabs or "tgt" not in ck.vocabs:
            raise ValueError(f"{ck.path}: the checkpoint holds no 'src' and 'tgt' vocabularies")
        src_vocab, tgt_vocab = ck.vocabs["src"], ck.vocabs["tgt"]
        if src_vocab == tgt_vocab:
            tgt_vocab = src_vocab
        toks = ck.extra.get("tokenizers")
        if toks:
            src_tok = Tokenizer.from_dict(toks["src"])
            tgt_tok = Tokenizer.from_dict(toks["tgt"])
            if toks["src"] == toks["tgt"]:
                tgt_tok = src_tok
        else:
            src_tok, tgt_tok = (Tokenizer(v.level, split_punctuation=False) if v.level == "word"
                                else Tokenizer("char") for v in (src_vocab, tgt_vocab))
        codec = cls(src_tok, tgt_tok, src_vocab, tgt_vocab,
                    extended_ids=uses_extended_ids(ck.model))
        codec.recorded = bool(toks)
        return codec

    recorded = True  # False: rebuilt for an old checkpoint (see from_checkpoint)

    def tokenizers_dict(self):
        """``{"src": ..., "tgt": ...}`` tokeniser records, for a checkpoint's ``extra``."""
        return {"src": self.src_tokenizer.to_dict(), "tgt": self.tgt_tokenizer.to_dict()}

    # -- text -> ids --------------------------------------------------------------------------
    def prepare(self, pairs):
        """``pairs`` as the vocabularies read them (tokenised, normalised)."""
        return [(self.src_tokenizer.prepare(s), self.tgt_tokenizer.prepare(t)) for s, t in pairs]

    def encode(self, pairs, max_len=None, on_long="truncate"):
        """``(src_ids, tgt_ids)`` examples of text ``pairs`` (see ``encode_pairs``)."""
        return encode_pairs(self.prepare(pairs), self.src_vocab, self.tgt_vocab,
                            max_len=max_len, on_long=on_long, extend_oov=self.extended_ids)

    def target_length(self, text):
        """The number of target tokens of ``text`` (EOS not counted)."""
        return len(self.tgt_vocab.tokenize(self.tgt_tokenizer.prepare(text)))

    def unknown_source_tokens(self, texts):
        """A Counter of the source tokens of ``texts`` that are not in the vocabulary."""
        return self.src_vocab.unknown_tokens([self.src_tokenizer.prepare(t) for t in texts])

    # -- model outputs -> text ------------------------------------------------------------------
    def translate(self, model, texts, max_len=100, beam_size=None, batch_size=256, **options):
        """Detokenised outputs of ``model`` for ``texts``, one per text; an empty (or blank)
        text gives an empty output. Inputs are normalised and tokenised as in training, and
        run in batches of similar lengths. ``options``: the decoding options of
        ``model.generate`` (length_penalty, min_len, sample, seed, ...; not n_best)."""
        from .translate import translate_rows

        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one str")
        texts = list(texts)
        for k, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{k}] must be a str; got {type(t).__name__}")
        prepared = [self.src_tokenizer.prepare(t) if t.strip() else "" for t in texts]
        todo = sorted((k for k, p in enumerate(prepared) if p.strip()),
                      key=lambda k: len(self.src_vocab.tokenize(prepared[k])))
        out = [""] * len(texts)
        for i in range(0, len(todo), batch_size):
            rows = todo[i:i + batch_size]
            done = translate_rows(model, [prepared[k] for k in rows], self.src_vocab,
                                  self.tgt_vocab, max_len=max_len, beam_size=beam_size,
                                  **options)
            for k, tr in zip(rows, done):
                out[k] = self.tgt_tokenizer.restore(tr.text)
        return out

    # -- scores ---------------------------------------------------------------------------------
    def _compare_tokens(self, text):
        tok = self.tgt_tokenizer
        if tok.level == "subword":  # compare words, not BPE pieces
            return word_tokenize(normalize(" ".join(text.split()), tok.lowercase, tok.nfc))
        return tok.tokenize(text)

    def score(self, hyps, refs):
        """Scores of detokenised outputs against raw references: ``exact_match`` and
        ``token_accuracy`` (on the target tokeniser's tokens of the normalised texts; words at
        subword level), corpus ``bleu`` and ``chrf`` with sacrebleu's signatures
        (case-insensitive when the tokeniser lowercases), and ``n``."""
        h = [self._compare_tokens(x) for x in hyps]
        r = [self._compare_tokens(x) for x in refs]
        out = {"n": len(refs), "exact_match": metrics.exact_match(h, r),
               "token_accuracy": metrics.token_accuracy(h, r)}
        out.update(metrics.text_scores(list(hyps), list(refs),
                                       lowercase=self.tgt_tokenizer.lowercase))
        return out

    def sentence_scores(self, hyps, refs):
        """Per output: ``(chrF, exact)``: sentence chrF (0-100) and 1/0 for an exact match."""
        lc = self.tgt_tokenizer.lowercase
        return [(metrics.sentence_chrf(h, r, lowercase=lc),
                 int(self._compare_tokens(h) == self._compare_tokens(r)))
                for h, r in zip(hyps, refs)]

    def __repr__(self):
        return (f"Codec(src={self.src_tokenizer!r} {len(self.src_vocab)} tokens, "
                f"tgt={self.tgt_tokenizer!r} {len(self.tgt_vocab)} tokens"
                f"{', extended ids' if self.extended_ids else ''})")


@dataclass
class TaskData:
    """A data set ready for training: text splits and the codec learned on ``train``."""

    config: DataConfig
    train: list
    val: list
    test: list
    codec: Codec

    def encode(self, pairs, max_len=None, on_long="truncate"):
        return self.codec.encode(pairs, max_len=max_len, on_long=on_long)

    def translate(self, model, texts, max_len=100, beam_size=None, batch_size=256, **options):
        return self.codec.translate(model, texts, max_len=max_len, beam_size=beam_size,
                                    batch_size=batch_size, **options)

    def score(self, hyps, refs):
        return self.codec.score(hyps, refs)

    @property
    def src_vocab(self):
        return self.codec.src_vocab

    @property
    def tgt_vocab(self):
        return self.codec.tgt_vocab


def load_task_data(cfg, shared=False):
    """Resolve ``cfg``, load its splits and build the codec on the training part."""
    cfg = cfg.resolve(shared=shared)
    train, val, test = load_splits(cfg)
    return TaskData(cfg, train, val, test, Codec.build(train, cfg, shared=shared))


def write_predictions(path, sources, refs, hyps, scores):
    """Write ``source, reference, prediction, chrf, exact`` rows (a header line first) as TSV
    at ``path``, atomically. Tabs and newlines inside a field become spaces."""
    def clean(x):
        return " ".join(str(x).replace("\t", " ").splitlines())

    lines = ["source\treference\tprediction\tchrf\texact\n"]
    for s, r, h, (c, e) in zip(sources, refs, hyps, scores):
        lines.append(f"{clean(s)}\t{clean(r)}\t{clean(h)}\t{c:.2f}\t{e}\n")
    atomic_write(os.fspath(path), "".join(lines))
