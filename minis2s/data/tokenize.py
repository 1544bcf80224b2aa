"""Tokenisation made explicit: text -> tokens -> text, at one of three levels.

    >>> from minis2s.data.tokenize import Tokenizer
    >>> tok = Tokenizer("word", lowercase=True)
    >>> tok.tokenize("Don't go, Tom!")
    ["don't", 'go', ',', 'tom', '!']
    >>> tok.detokenize(["don't", "go", ",", "tom", "!"])
    "don't go, tom!"
    >>> Tokenizer("word", lang="fr").detokenize(["Va", "!"])       # French spacing
    'Va !'
    >>> bpe = Tokenizer("subword", vocab_size=2000).fit(train_sentences)  # needs sentencepiece

Levels:

- ``char``: every character is a token (the generated tasks: dates, addition, ...).
- ``word``: words and punctuation. A word is a run of letters, digits and ``_`` that may hold an
  inner apostrophe or hyphen (``don't``, ``qu'est-ce``, ``Arrête-toi``); a number may hold inner
  ``. , : /`` (``3.5``, ``8:30``, ``9/11``); letters joined by dots are one abbreviation
  (``p.m.``, ``U.S.``); every other character that is not a space is a token of its own
  (``.``, ``!``, ``«``, ``$``). :meth:`Tokenizer.detokenize` joins them back: no space before
  closing punctuation, none after opening brackets and currency signs, and with ``lang="fr"``
  French spacing (a space before ``! ? ; : » %`` and after ``«``).
- ``subword``: byte-pair encoding learned by `sentencepiece <https://github.com/google/sentencepiece>`_
  (an optional extra: ``pip install 'minis2s[subword]'``) on the *training* split only
  (:meth:`Tokenizer.fit`); the learned model travels inside the tokeniser (``to_dict``), so a
  checkpoint reapplies exactly the same segmentation, and sentencepiece's decoder restores the
  text.

Normalisation, applied before tokenising (so also to a user's input at ``generate`` time):
``nfc`` (Unicode NFC, so that ``é`` typed as ``e`` + combining accent is the same token as
``é``) and ``lowercase``. At word and subword level, runs of whitespace (including the narrow
no-break spaces of French typography) count as one space.

A :class:`minis2s.data.Vocab` maps the tokens to ids. :meth:`Tokenizer.prepare` gives the string
that a Vocab of level :attr:`Tokenizer.vocab_level` reads (the tokens joined by single spaces,
or the normalised text at char level), and :meth:`Tokenizer.restore` turns a decoded string back
into text.
"""

from __future__ import annotations

import base64
import re
import unicodedata

__all__ = ["LEVELS", "Tokenizer", "normalize", "word_tokenize", "word_detokenize",
           "MissingExtraError"]

LEVELS = ("char", "word", "subword")
LANGS = (None, "en", "fr")
DEFAULT_BPE_VOCAB_SIZE = 4000
_FORMAT = "minis2s.tokenizer"
_VERSION = 1
_UNK = "<unk>"


class MissingExtraError(ImportError):
    """An optional dependency (an extra of minis2s) is not installed."""


_WORD_RE = re.compile(r"""
      \d+(?:[.,:/]\d+)+              # numbers and times: 3.5  1,000  8:30  9/11
    | [^\W\d_](?:\.[^\W\d_])+\.?     # letters joined by dots: p.m.  U.S.  i.e.
    | \w+(?:['’\-]\w+)*              # words, with inner apostrophes and hyphens
    | [^\w\s]                        # any other character: punctuation, symbols
""", re.VERBOSE)

# Detokenisation: no space before these, none after those.
_NO_SPACE_BEFORE = frozenset(".,!?;:%)]}…»”’'")
_NO_SPACE_AFTER = frozenset("([{¿¡«“‘$€£¥#")
_GLUE = frozenset("/")  # no space on either side: and/or
_FR_SPACED_BEFORE = frozenset("!?;:»%")  # French typography: 'Va !', '« oui »', '50 %'
_FR_SPACED_AFTER = frozenset("«")


