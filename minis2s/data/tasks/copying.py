"""The ``copy`` task: the target is the source. ``"40712" -> "40712"``.

The simplest test that an encoder-decoder can carry a sequence through its bottleneck: a plain
Seq2Seq degrades as sequences grow, while attention (and copying) solves it at any length.
"""

from __future__ import annotations

from ._common import check_alphabet, check_lengths, check_n, make_rng, random_strings

LEVEL = "char"


def generate(n, seed=0, min_len=5, max_len=10, alphabet="0123456789"):
    """``n`` pairs ``(s, s)`` of random strings over ``alphabet`` (digits by default) with
    lengths uniform in ``[min_len, max_len]``. Same seed, same list."""
    n = check_n(n)
    min_len, max_len = check_lengths(min_len, max_len)
    alphabet = check_alphabet(alphabet)
    return [(s, s) for s in random_strings(make_rng(seed), n, min_len, max_len, alphabet)]


def info(min_len=5, max_len=10, alphabet="0123456789"):
    """``(level, max_src_len, max_tgt_len)`` for these arguments."""
    min_len, max_len = check_lengths(min_len, max_len)
    return LEVEL, max_len, max_len
