"""The ``tatoeba`` task's pairs and its fixed split (the task registry's part of it; use the
public module :mod:`minis2s.data.tasks.tatoeba`, which adds ``load_splits``).

The fixed held-out split
------------------------
Some English sentences have several French translations (17,104 of the 49,197 distinct English
sentences) and some French sentences several English ones (4,057 of 71,191), so cutting the
lines at random would put the same source sentence in training and in test. The split is made
so that **neither side** of a test pair occurs in training, in either direction:

1. Each sentence is compared in its :func:`minis2s.data.splits.source_key` form (NFC, lower
   case, word tokens), so ``"Hi!"`` and ``"hi !"`` count as one sentence.
2. Pairs that share an English or a French sentence are joined, transitively, into groups (the
   connected components of the graph whose nodes are sentences and whose edges are pairs):
   45,264 groups, the largest holding 56 pairs ("Stop!", "Arrête !", "Cut it out!", ...).
3. Each group goes whole to one part, chosen by a hash of its alphabetically first English
   sentence: bucket = (first 8 bytes of SHA-256 of that key's UTF-8, big-endian) mod 100;
   buckets 0-4 are **test**, 5-9 **validation**, 10-99 **training**.

The hash makes the split independent of the file's order and of any seed. The result, measured
(and checked by the tests): 68,408 training, 3,789 validation and 3,840 test pairs. The same split
serves both directions, so an English → French model is not tested on sentences it was trained
on either. Each part keeps the file's order (sorted by length).
"""

from __future__ import annotations

import functools
import hashlib

from .. import corpora
from ..splits import source_key

__all__ = ["DIRECTIONS", "pairs", "splits", "info", "langs", "SPLIT_BUCKETS", "DEFAULTS"]

DIRECTIONS = ("fr-en", "en-fr")
CORPUS = "tatoeba-eng-fra"
#: bucket ranges (of 100) of the three parts
SPLIT_BUCKETS = {"test": range(0, 5), "val": range(5, 10), "train": range(10, 100)}
#: the task's defaults for the data options (the CLI's and :func:`load_splits`'s)
DEFAULTS = dict(level="word", lowercase=True, nfc=True, min_freq=2)


def _check_direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    return direction


def langs(direction="fr-en"):
    """``(source language, target language)`` of ``direction``."""
    src, tgt = _check_direction(direction).split("-")
    return src, tgt


@functools.lru_cache(maxsize=1)
def _english_french():
    """The corpus as (English, French) pairs, in file order."""
    out = []
    for number, line in enumerate(corpora.read_text(CORPUS).splitlines(), start=1):
        en, sep, fr = line.partition("\t")
        if not sep or not en.strip() or not fr.strip():  # pragma: no cover - checksummed file
            raise corpora.CorpusError(f"minis2s/data/corpora/tatoeba/eng-fra.tsv.gz, line "
                                      f"{number}: not 'English<TAB>French'")
        out.append((en.strip(), fr.strip()))
    return tuple(out)


def _bucket(key):
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100


@functools.lru_cache(maxsize=1)
def _parts():
    """The part ("train", "val" or "test") of each line of the corpus."""
    ef = _english_french()
    keys = [("en", source_key(en)) for en, _ in ef], [("fr", source_key(fr)) for _, fr in ef]
    parent = {}

    def find(x):
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in zip(*keys):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    first_english = {}  # component root -> its alphabetically first English key
    for a in keys[0]:
        r = find(a)
        if r not in first_english or a[1] < first_english[r]:
            first_english[r] = a[1]
    names = {b: name for name, buckets in SPLIT_BUCKETS.items() for b in buckets}
    part = {r: names[_bucket(key)] for r, key in first_english.items()}
    return tuple(part[find(a)] for a in keys[0])


def pairs(direction="fr-en"):
    """All 76,037 pairs as ``(source, target)`` in ``direction``, in file order."""
    ef = _english_french()
    return list(ef) if _check_direction(direction) == "en-fr" else [(f, e) for e, f in ef]


def splits(direction="fr-en"):
    """The fixed ``(train, val, test)`` parts (see the module docstring), as text pairs."""
    out = {"train": [], "val": [], "test": []}
    for pair, part in zip(pairs(direction), _parts()):
        out[part].append(pair)
    return out["train"], out["val"], out["test"]


def info(direction="fr-en"):
    """``(level, max_src_len, max_tgt_len)``: word level; the longest sides in word tokens."""
    src_longest = max(len(source_key(s).split()) for s, _ in pairs(direction))
    tgt_longest = max(len(source_key(t).split()) for _, t in pairs(direction))
    return "word", src_longest, tgt_longest
