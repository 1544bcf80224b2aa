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


def flush_subnormals(a, non_negative=False):
    """In place: set the entries of ``a`` smaller in magnitude than the smallest normal number of
    its dtype (|a| < 1.2e-38 in float32, 2.2e-308 in float64) to exactly 0; return ``a``.

    Such subnormal numbers are far below every other value's rounding error, so flushing them
    changes no result that matters, but they are ruinous for speed: x86 CPUs handle them in
    microcode, and a matrix product full of them runs about 100 times slower (measured here:
    0.07 s against 10.5 s for a (960, 9000) × (9000, 256) product). Softmax outputs and the
    gradients built from them acquire them late in training, when probabilities of unlikely
    words fall below 1e-38. ``non_negative=True`` skips the absolute value (probabilities).
    """
    xp = backend.xp
    tiny = xp.finfo(a.dtype).tiny
    xp.copyto(a, 0, where=(a if non_negative else xp.abs(a)) < tiny)
    return a


@backend.device_inputs
def log_softmax(o, axis=-1):
    """log softmax(o) along ``axis``, computed as o − logsumexp(o) (finite for any finite o)."""
    xp = backend.xp
    shifted = o - o.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


@backend.device_inputs
def softmax(o, axis=-1):
    """softmax(o) along ``axis``, shifted by the max for stability."""
    xp = backend.xp
    e = xp.exp(o - o.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return flush_subnormals(e, non_negative=True)


class CrossEntropyCache(NamedTuple):
    probs: object  # (B, T, V) softmax of the logits
    targets: object  # (B, T) int
    mask: object  # (B, T) float, 1 on real tokens
    n_tokens: object  # N, the number of real tokens (0-d array)


@backend.device_inputs
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
    return loss, CrossEntropyCache(flush_subnormals(xp.exp(logp), True), targets, m, n)


@backend.device_inputs
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
    return flush_subnormals(dlogits)  # it feeds the output layer's matrix products
    ### END SOLUTION
