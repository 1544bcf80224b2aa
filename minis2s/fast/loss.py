"""The fast tier of the losses: the textbook losses of :mod:`minis2s.functional.loss` and
:mod:`minis2s.functional.pointer`, with subnormal numbers flushed to 0.

Subnormal numbers (|a| below the dtype's smallest normal number: 1.2e-38 in float32, 2.2e-308
in float64) are far below every other value's rounding error, so flushing them changes no
result that matters, but they are ruinous for speed: x86 CPUs handle them in microcode, and a
matrix product full of them runs about 100 times slower (measured here: 0.07 s against 10.5 s
for a (960, 9000) × (9000, 256) product). Softmax outputs and the gradients built from them
acquire them late in training, when probabilities of unlikely words fall below 1e-38; they feed
the output layer's matrix products. So these functions compute the reference's results and set
the entries below the smallest normal number of the probabilities they cache and of the logit
gradients they return to exactly 0. Otherwise they equal the reference bit for bit
(tests/test_tiers_models.py).

Unchecked internals: the models check their batches, then call these (on the fast tier) or the
reference's private forms (on the reference tier).
"""

from __future__ import annotations

from .. import backend
from ..functional import loss as _ref_loss
from ..functional import pointer as _ref_pointer

__all__ = ["flush_subnormals", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
           "pointer_nll_forward", "pointer_nll_backward"]


def flush_subnormals(a, non_negative=False):
    """In place: set the entries of ``a`` smaller in magnitude than the smallest normal number of
    its dtype to exactly 0; return ``a``. ``non_negative=True`` skips the absolute value
    (probabilities)."""
    xp = backend.xp
    tiny = xp.finfo(a.dtype).tiny
    xp.copyto(a, 0, where=(a if non_negative else xp.abs(a)) < tiny)
    return a


def softmax_cross_entropy_forward(logits, targets, mask):
    """Equals: minis2s.functional.loss.softmax_cross_entropy_forward (the cached softmax
    flushed of subnormal numbers)."""
    loss, cache = _ref_loss._softmax_cross_entropy_forward(logits, targets, mask)
    flush_subnormals(cache.probs, non_negative=True)
    return loss, cache


def softmax_cross_entropy_backward(cache, dloss=1.0):
    """Equals: minis2s.functional.loss.softmax_cross_entropy_backward (dlogits flushed of
    subnormal numbers: it feeds the output layer's matrix products)."""
    return flush_subnormals(_ref_loss._softmax_cross_entropy_backward(cache, dloss))


def pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight):
    """Equals: minis2s.functional.pointer.pointer_nll_forward (the cached P_vocab flushed of
    subnormal numbers). ``weight`` is a float array of the leading shape."""
    nll, cache = _ref_pointer._pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext,
                                                   target, weight)
    flush_subnormals(cache.P_vocab, non_negative=True)
    return nll, cache


def pointer_nll_backward(dnll, cache):
    """Equals: minis2s.functional.pointer.pointer_nll_backward (dvocab_logits flushed of
    subnormal numbers: it feeds the vocabulary projection's matrix products)."""
    dvocab_logits, dp_gen_logit, dalpha = _ref_pointer._pointer_nll_backward(dnll, cache)
    return flush_subnormals(dvocab_logits), dp_gen_logit, dalpha
