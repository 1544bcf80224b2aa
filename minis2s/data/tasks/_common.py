"""Helpers shared by the task generators: argument checks and random strings."""

from __future__ import annotations

import numbers

import numpy as np

from ..._checks import non_negative_int, positive_int


def check_n(n):
    """``n`` examples: an int >= 0."""
    return non_negative_int("n", n)


def make_rng(seed):
    """A NumPy Generator for ``seed`` (an int >= 0)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0; got {seed!r}")
    return np.random.default_rng(int(seed))


def check_lengths(min_len, max_len):
    min_len = positive_int("min_len", min_len)
    max_len = positive_int("max_len", max_len)
    if min_len > max_len:
        raise ValueError(f"min_len must be <= max_len; got min_len={min_len}, max_len={max_len}")
    return min_len, max_len


def check_alphabet(alphabet):
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f"alphabet must be a non-empty str of characters; got {alphabet!r}")
    if len(set(alphabet)) != len(alphabet):
        raise ValueError(f"alphabet must not repeat characters; got {alphabet!r}")
    return alphabet


def random_strings(rng, n, min_len, max_len, alphabet):
    """``n`` strings of uniform random length in [min_len, max_len] over ``alphabet``."""
    lengths = rng.integers(min_len, max_len + 1, size=n)
    chars = np.array(list(alphabet))[rng.integers(0, len(alphabet), size=(n, max_len))]
    return ["".join(row[:k]) for row, k in zip(chars.tolist(), lengths.tolist())]
