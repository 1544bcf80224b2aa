"""Masked softmax cross-entropy over all decoder steps at once, stable through log-sum-exp.

With logits o (B, T, V), targets y (B, T) and mask m (B, T) (1 on real tokens, 0 on PAD):

    log p_t = o_t − logsumexp(o_t),      logsumexp(o) = max(o) + log Σ_v exp(o_v − max(o))
    L = −(1/N) Σ_{b,t} m_bt log p_bt[y_bt],       N = Σ m

and the gradient is dL/do_bt = m_bt (softmax(o_bt) − onehot(y_bt)) / N.

Derivation: docs/derivations/linear_and_loss.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import backend


def log_softmax(o, axis=-1):
    """log softmax(o) along ``axis``, computed as o − logsumexp(o) (finite for any finite o)."""
    xp = backend.xp
    shifted = o - o.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(o, axis=-1):
    """softmax(o) along ``axis``, shifted by the max for stability."""
    xp = backend.xp
    e = xp.exp(o - o.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


class CrossEntropyCache(NamedTuple):
    probs: object  # (B, T, V) softmax of the logits
    targets: object  # (B, T) int
    mask: object  # (B, T) float, 1 on real tokens
    n_tokens: object  # N, the number of real tokens (0-d array)


def softmax_cross_entropy_forward(logits, targets, mask):
    """Mean negative log-likelihood of ``targets`` over the positions where ``mask`` is 1.

    Args:
        logits: (B, T, V) unnormalised scores o.
        targets: (B, T) int ids y.
        mask: (B, T) bool or float, true on real (non-PAD) target tokens.

    Returns:
        loss: 0-d array L, and a :class:`CrossEntropyCache`.
    """
    xp = backend.xp
    ### BEGIN SOLUTION
    logp = log_softmax(logits)
    m = mask.astype(logits.dtype)
    n = xp.maximum(m.sum(), 1)
    picked = xp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    loss = -(picked * m).sum() / n
    ### END SOLUTION
    return loss, CrossEntropyCache(xp.exp(logp), targets, m, n)


def softmax_cross_entropy_backward(cache: CrossEntropyCache, dloss=1.0):
    """dL/do = m (softmax(o) − onehot(y)) / N, times the upstream ``dloss``.

    Returns:
        dlogits: (B, T, V).
    """
    ### BEGIN SOLUTION
    xp = backend.xp
    probs, targets, m, n = cache
    dlogits = probs.copy()
    B, T, _ = probs.shape
    b_idx = xp.arange(B)[:, None]
    t_idx = xp.arange(T)[None, :]
    dlogits[b_idx, t_idx, targets] -= 1
    dlogits *= (m * (dloss / n))[..., None].astype(probs.dtype)
    return dlogits
    ### END SOLUTION
