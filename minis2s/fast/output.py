"""The fast tier of the output layer and its loss: o = r W + b and the masked cross-entropy,
on the real target tokens only.

The textbook (reference) path computes the logits at every position of the (B, T) grid, then
the loss masks the PAD positions out, and their gradient is exactly 0::

    o = r W + b                        (B, T, V)     minis2s.functional.linear._linear_forward
    L = −(1/N) Σ m log softmax(o)[y]                 minis2s.functional.loss (N = Σ m)
    dr = do Wᵀ,  dW = Σ rᵀ do,  db = Σ do           minis2s.functional.linear._linear_backward

Here the N positions with m ≠ 0 (about 2/3 of B·T in padded translation batches) are gathered
first, so that the three largest products of a training step, each (N × D) by (D × V) with
V ≈ 6,000–9,000 words, skip the PAD rows; the loss runs on those rows with one exp
(:mod:`minis2s.fast.loss`); and the gradient comes back as do = diag(w) G with G = softmax −
onehot(y) formed in place and one weight w_n = m_n dloss / N per row, folded into the small
(N, D) side of the products::

    r̃ = r[real]                        (N, D)        the gather
    õ = r̃ W + b                        (N, V)        the only logits computed
    dr[real] = w ⊙ (G Wᵀ),  dr = 0 on PAD            the scatter: (N, D) rows into (B, T, D)
    dW = (w ⊙ r̃)ᵀ G,   db = wᵀ G                     G is never scaled, never copied

The pointer-generator's vocabulary projection and mixture NLL
(:func:`pointer_readout_nll_forward`) are the same with a weight per row from the mixture:
its decoder runs step by step (coverage makes it sequential), but its projection and loss run
once over all T steps after the loop, so they gather the real tokens in the same way. So does
input feeding's training (``AttentionSeq2Seq._forward_steps`` projects once after its loop).
Decoding, one step at a time with every row real, keeps the layer's ``step_forward``.

Unchecked internals (the models check their batches first).
"""

from __future__ import annotations

from typing import NamedTuple

from .. import backend
from ..functional.activations import softmax
from . import loss as _loss

__all__ = ["ReadoutLossCache", "readout_loss_forward", "readout_loss_backward",
           "weighted_linear_backward", "PointerReadoutCache", "pointer_readout_nll_forward",
           "pointer_readout_nll_backward"]


class ReadoutLossCache(NamedTuple):
    r: object  # (B, T, D) the readout input at every position
    r_real: object  # (N, D) its real rows
    W: object  # (D, V)
    b: object  # (V,) or None
    ce: _loss.CrossEntropyCache  # of the N real rows; ce.idx are their flat indices

    @property
    def probs(self):
        """softmax(o) at every position, (B, T, V), recomputed from the cached r and the weights
        as they are now (read it before an optimizer step). For inspection only: training
        never reads it."""
        o = self.r @ self.W
        if self.b is not None:
            o = o + self.b
        return softmax(o)


def readout_loss_forward(r, W, b, targets, mask, label_smoothing=0.0):
    """Equals: minis2s.functional.linear._linear_forward(r, W, b) followed by
    minis2s.functional.loss._softmax_cross_entropy_forward(o, targets, mask, label_smoothing)
    (to the clamp's bound, see :mod:`minis2s.fast.loss`).

    Args:
        r: (B, T, D) readout inputs ([c; s] with attention, s without).
        W: (D, V), b: (V,) or None, the output layer.
        targets: (B, T) int ids y in [0, V). mask: (B, T) bool or float, nonzero on real tokens.
        label_smoothing: ε in [0, 1) (checked by the caller), as the reference's.

    Returns:
        The loss L (0-d array) and a :class:`ReadoutLossCache`.
    """
    xp = backend.xp
    B, T, D = r.shape
    idx = _loss._real_rows(mask)
    r_real = r.reshape(B * T, D)[idx]
    o = r_real @ W  # (N, V): a fresh buffer, which the loss overwrites with exp
    if b is not None:
        o += b
    m = mask.reshape(-1)[idx].astype(r.dtype)
    n = xp.maximum(mask.astype(r.dtype).sum(), 1)
    loss, softmax = _loss._cross_entropy_rows(o, targets.reshape(-1)[idx], m, n, label_smoothing)
    ce = _loss.CrossEntropyCache(softmax, m, n, idx, (B, T, W.shape[1]))
    return loss, ReadoutLossCache(r, r_real, W, b, ce)


