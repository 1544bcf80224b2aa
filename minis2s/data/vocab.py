"""Vocabularies: the map between tokens (characters or words) and integer ids.

Ids 0..3 are always the specials ``<pad> <bos> <eos> <unk>`` (``minis2s.constants``), then the
vocabulary's own tokens in order::

    >>> v = Vocab.build(["hello", "help"])      # 'l' (3 times) first, then 'e', 'h' (2 each)...
    >>> v.itos
    ['<pad>', '<bos>', '<eos>', '<unk>', 'l', 'e', 'h', 'o', 'p']
    >>> v.encode("help", bos=True, eos=True)
    [1, 6, 5, 4, 8, 2]
    >>> v.decode([1, 6, 5, 4, 8, 2, 0, 0])
    'help'

Text that holds a special string (a word ``<eos>`` in a word-level corpus, say) is never mapped
to that special's id: only ``<unk>`` text maps to UNK, the others are unknown tokens too, so no
input can smuggle a PAD or EOS into a batch.

Pointer-generator models use *extended* ids: :meth:`Vocab.encode_extended` gives the k-th
distinct out-of-vocabulary token of a source the id ``len(vocab) + k`` and :meth:`Vocab.decode`
maps such ids back when given the same ``oovs`` list.
"""

from __future__ import annotations

import json
import numbers
import os
from collections import Counter

import numpy as np

from .. import backend
from ..constants import BOS, EOS, PAD, SPECIAL_TOKENS, UNK
from ..files import atomic_write

__all__ = ["Vocab", "LEVELS"]

LEVELS = ("char", "word")
_FORMAT = "minis2s.vocab"
_VERSION = 1


