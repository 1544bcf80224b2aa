"""The ``reverse`` task: the target is the source reversed. ``"40712" -> "21704"``.

For a plain Seq2Seq reading left to right this is *easier* than copying: the first target token
is the last source token the encoder read, so the dependencies are short at the start. It is the
classic demonstration that the distance between where information enters and where it is needed
matters.
"""

from __future__ import annotations

from ._common import check_alphabet, check_lengths, check_n, make_rng, random_strings

LEVEL = "char"


def generate(n, seed=0, min_len=5, max_len=10, alphabet="0123456789"):
    """``n`` pairs ``(s, s[::-1])`` of random strings over ``alphabet`` (digits by default)
    with lengths uniform in ``[min_len, max_len]``. Same seed, same list."""
    n = check_n(n)
    min_len, max_len = check_lengths(min_len, max_len)
    alphabet = check_alphabet(alphabet)
    return [(s, s[::-1]) for s in random_strings(make_rng(seed), n, min_len, max_len, alphabet)]


def info(min_len=5, max_len=10, alphabet="0123456789"):
    """``(level, max_src_len, max_tgt_len)`` for these arguments."""
    min_len, max_len = check_lengths(min_len, max_len)
    return LEVEL, max_len, max_len
