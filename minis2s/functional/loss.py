"""Masked softmax cross-entropy over all decoder steps at once, stable through log-sum-exp.

With logits o (B, T, V), targets y (B, T) and mask m (B, T) (1 on real tokens, 0 on PAD):

    log p_t = o_t − logsumexp(o_t),      logsumexp(o) = max(o) + log Σ_v exp(o_v − max(o))
    L = −(1/N) Σ_{b,t} m_bt log p_bt[y_bt],       N = Σ m

and the gradient is dL/do_bt = m_bt (softmax(o_bt) − onehot(y_bt)) / N.

**Label smoothing** (ε in [0, 1), Szegedy et al. 2016) replaces the one-hot target by
q_t = (1 − ε) onehot(y_t) + ε/V, uniform over *all* V classes (PAD, BOS, EOS and UNK included,
as ``torch.nn.functional.cross_entropy(label_smoothing=ε)`` and fairseq do):

    L_ε = (1/N) Σ_{b,t} m_bt [(1 − ε)(−log p_bt[y_bt]) + ε (−(1/V) Σ_v log p_bt[v])]
    dL_ε/do_bt = m_bt (softmax(o_bt) − q_bt) / N

and −(1/V) Σ_v log p[v] = logsumexp(o) − mean_v o_v. ε = 0 is the plain loss, bit for bit.

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
    label_smoothing: float = 0.0  # ε


def _softmax_cross_entropy_forward(logits, targets, mask, label_smoothing=0.0):
    """L = −(1/N) Σ m log softmax(o)[y], unchecked; with ε = ``label_smoothing`` > 0 the
    smoothed L_ε = (1 − ε) L + ε (1/N) Σ m (−mean_v log softmax(o)[v])."""
    xp = backend.xp
    ### BEGIN SOLUTION
    logp = log_softmax(logits)
    m = mask.astype(logits.dtype)
    n = xp.maximum(m.sum(), 1)
    picked = xp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    loss = -(picked * m).sum() / n
    ### END SOLUTION
    eps = label_smoothing
    if eps:  # the uniform part of q: −(1/V) Σ_v log p_v per token
        uniform = -(logp.mean(axis=-1) * m).sum() / n
        loss = (1 - eps) * loss + eps * uniform
    return loss, CrossEntropyCache(xp.exp(logp), targets, m, n, eps)


def _softmax_cross_entropy_backward(cache: CrossEntropyCache, dloss=1.0):
    """dL/do = m (softmax(o) − onehot(y)) / N · dloss, unchecked; with label smoothing ε,
    m (softmax(o) − q) / N · dloss, q = (1 − ε) onehot(y) + ε/V."""
    xp = backend.xp
    probs, targets, m, n, eps = cache
    B, T, V = probs.shape
    if eps:  # p − q = (p − ε/V + ε onehot(y)) − onehot(y): the smoothing's share first
        probs = probs - eps / V
        probs[xp.arange(B)[:, None], xp.arange(T)[None, :], targets] += eps
    ### BEGIN SOLUTION
    dlogits = probs.copy()
    dlogits[xp.arange(B)[:, None], xp.arange(T)[None, :], targets] -= 1  # p − onehot(y)
    dlogits *= (m * (dloss / n))[..., None].astype(probs.dtype)
    ### END SOLUTION
    return dlogits


@backend.device_inputs
def softmax_cross_entropy_forward(logits, targets, mask, label_smoothing=0.0):
    """Mean negative log-likelihood of ``targets`` over the positions where ``mask`` is 1.

    Args:
        logits: (B, T, V) unnormalised scores o.
        targets: (B, T) int ids y, in [0, V).
        mask: (B, T) bool or float, true on real (non-PAD) target tokens.
        label_smoothing: ε in [0, 1): the cross-entropy against q = (1 − ε) onehot(y) + ε/V,
            uniform over all V classes (see the module docstring); 0 is the plain NLL.

    Returns:
        loss: 0-d array L, and a :class:`CrossEntropyCache`.
    """
    targets, mask = _checks.cross_entropy(logits, targets, mask)
    eps = _checks.label_smoothing(label_smoothing)
    return _softmax_cross_entropy_forward(logits, targets, mask, eps)


@backend.device_inputs
def softmax_cross_entropy_backward(cache: CrossEntropyCache, dloss=1.0):
    """dL/do = m (softmax(o) − q) / N, times the upstream ``dloss``: q = onehot(y), or with
    label smoothing ε the forward's q = (1 − ε) onehot(y) + ε/V.

    Returns:
        dlogits: (B, T, V).
    """
    _checks.is_instance("cache", cache, CrossEntropyCache, "softmax_cross_entropy_forward")
    return _softmax_cross_entropy_backward(cache, dloss)