def normalize(text, lowercase=False, nfc=False):
    """``text`` in Unicode NFC (if ``nfc``) and lower case (if ``lowercase``)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    if nfc:
        text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    return text


def word_tokenize(text):
    """Words and punctuation of ``text`` (see the module docstring for the rules)."""
    return _WORD_RE.findall(text)


def word_detokenize(tokens, lang=None):
    """Join word-level tokens into text, putting spaces back where the language writes them.

    ``lang=None`` or ``"en"``: English spacing (``"Go!"``, ``"(yes)"``, ``"$30"``); ``"fr"``:
    French spacing (``"Va !"``, ``"« oui »"``). A straight double quote ``"`` opens and closes
    in turn.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}; got {lang!r}")
    before, after = _NO_SPACE_BEFORE, _NO_SPACE_AFTER
    if lang == "fr":
        before, after = before - _FR_SPACED_BEFORE, after - _FR_SPACED_AFTER
    out = []
    glue_next = True  # no space before the next token (at the start, or after an opener)
    quote_open = False
    for t in tokens:
        if t == '"':
            closing = quote_open
            quote_open = not quote_open
        else:
            closing = t in before or t in _GLUE
        if out and not glue_next and not closing:
            out.append(" ")
        out.append(t)
        glue_next = (t == '"' and quote_open) or (t != '"' and (t in after or t in _GLUE))
    return "".join(out)


def _sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise MissingExtraError(
            "level 'subword' needs the sentencepiece package, an optional extra of minis2s: "
            "pip install 'minis2s[subword]' (or pip install sentencepiece)") from None
    return sentencepiece


