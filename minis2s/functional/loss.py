"""Masked softmax cross-entropy over all decoder steps at once, stable through log-sum-exp.

With logits o (B, T, V), targets y (B, T) and mask m (B, T) (1 on real tokens, 0 on PAD):

    log p_t = o_t − logsumexp(o_t),      logsumexp(o) = max(o) + log Σ_v exp(o_v − max(o))
    L = −(1/N) Σ_{b,t} m_bt log p_bt[y_bt],       N = Σ m

and the gradient is dL/do_bt = m_bt (softmax(o_bt) − onehot(y_bt)) / N.

This is the textbook (reference) form. ``minis2s.fast.loss`` holds the same loss with the
speed work the models train with on the fast tier (the output layer on the real tokens only,
one exp, logits clamped so that nothing is subnormal).
``softmax`` and ``log_softmax`` are :mod:`minis2s.functional.activations`'s, importable here.

Derivation: docs/derivations/linear_and_loss.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _checks, backend
from .activations import log_softmax, softmax

__all__ = ["CrossEntropyCache", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
           "log_softmax", "softmax"]


class CrossEntropyCache(NamedTuple):
    probs: object  # (B, T, V) softmax of the logits
    targets: object  # (B, T) int
    mask: object  # (B, T) float, 1 on real tokens
    n_tokens: object  # N, the number of real tokens (0-d array)


def _softmax_cross_entropy_forward(logits, targets, mask):
    """L = −(1/N) Σ m log softmax(o)[y], unchecked."""
    xp = backend.xp
    ### BEGIN SOLUTION
    logp = log_softmax(logits)
    m = mask.astype(logits.dtype)
    n = xp.maximum(m.sum(), 1)
    picked = xp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    loss = -(picked * m).sum() / n
    ### END SOLUTION
    return loss, CrossEntropyCache(xp.exp(logp), targets, m, n)


def _softmax_cross_entropy_backward(cache: CrossEntropyCache, dloss=1.0):
    """dL/do = m (softmax(o) − onehot(y)) / N · dloss, unchecked."""
    xp = backend.xp
    probs, targets, m, n = cache
    B, T, _ = probs.shape
    ### BEGIN SOLUTION
    dlogits = probs.copy()
    dlogits[xp.arange(B)[:, None], xp.arange(T)[None, :], targets] -= 1  # p − onehot(y)
    dlogits *= (m * (dloss / n))[..., None].astype(probs.dtype)
    ### END SOLUTION
    return dlogits


@backend.device_inputs
def softmax_cross_entropy_forward(logits, targets, mask):
    """Mean negative log-likelihood of ``targets`` over the positions where ``mask`` is 1.

    Args:
        logits: (B, T, V) unnormalised scores o.
        targets: (B, T) int ids y, in [0, V).
        mask: (B, T) bool or float, true on real (non-PAD) target tokens.

    Returns:
        loss: 0-d array L, and a :class:`CrossEntropyCache`.
    """
    targets, mask = _checks.cross_entropy(logits, targets, mask)
    return _softmax_cross_entropy_forward(logits, targets, mask)


@backend.device_inputs
def softmax_cross_entropy_backward(cache: CrossEntropyCache, dloss=1.0):
    """dL/do = m (softmax(o) − onehot(y)) / N, times the upstream ``dloss``.

    Returns:
        dlogits: (B, T, V).
    """
    _checks.is_instance("cache", cache, CrossEntropyCache, "softmax_cross_entropy_forward")
    return _softmax_cross_entropy_backward(cache, dloss)
