"""The activations every other op shares, each written once: σ, softmax and log-softmax.

    σ(a) = 1 / (1 + e^{−a}),     computed as 0.5·(1 + tanh(a/2)): no overflow for any a
    softmax(o)_v = exp(o_v − max o) / Σ_u exp(o_u − max o)
    log softmax(o) = o − logsumexp(o),   logsumexp(o) = max o + log Σ_v exp(o_v − max o)

Derivation: docs/derivations/linear_and_loss.md (softmax, log-softmax) and
docs/derivations/gru.md (σ).
"""

from __future__ import annotations

from .. import backend

__all__ = ["sigmoid", "softmax", "log_softmax"]


def sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}), as 0.5·(1 + tanh(a/2)), which cannot overflow. Keeps a's dtype."""
    return 0.5 * (1 + backend.xp.tanh(0.5 * a))


def softmax(o, axis=-1):
    """softmax(o) along ``axis``, shifted by the max for stability."""
    xp = backend.xp
    e = xp.exp(o - o.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(o, axis=-1):
    """log softmax(o) along ``axis``, as o − logsumexp(o) (finite for any finite o)."""
    xp = backend.xp
    shifted = o - o.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