class Tokenizer:
    """Normalises text and splits it into tokens at one level, and joins tokens back into text.

    Args:
        level: ``"char"``, ``"word"`` or ``"subword"`` (see the module docstring).
        lowercase: lower-case the text first.
        nfc: apply Unicode NFC first.
        lang: word level: the spacing rules of :func:`word_detokenize` (``None``/``"en"`` or
            ``"fr"``).
        split_punctuation: word level: split punctuation off words (the default). False
            splits on whitespace only, for text that is already tokenised.
        vocab_size: subword level: the number of BPE pieces to learn (default 4000; a soft
            limit, so a small training set may give fewer).
        model: subword level: a trained sentencepiece model (bytes); :meth:`fit` sets it.
    """

    def __init__(self, level="char", lowercase=False, nfc=False, lang=None,
                 split_punctuation=True, vocab_size=None, model=None):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {LANGS}; got {lang!r}")
        for name, v in (("lowercase", lowercase), ("nfc", nfc),
                        ("split_punctuation", split_punctuation)):
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be a bool; got {v!r}")
        if level != "subword" and (vocab_size is not None or model is not None):
            raise ValueError(f"vocab_size and model are for level 'subword'; got level {level!r}")
        if vocab_size is not None:
            if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 8:
                raise ValueError(f"vocab_size must be an int >= 8; got {vocab_size!r}")
        if model is not None and not isinstance(model, (bytes, bytearray)):
            raise TypeError(f"model must be the bytes of a sentencepiece model; got "
                            f"{type(model).__name__}")
        self.level = level
        self.lowercase = lowercase
        self.nfc = nfc
        self.lang = lang
        self.split_punctuation = split_punctuation
        self.vocab_size = (DEFAULT_BPE_VOCAB_SIZE if vocab_size is None else vocab_size) \
            if level == "subword" else None
        self.model = bytes(model) if model is not None else None
        self._sp = None

    # -- the level -------------------------------------------------------------------------
    @property
    def vocab_level(self):
        """The :class:`minis2s.data.Vocab` level for :meth:`prepare`'s output."""
        return "char" if self.level == "char" else "word"

    @property
    def fitted(self):
        """False only for a subword tokeniser before :meth:`fit`."""
        return self.level != "subword" or self.model is not None

    def fit(self, texts):
        """Learn the BPE pieces from ``texts`` (the *training* split; subword level only).

        A no-op at char and word level. Returns ``self``. Training is deterministic (one
        thread), so the same texts give the same model.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, not one str")
        if self.level != "subword":
            return self
        spm = _sentencepiece()
        import io

        lines = [self.normalize(t) for t in texts]
        lines = [t for t in lines if t]
        if not lines:
            raise ValueError("cannot learn BPE pieces from no text: texts is empty")
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=buf, model_type="bpe",
                vocab_size=self.vocab_size, hard_vocab_limit=False, character_coverage=1.0,
                normalization_rule_name="identity", add_dummy_prefix=True,
                remove_extra_whitespaces=True, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
                num_threads=1, input_sentence_size=0, shuffle_input_sentence=False,
                minloglevel=2)
        except RuntimeError as e:
            raise ValueError(f"sentencepiece could not learn {self.vocab_size} BPE pieces from "
                             f"{len(lines)} texts: {str(e).strip()} (try another vocab_size, "
                             "--bpe-vocab-size)") from None
        self.model = buf.getvalue()
        self._sp = None
        return self

    def _processor(self):
        if self.model is None:
            raise RuntimeError("this subword Tokenizer has not learned its pieces yet: call "
                               "fit(training_texts) first")
        if self._sp is None:
            spm = _sentencepiece()
            self._sp = spm.SentencePieceProcessor(model_proto=self.model)
        return self._sp

    # -- text <-> tokens ---------------------------------------------------------------------
    def normalize(self, text):
        """The text as the tokeniser sees it: NFC and lower case as configured; at word and
        subword level, surrounding whitespace stripped and inner runs made one space."""
        text = normalize(text, lowercase=self.lowercase, nfc=self.nfc)
        if self.level != "char":
            text = " ".join(text.split())
        return text

    def tokenize(self, text):
        """The tokens of ``text`` (after :meth:`normalize`)."""
        text = self.normalize(text)
        if self.level == "char":
            return list(text)
        if self.level == "word":
            return word_tokenize(text) if self.split_punctuation else text.split()
        if not text:
            return []
        return list(self._processor().encode(text, out_type=str))

    def detokenize(self, tokens):
        """Text from tokens: the inverse of :meth:`tokenize`, up to normalisation."""
        if isinstance(tokens, str):
            raise TypeError("tokens must be a list of token strings, not one str")
        tokens = list(tokens)
        if self.level == "char":
            return "".join(tokens)
        if self.level == "word":
            return word_detokenize(tokens, self.lang) if self.split_punctuation \
                else " ".join(tokens)
        # subword: sentencepiece's decoder, around any <unk> (which it would not spell out)
        sp = self._processor()
        parts, run = [], []
        for t in tokens:
            if t == _UNK:
                if run:
                    parts.append(sp.decode_pieces(run))
                    run = []
                parts.append(_UNK)
            else:
                run.append(t)
        if run:
            parts.append(sp.decode_pieces(run))
        return " ".join(p for p in (p.strip() for p in parts) if p)

    def prepare(self, text):
        """The string that a Vocab of level :attr:`vocab_level` reads: the normalised text at
        char level, else the tokens joined by single spaces."""
        if self.level == "char":
            return self.normalize(text)
        return " ".join(self.tokenize(text))

    def restore(self, text):
        """The inverse of :meth:`prepare`: text from a Vocab-decoded string."""
        if self.level == "char":
            return text
        return self.detokenize(text.split())

    # -- records -----------------------------------------------------------------------------
    def to_dict(self):
        """A JSON-safe dict (the BPE model base64-encoded); :meth:`from_dict` inverts it."""
        return {"format": _FORMAT, "version": _VERSION, "level": self.level,
                "lowercase": self.lowercase, "nfc": self.nfc, "lang": self.lang,
                "split_punctuation": self.split_punctuation, "vocab_size": self.vocab_size,
                "model": None if self.model is None else base64.b64encode(self.model).decode()}

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise TypeError(f"tokenizer dict must be a dict; got {type(d).__name__}")
        if d.get("format") != _FORMAT:
            raise ValueError(f"not a minis2s tokenizer: format {d.get('format')!r}")
        if d.get("version", _VERSION) > _VERSION:
            raise ValueError(f"tokenizer format version {d['version']} is newer than this "
                             f"minis2s supports ({_VERSION}); upgrade minis2s")
        if "level" not in d:
            raise ValueError("tokenizer dict is missing the key 'level'")
        model = d.get("model")
        return cls(d["level"], lowercase=d.get("lowercase", False), nfc=d.get("nfc", False),
                   lang=d.get("lang"), split_punctuation=d.get("split_punctuation", True),
                   vocab_size=d.get("vocab_size"),
                   model=None if model is None else base64.b64decode(model))

    def __eq__(self, other):
        if not isinstance(other, Tokenizer):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self):
        opts = [f"{self.level!r}"]
        for name in ("lowercase", "nfc"):
            if getattr(self, name):
                opts.append(f"{name}=True")
        if self.lang:
            opts.append(f"lang={self.lang!r}")
        if not self.split_punctuation:
            opts.append("split_punctuation=False")
        if self.level == "subword":
            opts.append(f"vocab_size={self.vocab_size}")
            opts.append("fitted" if self.fitted else "not fitted")
        return f"Tokenizer({', '.join(opts)})"