def weighted_linear_backward(G, w, x, W, dW_out=None):
    """The backward of y = x W + b for dy = diag(w) G, without forming dy:

        dx = w ⊙ (G Wᵀ),   dW = (w ⊙ x)ᵀ G,   db = wᵀ G

    G (N, V), w (N,), x (N, D), W (D, V) -> dx (N, D), dW (D, V), db (V,). ``dW_out``: a
    (D, V) array to write dW into (overwritten, not added to), instead of a new one."""
    xp = backend.xp
    w = w[:, None]
    dx = G @ W.T
    dx *= w
    dW = xp.matmul((x * w).T, G, out=dW_out)
    db = w[:, 0] @ G
    return dx, dW, db


def readout_loss_backward(cache: ReadoutLossCache, dloss=1.0, dW_out=None):
    """Equals: the backward of the reference pair, minis2s.functional.loss.
    _softmax_cross_entropy_backward then minis2s.functional.linear._linear_backward.

    Returns:
        dr (B, T, D), exactly 0 at the positions where the mask is 0; dW (D, V) (written into
        ``dW_out`` when given: the model passes its zeroed ``grads``, saving a (D, V) buffer
        and a pass that adds it in); db (V,) or None (no bias).
    """
    ce = cache.ce
    B, T, _ = ce.shape
    w = (ce.weight * (dloss / ce.n_tokens)).astype(cache.r.dtype)
    dr_real, dW, db = weighted_linear_backward(ce.softmax.gradient(), w, cache.r_real, cache.W,
                                               dW_out)
    dr = _loss._scatter_rows(dr_real, ce.idx, B * T).reshape(cache.r.shape)
    return dr, dW, (db if cache.b is not None else None)


# --------------------------------------------------------------------------------------------
# The pointer-generator: the vocabulary projection and the mixture's NLL
# --------------------------------------------------------------------------------------------
class PointerReadoutCache(NamedTuple):
    hidden_real: object  # (N, H) the projection's input on the rows of nonzero weight
    W: object  # (H, V)
    b: object  # (V,) or None
    H: int
    nll: _loss.PointerNLLCache  # of the N rows; nll.idx and nll.lead place them

    @property
    def lead(self):
        """(B, T), the leading shape of the loss."""
        return self.nll.lead


def pointer_readout_nll_forward(hidden, W, b, p_gen_logit, alpha, src_ext, target, weight,
                                label_smoothing=0.0):
    """Equals: minis2s.functional.linear._linear_forward(hidden, W, b) followed by
    minis2s.functional.pointer._pointer_nll_forward(o, p_gen_logit, alpha, src_ext, target,
    weight, label_smoothing) (to the clamp's bound, see :mod:`minis2s.fast.loss`).

    The vocabulary logits o = hidden W + b are computed on the rows of nonzero ``weight`` only.

    Args:
        hidden: (B, T, H) the projection's input. W: (H, V), b: (V,) or None.
        p_gen_logit: (B, T). alpha: (B, T, S). src_ext: (B, S) extended ids.
        target: (B, T) extended ids. weight: (B, T) float, 0 on PAD targets.
        label_smoothing: ε in [0, 1) (checked by the caller), as the reference's.

    Returns:
        nll (B, T) (0 where the weight is 0) and a :class:`PointerReadoutCache`.
    """
    idx, l, a, src, y, w, lead = _loss._pointer_inputs(p_gen_logit, alpha, src_ext, target,
                                                        weight)
    H = hidden.shape[-1]
    hidden_real = hidden.reshape(-1, H)[idx]
    o = hidden_real @ W  # (N, V): a fresh buffer, which the loss overwrites with exp
    if b is not None:
        o += b
    words = _loss._source_words(alpha, src_ext, idx) if label_smoothing else None
    nll, nll_cache = _loss._pointer_nll_rows(o, l, a, src, y, w, idx, lead, label_smoothing,
                                             words)
    return (_loss._scatter_rows(nll, idx, hidden.size // H).reshape(lead),
            PointerReadoutCache(hidden_real, W, b, H, nll_cache))


def pointer_readout_nll_backward(dnll, cache: PointerReadoutCache):
    """Equals: the backward of the reference pair, minis2s.functional.pointer.
    _pointer_nll_backward then minis2s.functional.linear._linear_backward.

    Args:
        dnll: (B, T) upstream gradient.

    Returns:
        dhidden (B, T, H), dW (H, V), db (V,) or None, dp_gen_logit (B, T), dalpha (B, T, S);
        all exactly 0 on the rows of weight 0.
    """
    c = cache.nll
    G, w, dl, da = _loss._pointer_nll_rows_backward(dnll.reshape(-1)[c.idx], c)
    dh, dW, db = weighted_linear_backward(G, w, cache.hidden_real, cache.W)
    n_all = dnll.size
    scatter = _loss._scatter_rows
    return (scatter(dh, c.idx, n_all).reshape(c.lead + (cache.H,)), dW,
            db if cache.b is not None else None, scatter(dl, c.idx, n_all).reshape(c.lead),
            scatter(da, c.idx, n_all).reshape(c.lead + da.shape[1:]))
