"""The ``addition`` task: ``"16+75" -> "91"``.

Each operand first draws its number of digits uniformly in ``1..max_digits``, then a value
uniformly among the numbers with that many digits (0..9 for one digit), so short and long
operands are equally common.

``reverse_source=True`` applies the classic trick of reversing the *source* string
(Sutskever et al., 2014): ``"16+75"`` becomes ``"57+61"`` while the target stays ``"91"``. A
plain Seq2Seq then reads the least significant digits last, right before it starts writing,
which makes the carries easier to learn at no cost for attention models.

``max_digits`` defaults to 3, as in DLFS2's addition data and ``benchmarks/addition.py``. (Until
2026-12-07 it was 2, which allows only 10,000 distinct sources, fewer than the 23,000 that
``minis2s train --task addition``'s default sizes need, so that command failed.)
"""

from __future__ import annotations

import numpy as np

from ..._checks import positive_int
from ._common import check_n, make_rng

LEVEL = "char"


def _operands(rng, n, max_digits):
    digits = rng.integers(1, max_digits + 1, size=n)
    low = np.where(digits == 1, 0, 10 ** (digits - 1))
    return rng.integers(low, 10 ** digits)  # high is exclusive


def generate(n, seed=0, max_digits=3, reverse_source=False):
    """``n`` pairs ``("a+b", str(a + b))`` with operands of 1..``max_digits`` digits.
    Same seed, same list."""
    n = check_n(n)
    max_digits = positive_int("max_digits", max_digits)
    if max_digits > 17:
        raise ValueError(f"max_digits must be <= 17 (int64 sums); got {max_digits}")
    rng = make_rng(seed)
    a = _operands(rng, n, max_digits).tolist()
    b = _operands(rng, n, max_digits).tolist()
    pairs = []
    for x, y in zip(a, b):
        src = f"{x}+{y}"
        pairs.append((src[::-1] if reverse_source else src, str(x + y)))
    return pairs


def info(max_digits=3, reverse_source=False):
    """``(level, max_src_len, max_tgt_len)`` for these arguments."""
    max_digits = positive_int("max_digits", max_digits)
    return LEVEL, 2 * max_digits + 1, max_digits + 1
