"""Held-out splits in which no test source occurs in training, and reproducible subsets.

- :func:`split_by_source`: a user's file cut into train, validation and test parts, with every
  pair of one source sentence in the same part (so a sentence with several translations never
  sits on both sides of the cut).
- :func:`subset`: ``n`` pairs of a list, drawn with a seed, kept in their order.
- :func:`source_key`: the form in which two sources count as the same (Unicode NFC, lower case,
  words and punctuation as the word tokeniser splits them), so ``"Hi!"`` and ``"hi !"`` are one.
"""

from __future__ import annotations

import numpy as np

from .._checks import non_negative_int
from .tokenize import normalize, word_tokenize

__all__ = ["source_key", "split_by_source", "subset"]


def source_key(text):
    """The comparison form of a sentence: NFC, lower case, word tokens joined by spaces."""
    return " ".join(word_tokenize(normalize(text, lowercase=True, nfc=True)))


def split_by_source(pairs, n_val, n_test, seed=0, key=source_key):
    """Cut ``pairs`` into ``(train, val, test)`` with no source shared between the parts.

    The pairs are grouped by ``key(source)``; the groups are shuffled with ``seed`` (NumPy's
    ``RandomState(seed).permutation`` over the groups in order of first appearance) and dealt
    out: whole groups to the test part until it holds at least ``n_test`` pairs, then to the
    validation part until ``n_val``, the rest to training. A part can therefore be a few pairs
    larger than asked when a group holds several. Each part keeps the file order.

    Raises:
        ValueError: nothing would be left for training.
    """
    n_val, n_test = non_negative_int("n_val", n_val), non_negative_int("n_test", n_test)
    groups = {}
    for i, (src, _tgt) in enumerate(pairs):
        groups.setdefault(key(src), []).append(i)
    order = [groups[k] for k in groups]  # first appearance
    perm = np.random.RandomState(non_negative_int("seed", seed)).permutation(len(order))
    part = np.zeros(len(pairs), dtype=np.int8)  # 0 train, 1 val, 2 test
    filled = {1: 0, 2: 0}
    for g in perm:
        target = 2 if filled[2] < n_test else 1 if filled[1] < n_val else 0
        if target:
            part[order[g]] = target
            filled[target] += len(order[g])
    train = [p for p, k in zip(pairs, part) if k == 0]
    if not train:
        raise ValueError(f"no examples left for training: {len(pairs)} pairs ({len(groups)} "
                         f"distinct sources) and n_val={n_val}, n_test={n_test}")
    return (train, [p for p, k in zip(pairs, part) if k == 1],
            [p for p, k in zip(pairs, part) if k == 2])


def subset(pairs, n, seed=0, what="the split"):
    """``n`` of ``pairs`` drawn without replacement with ``seed``, in their original order;
    all of them if ``n`` is None. ValueError if ``n`` exceeds ``len(pairs)``."""
    if n is None:
        return list(pairs)
    n = non_negative_int("n", n)
    if n > len(pairs):
        raise ValueError(f"{what} holds {len(pairs):,} pairs; cannot take {n:,}")
    if n == len(pairs):
        return list(pairs)
    rng = np.random.RandomState(non_negative_int("seed", seed))
    keep = np.sort(rng.permutation(len(pairs))[:n])
    return [pairs[i] for i in keep.tolist()]
