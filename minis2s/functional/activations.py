"""The activations every other op shares, each written once: σ, log σ, softmax, log-softmax and
the masked softmax.

    σ(a) = 1 / (1 + e^{−a}),     log σ(a) = min(a, 0) − log(1 + e^{−|a|})
    softmax(o)_v = exp(o_v − max o) / Σ_u exp(o_u − max o)
    log softmax(o) = o − logsumexp(o),   logsumexp(o) = max o + log Σ_v exp(o_v − max o)
    masked softmax: alpha_s = m_s exp(e_s − max_{s': m_s'} e_s') / Σ_{s'} m_s' exp(e_s' − ...)

σ takes e^{−|a|} only, which never overflows; it is exact to rounding in relative terms on both
sides (p_gen = σ(−50) ≈ 2e-22 keeps its digits) and gives exactly 0 or 1 where the true value is
below the dtype's smallest normal number. The masked softmax gives the masked positions exactly
0 weight, and so exactly 0 gradient.

Derivations: docs/derivations/linear_and_loss.md (softmax, log-softmax),
docs/derivations/attention.md#masked-softmax (masked softmax), docs/derivations/gru.md (σ) and
docs/derivations/pointer.md (log σ).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .. import _checks, backend

__all__ = ["sigmoid", "log_sigmoid", "softmax", "log_softmax", "masked_softmax_forward",
           "masked_softmax_backward", "MaskedSoftmaxCache"]


def _exp_minus_abs(a):
    """e^{−|a|}, and exactly 0 where it would fall below the smallest normal number (no
    underflow, so no warning under ``errstate(all="raise")``)."""
    xp = backend.xp
    cut = -math.log(float(xp.finfo(a.dtype).tiny)) - 1.0  # e^{−cut} = e·tiny: still normal
    n = xp.abs(a)
    return xp.exp(-xp.minimum(n, cut)) * (n < cut)


def sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}) as 1 / (1 + z) for a ≥ 0 and z / (1 + z) for a < 0, z = e^{−|a|}.

    Keeps a's dtype; no overflow for any a, no cancellation on either side.
    """
    z = _exp_minus_abs(a)
    return backend.xp.where(a >= 0, 1, z) / (1 + z)


def log_sigmoid(a):
    """log σ(a) = −softplus(−a) = min(a, 0) − log1p(e^{−|a|}); finite for every finite a."""
    xp = backend.xp
    return xp.minimum(a, 0) - xp.log1p(_exp_minus_abs(a))


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


# --------------------------------------------------------------------------------------------
# The masked softmax (attention's step 2b; the pointer's coverage attention)
# --------------------------------------------------------------------------------------------
class MaskedSoftmaxCache(NamedTuple):
    alpha: object  # (B, ..., S) the weights, exactly 0 where the mask is False


def _row_mask(mask, ndim):
    """mask (B, S) -> (B, 1, ..., 1, S), to broadcast against scores of ``ndim`` axes."""
    return mask.reshape(mask.shape[:1] + (1,) * (ndim - 2) + mask.shape[1:])


def _masked_softmax(e, mask):
    """alpha = masked softmax of e (B, ..., S) over the positions where mask (B, S) is True.

    Unchecked: every mask row needs a True (an all-False row gives NaN).
    """
    xp = backend.xp
    ### BEGIN SOLUTION
    e = xp.where(_row_mask(mask, e.ndim), e, -xp.inf)  # masked scores -> −inf -> weight 0
    alpha = xp.exp(e - e.max(axis=-1, keepdims=True))  # shift by the max over real positions
    return alpha / alpha.sum(axis=-1, keepdims=True)
    ### END SOLUTION


def _masked_softmax_backward(dalpha, alpha):
    """de = alpha ⊙ (dalpha − Σ_s alpha_s dalpha_s); exactly 0 where alpha is 0."""
    ### BEGIN SOLUTION
    return alpha * (dalpha - (alpha * dalpha).sum(axis=-1, keepdims=True))
    ### END SOLUTION


@backend.device_inputs
def masked_softmax_forward(e, mask):
    """Softmax over the last axis of ``e``, on the positions where ``mask`` is True only.

        alpha_s = mask_s exp(e_s − m) / Σ_s' mask_s' exp(e_s' − m),   m = max_{s: mask_s} e_s

    Masked positions get exactly 0, whatever ``e`` holds there (even NaN); shifting by the max
    over the real positions keeps every exponent ≤ 0, so extreme scores (±1e4) stay finite.

    Args:
        e: (B, S), or (B, T, S) (any axes between B and S), float scores.
        mask: (B, S) bool (or 0/1), True on real positions, shared by the middle axes. Every
            row needs at least one True: an empty row is a ValueError naming the rows.

    Returns:
        alpha: like e, each row summing to 1; and a :class:`MaskedSoftmaxCache`.

    Derivation: docs/derivations/attention.md#masked-softmax.
    """
    mask = _checks.masked_scores(e, mask)
    alpha = _masked_softmax(e, mask)
    return alpha, MaskedSoftmaxCache(alpha)


@backend.device_inputs
def masked_softmax_backward(dalpha, cache: MaskedSoftmaxCache):
    """Backward of :func:`masked_softmax_forward`: de = alpha ⊙ (dalpha − Σ_s alpha_s dalpha_s).

    Args:
        dalpha: like alpha, the upstream gradient.

    Returns:
        de: like alpha; exactly 0 at masked positions (where alpha is exactly 0).

    Derivation: docs/derivations/attention.md#masked-softmax.
    """
    _checks.is_instance("cache", cache, MaskedSoftmaxCache, "masked_softmax_forward")
    _checks.float_array("dalpha", dalpha, cache.alpha.ndim, dtype=cache.alpha.dtype)
    _checks.shape("dalpha", dalpha, cache.alpha.shape, "the shape of alpha")
    return _masked_softmax_backward(dalpha, cache.alpha)