class Vocab:
    """A token <-> id map. ``level`` is ``"char"`` (every character is a token) or ``"word"``
    (tokens are the whitespace-separated words).

    Attributes:
        itos: list of token strings, indexed by id (the four specials first).
        stoi: dict token string -> id (the inverse of ``itos``).
        level: ``"char"`` or ``"word"``.
    """

    def __init__(self, tokens=(), level="char"):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
        if isinstance(tokens, str):
            raise TypeError("tokens must be a sequence of token strings, not one str; "
                            f"got {tokens[:20]!r} (use Vocab.build(texts) to build from text)")
        tokens = list(tokens)
        seen = set()
        for i, t in enumerate(tokens):
            if not isinstance(t, str):
                raise TypeError(f"tokens[{i}] must be a str; got {t!r} ({type(t).__name__})")
            if t in SPECIAL_TOKENS:
                raise ValueError(f"tokens[{i}] is the special token {t!r}; specials "
                                 f"{SPECIAL_TOKENS} are added automatically")
            if t in seen:
                raise ValueError(f"tokens[{i}] {t!r} is a duplicate")
            if level == "char" and len(t) != 1:
                raise ValueError(f"tokens[{i}] must be a single character for level='char'; "
                                 f"got {t!r}")
            if level == "word" and (not t or t != t.strip() or len(t.split()) != 1):
                raise ValueError(f"tokens[{i}] must be a non-empty word without whitespace for "
                                 f"level='word'; got {t!r}")
            seen.add(t)
        self.level = level
        self.itos = list(SPECIAL_TOKENS) + tokens
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        # The lookup used by encode: the specials' strings are *not* in it (see module doc).
        self._ids = {t: i for i, t in enumerate(self.itos) if i >= len(SPECIAL_TOKENS)}

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(cls, texts, level="char", min_freq=1, max_size=None):
        """Build a vocabulary from an iterable of strings.

        Tokens are ordered by decreasing frequency, ties broken by the token string, so the
        result is deterministic. Tokens seen fewer than ``min_freq`` times are left out;
        ``max_size`` caps the number of non-special tokens. Special strings found in the text
        are not added (they encode as UNK).
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
        if isinstance(min_freq, bool) or not isinstance(min_freq, numbers.Integral):
            raise TypeError(f"min_freq must be an int >= 1; got {min_freq!r}")
        if min_freq < 1:
            raise ValueError(f"min_freq must be an int >= 1; got {min_freq}")
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, numbers.Integral):
                raise TypeError(f"max_size must be a positive int or None; got {max_size!r}")
            if max_size < 1:
                raise ValueError(f"max_size must be a positive int or None; got {max_size}")
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, not one str")
        counts = Counter()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] must be a str; got {type(text).__name__}")
            counts.update(_tokenize(text, level))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        ranked = sorted((item for item in counts.items() if item[1] >= min_freq),
                        key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            ranked = ranked[:max_size]
        return cls([t for t, _ in ranked], level=level)

    # -- tokens ------------------------------------------------------------------------------
    def tokenize(self, text):
        """Split ``text`` into tokens: its characters, or its whitespace-separated words."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str; got {type(text).__name__}")
        return _tokenize(text, self.level)

    def detokenize(self, tokens):
        """Join tokens back into text (no separator for chars, one space for words)."""
        return ("" if self.level == "char" else " ").join(tokens)

    def encode(self, text, bos=False, eos=False):
        """Token ids of ``text``, with BOS first and EOS last if asked. Unknown tokens -> UNK."""
        get = self._ids.get
        ids = [get(t, UNK) for t in self.tokenize(text)]
        if bos:
            ids.insert(0, BOS)
        if eos:
            ids.append(EOS)
        return ids

    def encode_extended(self, text, oovs=None, bos=False, eos=False):
        """Ids with per-example out-of-vocabulary ids, for the pointer-generator.

        With ``oovs=None`` (a source): the k-th distinct unknown token gets ``len(self) + k``
        and the list of those tokens is returned. With ``oovs`` given (the target of that
        source): unknown tokens listed in ``oovs`` get their extended id, others UNK; ``oovs``
        is not changed.

        Returns:
            ``(ids, oovs)``.
        """
        source_mode = oovs is None
        oovs = [] if source_mode else list(oovs)
        index = {t: k for k, t in enumerate(oovs)}
        base = len(self.itos)
        ids = [BOS] if bos else []
        for t in self.tokenize(text):
            i = self._ids.get(t)
            if i is None:
                k = index.get(t)
                if k is None and source_mode:
                    k = index[t] = len(oovs)
                    oovs.append(t)
                i = UNK if k is None else base + k
            ids.append(i)
        if eos:
            ids.append(EOS)
        return ids, oovs

    def decode(self, ids, strip_special=True, oovs=None):
        """Text of a sequence of ids (a list or a 1-D NumPy/backend array).

        With ``strip_special`` (the default), PAD and BOS are skipped and decoding stops at the
        first EOS; UNK shows as ``<unk>``. Ids ``>= len(self)`` need ``oovs`` (from
        :meth:`encode_extended`).
        """
        if backend.is_array(ids):
            ids = backend.to_numpy(ids)
        if isinstance(ids, np.ndarray):
            if ids.ndim != 1:
                raise ValueError(f"ids must be 1-D; got shape {ids.shape} (use decode_batch)")
            ids = ids.tolist()
        n = len(self.itos)
        tokens = []
        for i in ids:
            i = int(i)
            if strip_special:
                if i == EOS:
                    break
                if i in (PAD, BOS):
                    continue
            if 0 <= i < n:
                tokens.append(self.itos[i])
            elif oovs is not None and n <= i < n + len(oovs):
                tokens.append(oovs[i - n])
            else:
                limit = n if oovs is None else n + len(oovs)
                raise ValueError(f"id {i} is outside the vocabulary [0, {limit})"
                                 + ("" if oovs is not None else
                                    "; pass oovs=... to decode extended ids"))
        return self.detokenize(tokens)

    def decode_batch(self, rows, strip_special=True):
        """:meth:`decode` each row of a 2-D array or each list of a list of id lists."""
        if backend.is_array(rows):
            rows = backend.to_numpy(rows)
        return [self.decode(r, strip_special=strip_special) for r in rows]

    def count_unknown(self, texts):
        """How many tokens of ``texts`` (an iterable of strings) would encode as UNK."""
        if isinstance(texts, str):
            texts = [texts]
        ids = self._ids
        return sum(1 for text in texts for t in self.tokenize(text) if t not in ids)

    def unknown_tokens(self, texts):
        """A Counter of the tokens of ``texts`` that are not in the vocabulary."""
        if isinstance(texts, str):
            texts = [texts]
        ids = self._ids
        return Counter(t for text in texts for t in self.tokenize(text) if t not in ids)

    # -- container protocol -------------------------------------------------------------------
    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def __eq__(self, other):
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.level == other.level and self.itos == other.itos

    __hash__ = None

    def __repr__(self):
        shown = ", ".join(repr(t) for t in self.itos[len(SPECIAL_TOKENS):][:8])
        more = ", ..." if len(self.itos) > len(SPECIAL_TOKENS) + 8 else ""
        return f"Vocab(level={self.level!r}, size={len(self)}, tokens=[{shown}{more}])"

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self):
        """A JSON-safe dict; :meth:`from_dict` inverts it."""
        return {"format": _FORMAT, "version": _VERSION, "level": self.level,
                "specials": list(SPECIAL_TOKENS), "tokens": self.itos[len(SPECIAL_TOKENS):]}

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise TypeError(f"vocab dict must be a dict; got {type(d).__name__}")
        if d.get("format", _FORMAT) != _FORMAT:
            raise ValueError(f"not a minis2s vocabulary: format {d.get('format')!r}")
        if d.get("version", _VERSION) > _VERSION:
            raise ValueError(f"vocab format version {d['version']} is newer than this minis2s "
                             f"supports ({_VERSION}); upgrade minis2s")
        specials = d.get("specials", list(SPECIAL_TOKENS))
        if list(specials) != list(SPECIAL_TOKENS):
            raise ValueError(f"vocab specials {specials!r} differ from {SPECIAL_TOKENS}")
        for key in ("level", "tokens"):
            if key not in d:
                raise ValueError(f"vocab dict is missing the key {key!r}")
        return cls(d["tokens"], level=d["level"])

    def save(self, path):
        """Write the vocabulary as JSON at ``path`` (atomically)."""
        atomic_write(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path):
        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            try:
                d = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not a JSON vocabulary file ({e})") from None
        return cls.from_dict(d)


def _tokenize(text, level):
    return list(text) if level == "char" else text.split()
