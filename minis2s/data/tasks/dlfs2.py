"""``dlfs2-date`` and ``dlfs2-addition``: the date-format and addition data sets of *Deep
Learning from Scratch 2* (Koki Saitoh; chapters 7 and 8), with the book's own split.

    >>> from minis2s.data.tasks import dlfs2
    >>> train, val, test = dlfs2.splits("date")       # 44,000 / 1,000 / 5,000
    >>> book_train, book_test = dlfs2.book_split("date")  # 45,000 / 5,000, as the book has them

The book's split, reproduced
----------------------------
The book's loader (``dataset/sequence.py``, ``load_data(file_name, seed=1984)``) reads the
50,000 lines, shuffles their indices with ``numpy.random.seed(1984)`` then
``numpy.random.shuffle(indices)``, and keeps the last ``50000 // 10`` = 5,000 as the test set::

    indices = numpy.arange(50000); numpy.random.seed(1984); numpy.random.shuffle(indices)
    train, test = indices[:45000], indices[45000:]

:func:`book_split` does exactly that with ``numpy.random.RandomState(1984).shuffle``, the same
generator and stream as the global ``numpy.random.seed`` (NumPy keeps the legacy ``RandomState``
stream fixed across versions). The book has no validation set; :func:`splits` takes the last
``n_val`` (default 1,000) pairs of the book's training part as one, so training sees 44,000
pairs; ``n_val=0`` keeps the book's 45,000.

What we measured on ``date.txt`` (docs/data.md; the tests check it): it holds 41,578 distinct
pairs among its 50,000 lines (each source has one target, so also 41,578 distinct sources), and
1,405 of the book's 5,000 test pairs (28.1%) have a source that also occurs in the book's
training part: a test accuracy on this split partly measures memorisation.
``addition.txt`` has 50,000 distinct sources and no such overlap.

The book keeps the padding spaces and the ``_`` that starts each answer as tokens; minis2s
strips the padding (batches are padded with PAD) and starts targets with BOS, so the model sees
the same characters otherwise. The book's chapter 7 also reverses the addition sources and its
chapter 8 the date sources (``x[:, ::-1]``), a model trick rather than a data change, which
these tasks do not apply.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import corpora

__all__ = ["NAMES", "pairs", "book_split", "splits", "info", "BOOK_SEED", "DEFAULTS"]

NAMES = ("date", "addition")
BOOK_SEED = 1984
DEFAULTS = dict(level="char", lowercase=False, nfc=False, min_freq=1)


def _check_name(name):
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES}; got {name!r}")
    return name


@functools.lru_cache(maxsize=2)
def _pairs(name):
    out = []
    for number, line in enumerate(corpora.read_text(f"dlfs2-{name}").splitlines(), start=1):
        cut = line.find("_")
        src, tgt = line[:cut].strip(), line[cut + 1:].strip()
        if cut < 0 or not src or not tgt:  # pragma: no cover - checksummed file
            raise corpora.CorpusError(f"minis2s/data/corpora/dlfs2/{name}.txt.gz, line "
                                      f"{number}: not 'source_target'")
        out.append((src, tgt))
    return tuple(out)


def pairs(name):
    """The 50,000 ``(source, target)`` pairs of ``name`` (``"date"`` or ``"addition"``), in file
    order, padding stripped."""
    return list(_pairs(_check_name(name)))


def book_order(n, seed=BOOK_SEED):
    """The book's shuffled line order:
    ``numpy.random.seed(seed); numpy.random.shuffle(numpy.arange(n))``."""
    indices = np.arange(n)
    np.random.RandomState(seed).shuffle(indices)
    return indices


def book_split(name):
    """``(train, test)`` exactly as the book's ``load_data(name + ".txt", seed=1984)``: the
    shuffled pairs, the last 10% as test (45,000 and 5,000 pairs)."""
    p = _pairs(_check_name(name))
    order = book_order(len(p)).tolist()
    split_at = len(p) - len(p) // 10
    return [p[i] for i in order[:split_at]], [p[i] for i in order[split_at:]]


def splits(name, n_val=1000):
    """``(train, val, test)``: the book's test set; validation = the last ``n_val`` pairs of the
    book's training part; training = the rest (in the book's shuffled order)."""
    if isinstance(n_val, bool) or not isinstance(n_val, int) or not 0 <= n_val < 45000:
        raise ValueError(f"n_val must be an int in [0, 45000); got {n_val!r}")
    train, test = book_split(name)
    cut = len(train) - n_val
    return train[:cut], train[cut:], test


def info(name):
    """``(level, max_src_len, max_tgt_len)`` in characters."""
    p = _pairs(_check_name(name))
    return "char", max(len(s) for s, _ in p), max(len(t) for _, t in p)


def overlap(name):
    """How many of the book's test pairs have a source that occurs in its training part:
    ``(count, n_test)``."""
    train, test = book_split(name)
    seen = {s for s, _ in train}
    return sum(s in seen for s, _ in test), len(test)
