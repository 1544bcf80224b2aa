"""The pointer-generator's own ops (See, Liu & Manning 2017, "Get To The Point"), one decoder step,
in the symbols of :mod:`minis2s.functional.attention`.

With s_t the decoder state, hbar_i the encoder outputs, alpha^t the attention, c_t the context
and cov^t the coverage (See et al. write h_i, a^t, h*_t and c^t):

    coverage attention (eq. 11)  e_i^t = vᵀ tanh(k_i + s_t W2 + w_c cov_i^t),   k_i = hbar_i W1 + b
                                 alpha^t = masked softmax(e^t),   cov^t = Σ_{t'<t} alpha^{t'}
    coverage loss (eq. 12)       covloss_t = Σ_i min(alpha_i^t, cov_i^t)
    generation prob. (eq. 8)     p_gen = σ(l),   l = w_h·c_t + w_s·s_t + w_x·x_t + b_ptr
    final mixture (eq. 9)        P(w) = p_gen P_vocab(w) + (1 − p_gen) P_copy(w),
                                 P_copy(w) = Σ_{i: w_i = w} alpha_i^t
    its stable log               log P(w) = logaddexp(log σ(l) + log P_vocab(w),
                                                      log σ(−l) + log P_copy(w))
    its loss (eq. 6)             nll_t = −log P(w*_t)
    with label smoothing ε       nll_t = (1 − ε)(−log P(w*_t)) + ε (−(1/V) Σ_{v<V} log P(v))

The coverage attention is the additive score of attention.py (See et al.'s W_h, W_s and b_attn
are its W1, W2 and the keys' bias b) on the keys k_i + w_c cov_i^t: coverage shifts each source
position's key by w_c times the attention it has already received.

P lives on the *extended vocabulary* of size V_ext = V + (most source OOVs of a row in the
batch): id V + k is the k-th distinct out-of-vocabulary word of that row's source, which only the
copy branch can produce.

Shapes: B batch, S source length, H decoder hidden, Hs encoder output size, A attention size,
D decoder input (embedding) size, V vocabulary, V_ext extended vocabulary.

The coverage attention works on one decoder step (coverage makes the steps sequential). The
mixture ops (:func:`p_gen_forward`, :func:`final_distribution_forward`,
:func:`pointer_nll_forward`, :func:`final_log_probs`, :func:`coverage_loss_forward`) also accept
a time axis, (B, T, ...) instead of (B, ...), so that a model can run all its steps at once;
``src_ext`` stays (B, S) and is shared by the T steps.

Derivations: docs/derivations/pointer.md (p_gen, the mixture, its stable log) and
docs/derivations/coverage.md (coverage attention and loss).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .. import _checks, backend
from .activations import (
    _masked_softmax,
    _masked_softmax_backward,
    log_sigmoid,
    log_softmax,
    sigmoid,
    softmax,
)
from .attention import AdditiveCache, _additive_backward, _additive_forward
from .linear import _matmul, _sum_outer

__all__ = [
    "sigmoid",
    "log_sigmoid",
    "copy_distribution",
    "coverage_attention_forward",
    "coverage_attention_backward",
    "coverage_loss_forward",
    "coverage_loss_backward",
    "p_gen_logit_forward",
    "p_gen_logit_backward",
    "p_gen_forward",
    "p_gen_backward",
    "final_distribution_forward",
    "final_distribution_backward",
    "pointer_nll_forward",
    "pointer_nll_backward",
    "final_log_probs",
]


# ---------------------------------------------------------------------------------------------
# The copy distribution P_copy(w) = Σ_{i: w_i = w} alpha_i
# ---------------------------------------------------------------------------------------------
def _flat_ids(src, n_ext):
    """Flat indices b·V_ext + src[b, i] into a (N·V_ext,) view of an (N, V_ext) array."""
    xp = backend.xp
    N = src.shape[0]
    return (xp.arange(N, dtype=xp.int64)[:, None] * n_ext + src).reshape(-1)


def _copy_distribution(alpha, src, n_ext):
    """P_copy (N, V_ext) from alpha (N, S) and src (N, S): a scatter-add, unchecked."""
    P_copy = backend.xp.zeros((alpha.shape[0], n_ext), dtype=alpha.dtype)
    backend.scatter_add(P_copy.reshape(-1), _flat_ids(src, n_ext), alpha.reshape(-1))
    return P_copy


@backend.device_inputs
def copy_distribution(alpha, src_ext, n_ext):
    """The copy distribution P_copy(w) = Σ_{i: src_ext_i = w} alpha_i over the extended vocabulary.

    A scatter-add (:func:`minis2s.backend.scatter_add`) of ``alpha`` into a zero (B, V_ext)
    array at the flat indices ``b·V_ext + src_ext[b, i]``: repeated source words add up, and an
    OOV word gets its slot V + k. See docs/derivations/pointer.md.

    Args:
        alpha: (B, S) attention weights (0 at padded positions).
        src_ext: (B, S) extended source ids, in [0, n_ext).
        n_ext: V_ext.

    Returns:
        (B, V_ext) array of alpha's dtype; its backward is the gather ``dcopy[b, src_ext[b, i]]``.
    """
    _checks.float_array("alpha", alpha, 2, "(B, S)")
    src_ext = _checks.int_array("src_ext", src_ext)
    _checks.shape("src_ext", src_ext, alpha.shape, "(B, S), the shape of alpha")
    n_ext = _checks.n_ext(n_ext)
    _checks.id_range("src_ext", src_ext, n_ext)
    return _copy_distribution(alpha, src_ext, n_ext)


# ---------------------------------------------------------------------------------------------
# 1. Coverage attention (eq. 11): the additive score on the keys k_i + w_c cov_i
# ---------------------------------------------------------------------------------------------
class CoverageAttentionCache(NamedTuple):
    score: AdditiveCache  # the additive score's cache (its keys are k + w_c cov)
    coverage: object  # (B, S) cov^t
    w_c: object  # (A,)
    e: object  # (B, S) the scores
    alpha: object  # (B, S) the weights, exactly 0 at masked positions


def _coverage_attention_forward(s, k, coverage, mask, params):
    """alpha = masked softmax of e_i = vᵀ tanh(k_i + w_c cov_i + s W2), unchecked.

    s (B, H), k (B, S, A), coverage (B, S), mask (B, S) bool, params {"W2", "v", "w_c"}.
    """
    k_cov = k + coverage[..., None] * params["w_c"]  # (B, S, A): coverage shifts the keys
    e, score_cache = _additive_forward(s[:, None], k_cov, params)  # (B, 1, S)
    alpha = _masked_softmax(e[:, 0], mask)
    return alpha, CoverageAttentionCache(score_cache, coverage, params["w_c"], e[:, 0], alpha)


def _coverage_attention_backward(dalpha, cache: CoverageAttentionCache):
    """-> ds (B, H), dk (B, S, A), dcoverage (B, S), {"W2", "v", "w_c"}, unchecked."""
    de = _masked_softmax_backward(dalpha, cache.alpha)
    ds, dk, grads = _additive_backward(de[:, None], cache.score)  # dk: of k + w_c cov
    ### BEGIN SOLUTION
    dcoverage = _matmul(dk, cache.w_c)  # (B, S)
    dw_c = _sum_outer(dk, cache.coverage[..., None])[:, 0]  # Σ_{b,i} dk_bi cov_bi, (A,)
    ### END SOLUTION
    return ds[:, 0], dk, dcoverage, {**grads, "w_c": dw_c}


@backend.device_inputs
def coverage_attention_forward(s, k, coverage, mask, W2, v, w_c):
    """Additive attention with coverage for one decoder step (See et al. eq. 11).

        e_i = vᵀ tanh(k_i + s W2 + w_c cov_i),   alpha = masked softmax(e)

    Derivation: docs/derivations/coverage.md.

    Args:
        s: (B, H) decoder state s_t.
        k: (B, S, A) the keys k_i = hbar_i W1 + b (See et al.: W_h h_i + b_attn), computed once
            per sequence by the caller, who gets ``dk`` back.
        coverage: (B, S) coverage cov^t = Σ_{t'<t} alpha^{t'} (zeros at the first step).
        mask: (B, S) bool, True on real source positions; every row needs one.
        W2: (H, A) (See et al.'s W_s); v: (A,); w_c: (A,).

    Returns:
        alpha: (B, S) weights, exactly 0 at masked positions, and a
        :class:`CoverageAttentionCache` (``.e`` holds the scores).
    """
    mask = _checks.coverage_attention(s, k, coverage, mask, W2, v, w_c)
    return _coverage_attention_forward(s, k, coverage, mask, {"W2": W2, "v": v, "w_c": w_c})


@backend.device_inputs
def coverage_attention_backward(dalpha, cache: CoverageAttentionCache):
    """Backward of :func:`coverage_attention_forward`.

    Derivation: docs/derivations/coverage.md.

    Args:
        dalpha: (B, S) upstream gradient of alpha (the attention's consumers, the coverage loss,
            and the later coverage vectors cov^{t'} = cov^t + alpha + ..., t' > t).

    Returns:
        ds (B, H), dk (B, S, A), dcoverage (B, S) (which the caller adds to the gradient of the
        earlier steps' alphas), and grads {"W2": (H, A), "v": (A,), "w_c": (A,)}. Masked
        positions get exactly 0 in dk and dcoverage.
    """
    _checks.is_instance("cache", cache, CoverageAttentionCache, "coverage_attention_forward")
    _checks.shape("dalpha", _checks.float_array("dalpha", dalpha, 2, "(B, S)",
                                                cache.alpha.dtype), cache.alpha.shape, "(B, S)")
    return _coverage_attention_backward(dalpha, cache)


# ---------------------------------------------------------------------------------------------
# 2. Coverage loss (eq. 12-13)
# ---------------------------------------------------------------------------------------------
class CoverageLossCache(NamedTuple):
    alpha: object  # (B, S) or (B, T, S) attention alpha^t
    coverage: object  # same shape, coverage cov^t
    weight: object  # (B,) or (B, T) target mask


def _coverage_loss_forward(alpha, coverage, weight):
    covloss = backend.xp.minimum(alpha, coverage).sum(axis=-1) * weight
    return covloss, CoverageLossCache(alpha, coverage, weight)


def _coverage_loss_backward(dcov, cache: CoverageLossCache):
    """d min(a, c): to alpha where a < c, to the coverage where c <= a (ties included)."""
    alpha, coverage, weight = cache
    ### BEGIN SOLUTION
    g = (dcov * weight)[..., None]
    to_alpha = alpha < coverage
    dalpha = g * to_alpha
    dcoverage = g * ~to_alpha
    ### END SOLUTION
    return dalpha, dcoverage


@backend.device_inputs
def coverage_loss_forward(alpha, coverage, weight):
    """covloss = weight · Σ_i min(alpha_i, cov_i) (See et al. eq. 12), per row.

    Derivation: docs/derivations/coverage.md.

    Args:
        alpha: (B, S) attention alpha^t of this step (or (B, T, S) for all steps at once).
        coverage: like alpha, the coverage cov^t *before* adding alpha.
        weight: (B,) (or (B, T)) target mask, 0 on PAD targets; bool, int or float; None = 1.

    Returns:
        covloss: (B,) (or (B, T)), and a :class:`CoverageLossCache`.
    """
    weight = _checks.coverage_loss(alpha, coverage, weight)
    return _coverage_loss_forward(alpha, coverage, weight)


@backend.device_inputs
def coverage_loss_backward(dcov, cache: CoverageLossCache):
    """Backward of :func:`coverage_loss_forward`: a subgradient of min.

    d min(a, c) goes entirely to alpha where a < c and entirely to coverage where c <= a
    (ties, including the a = c = 0 of padded positions and of the first step, go to coverage).

    Returns:
        dalpha, dcoverage: each like alpha.
    """
    _checks.is_instance("cache", cache, CoverageLossCache, "coverage_loss_forward")
    return _coverage_loss_backward(dcov, cache)


# ---------------------------------------------------------------------------------------------
# 3. Generation probability (eq. 8)
# ---------------------------------------------------------------------------------------------
class PGenCache(NamedTuple):
    c: object  # (B, Hs) context c_t (See et al.'s h*_t)
    s: object  # (B, H) decoder state s_t
    x: object  # (B, D) decoder input x_t
    w_h: object  # (Hs,)
    w_s: object  # (H,)
    w_x: object  # (D,)
    p_gen_logit: object  # (B,) the logit l
    p_gen: object  # (B,) σ(l)


def _p_gen_logit_forward(c, s, x, w_h, w_s, w_x, b_ptr):
    """l = w_h·c + w_s·s + w_x·x + b_ptr, unchecked (any leading axes)."""
    l = _matmul(c, w_h) + _matmul(s, w_s) + _matmul(x, w_x) + b_ptr
    return l, PGenCache(c, s, x, w_h, w_s, w_x, l, sigmoid(l))


def _p_gen_logit_backward(dl, cache: PGenCache):
    c, s, x, w_h, w_s, w_x, _l, _p = cache
    g = dl[..., None]
    grads = {"w_h": _sum_outer(c, g)[:, 0], "w_s": _sum_outer(s, g)[:, 0],
             "w_x": _sum_outer(x, g)[:, 0], "b_ptr": dl.sum().reshape(1)}
    return g * w_h, g * w_s, g * w_x, grads


@backend.device_inputs
def p_gen_logit_forward(c, s, x, w_h, w_s, w_x, b_ptr):
    """The logit l = w_h·c_t + w_s·s_t + w_x·x_t + b_ptr of p_gen = σ(l) (See et al. eq. 8).

    Feed the logit to :func:`pointer_nll_forward` and :func:`final_distribution_forward`,
    which take log σ(l) and log σ(−l) from it stably. Derivation: docs/derivations/pointer.md.

    Args:
        c: (B, Hs) context c_t; s: (B, H) decoder state; x: (B, D) decoder input. A time axis
            is allowed: (B, T, Hs), (B, T, H), (B, T, D).
        w_h: (Hs,); w_s: (H,); w_x: (D,); b_ptr: (1,).

    Returns:
        p_gen_logit: (B,) (or (B, T)), and a :class:`PGenCache` (which also holds p_gen).
    """
    _checks.p_gen(c, s, x, w_h, w_s, w_x, b_ptr)
    return _p_gen_logit_forward(c, s, x, w_h, w_s, w_x, b_ptr)


@backend.device_inputs
def p_gen_logit_backward(dlogit, cache: PGenCache):
    """Backward of :func:`p_gen_logit_forward`.

    Returns:
        dc (B, Hs), ds (B, H), dx (B, D) (with the time axis if there was one), and
        grads {"w_h": (Hs,), "w_s": (H,), "w_x": (D,), "b_ptr": (1,)}.
    """
    _checks.is_instance("cache", cache, PGenCache, "p_gen_logit_forward or p_gen_forward")
    return _p_gen_logit_backward(dlogit, cache)


@backend.device_inputs
def p_gen_forward(c, s, x, w_h, w_s, w_x, b_ptr):
    """p_gen = σ(w_h·c_t + w_s·s_t + w_x·x_t + b_ptr) (See et al. eq. 8).

    Same arguments as :func:`p_gen_logit_forward`; the cache holds the logit too
    (``cache.p_gen_logit``), which the stable loss needs. Derivation: docs/derivations/pointer.md.

    Returns:
        p_gen: (B,) (or (B, T)) in [0, 1], and a :class:`PGenCache`. p_gen rounds to exactly 1
        beyond a logit of about 37 (float64) or 17 (float32); the logit path keeps log p_gen
        and log(1 − p_gen) exact.
    """
    _checks.p_gen(c, s, x, w_h, w_s, w_x, b_ptr)
    _l, cache = _p_gen_logit_forward(c, s, x, w_h, w_s, w_x, b_ptr)
    return cache.p_gen, cache


@backend.device_inputs
def p_gen_backward(dp_gen, cache: PGenCache):
    """Backward of :func:`p_gen_forward`: dl = dp_gen · σ(l) σ(−l), then as the logit path.

    σ(−l) is recomputed from the logit rather than taken as 1 − p_gen, so the derivative stays
    exact (and nonzero) where p_gen rounds to 1.

    Returns:
        dc, ds, dx, grads {"w_h", "w_s", "w_x", "b_ptr"} as :func:`p_gen_logit_backward`.
    """
    _checks.is_instance("cache", cache, PGenCache, "p_gen_forward")
    return _p_gen_logit_backward(dp_gen * cache.p_gen * sigmoid(-cache.p_gen_logit), cache)


# ---------------------------------------------------------------------------------------------
# 4. The final distribution over the extended vocabulary (eq. 9), its stable log and its loss
# ---------------------------------------------------------------------------------------------
def _rows(vocab_logits, p_gen_logit, alpha, src_ext):
    """Flatten the leading axes to N = B (or B·T) rows: o (N, V), l (N,), alpha (N, S), src
    (N, S) (a (B, S) src_ext is shared by the T steps), and the leading shape."""
    lead = tuple(vocab_logits.shape[:-1])
    S = alpha.shape[-1]
    src = src_ext if src_ext.ndim == alpha.ndim else src_ext[:, None, :]
    src = backend.xp.broadcast_to(src, alpha.shape).reshape(-1, S)
    N = int(math.prod(lead))
    return (vocab_logits.reshape(N, -1), p_gen_logit.reshape(N), alpha.reshape(N, S), src,
            lead)


class FinalDistributionCache(NamedTuple):
    P_vocab: object  # (N, V) softmax of the vocabulary logits, N = B (or B·T)
    p_gen: object  # (N,) σ(l)
    one_minus_p_gen: object  # (N,) σ(−l), exact where p_gen rounds to 1
    alpha: object  # (N, S)
    src_ext: object  # (N, S) int extended source ids
    lead: tuple  # (B,) or (B, T)


def _final_distribution_forward(o, l, alpha, src, n_ext):
    """P = p_gen P_vocab + (1 − p_gen) P_copy over the extended vocabulary, (N, V_ext)."""
    V = o.shape[1]
    ### BEGIN SOLUTION
    P_vocab = softmax(o)
    p_gen, one_minus_p_gen = sigmoid(l), sigmoid(-l)
    P = one_minus_p_gen[:, None] * _copy_distribution(alpha, src, n_ext)
    P[:, :V] += p_gen[:, None] * P_vocab
    ### END SOLUTION
    return P, (P_vocab, p_gen, one_minus_p_gen)


def _final_distribution_backward(dP, cache: FinalDistributionCache):
    """-> dvocab_logits (N, V), dp_gen_logit (N,), dalpha (N, S)."""
    xp = backend.xp
    P_vocab, p, q, alpha, src, _lead = cache
    V = P_vocab.shape[1]
    ### BEGIN SOLUTION
    dP_vocab = dP[:, :V]
    dP_copy = xp.take_along_axis(dP, src, axis=1)  # (N, S): dP at each source word's slot
    vocab_dot = (P_vocab * dP_vocab).sum(axis=-1)  # Σ_w P_vocab(w) dP(w)
    dvocab_logits = p[:, None] * P_vocab * (dP_vocab - vocab_dot[:, None])
    dp_gen = vocab_dot - (alpha * dP_copy).sum(axis=-1)  # dP/dp_gen = P_vocab − P_copy
    dp_gen_logit = dp_gen * p * q  # σ'(l) = σ(l) σ(−l)
    dalpha = q[:, None] * dP_copy
    ### END SOLUTION
    return dvocab_logits, dp_gen_logit, dalpha


@backend.device_inputs
def final_distribution_forward(vocab_logits, p_gen_logit, alpha, src_ext, n_ext):
    """P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: src_ext_i = w} alpha_i (See et al. eq. 9).

    The textbook mixture: P_vocab = softmax(vocab_logits) fills the first V slots, and the copy
    distribution (:func:`copy_distribution`, a scatter-add) all V_ext. The backward of the
    scatter-add is a gather. Derivation: docs/derivations/pointer.md.

    For training use the stable :func:`pointer_nll_forward`; for decoding,
    :func:`final_log_probs`. This op gives the probabilities themselves.

    Args:
        vocab_logits: (B, V) (or (B, T, V)) vocabulary scores; P_vocab = softmax.
        p_gen_logit: (B,) (or (B, T)) logit l of p_gen (see :func:`p_gen_logit_forward`).
        alpha: (B, S) (or (B, T, S)) attention, 0 at padded positions.
        src_ext: (B, S) (or like alpha) int extended source ids, in [0, n_ext).
        n_ext: V_ext >= V.

    Returns:
        P: (B, V_ext) (or (B, T, V_ext)); rows sum to 1 (alpha rows summing to 1). And a
        :class:`FinalDistributionCache`.
    """
    src_ext = _checks.mixture(vocab_logits, p_gen_logit, alpha, src_ext)
    n_ext = _checks.n_ext(n_ext, vocab_logits.shape[-1])
    o, l, a, src, lead = _rows(vocab_logits, p_gen_logit, alpha, src_ext)
    _checks.id_range("src_ext", src, n_ext)
    P, (P_vocab, p, q) = _final_distribution_forward(o, l, a, src, n_ext)
    return P.reshape(lead + (n_ext,)), FinalDistributionCache(P_vocab, p, q, a, src, lead)


@backend.device_inputs
def final_distribution_backward(dP, cache: FinalDistributionCache):
    """Backward of :func:`final_distribution_forward`. Derivation: docs/derivations/pointer.md.

    Args:
        dP: (B, V_ext) (or (B, T, V_ext)) upstream gradient.

    Returns:
        dvocab_logits (B, V), dp_gen_logit (B,), dalpha (B, S) (with the time axis if there
        was one). dalpha_i = (1 − p_gen) dP[src_ext_i]: the gather that undoes the scatter.
    """
    _checks.is_instance("cache", cache, FinalDistributionCache, "final_distribution_forward")
    lead = cache.lead
    do, dl, da = _final_distribution_backward(dP.reshape(cache.P_vocab.shape[0], -1), cache)
    return (do.reshape(lead + do.shape[-1:]), dl.reshape(lead), da.reshape(lead + da.shape[-1:]))


def _log_mixture(logp_vocab, l, P_copy):
    """log P = logaddexp(log σ(l) + log P_vocab, log σ(−l) + log P_copy): eq. 9 in log space.

    Each branch is −inf where its probability is 0 (P_vocab of an OOV slot, P_copy of a word
    absent from the source); log P is −inf only where both are. Returns (log P, the generation
    branch, the copy branch). ``l`` broadcasts against the others.
    """
    xp = backend.xp
    ### BEGIN SOLUTION
    log_gen = log_sigmoid(l) + logp_vocab
    positive = P_copy > 0
    log_copy = xp.where(positive, log_sigmoid(-l) + xp.log(xp.where(positive, P_copy, 1)),
                        -xp.inf)
    log_P = xp.logaddexp(log_gen, log_copy)
    ### END SOLUTION
    return log_P, log_gen, log_copy


class PointerNLLCache(NamedTuple):
    P_vocab: object  # (N, V) softmax of the vocabulary logits
    p_gen_logit: object  # (N,) the logit l of p_gen
    log_gen: object  # (N,) log branch a = log p_gen + log P_vocab(y), −inf if y >= V
    log_copy: object  # (N,) log branch b = log(1 − p_gen) + log P_copy(y), −inf if P_copy(y) = 0
    log_P: object  # (N,) log P(y) = logaddexp(a, b)
    hit: object  # (N, S) bool, src_ext_i == y
    target: object  # (N,) y, clipped to [0, V) (only used where y < V)
    floored: object  # (N,) bool, y >= V and P_copy(y) < tiny: the floored rows
    weight: object  # (N,)
    lead: tuple  # (B,) or (B, T)
    label_smoothing: float = 0.0  # ε
    uniform: object = None  # ε > 0: r_gen(v), r_copy(v) (N, V) over v < V, and (N, S)
    #                         [src_i < V] (1 − p_gen) / P(src_i)


def _pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight,
                         label_smoothing=0.0):
    """nll = −log P(target) · weight, unchecked (see :func:`pointer_nll_forward`); ``weight``
    is a float array of the leading shape. With ε = ``label_smoothing`` > 0,
    nll = weight · [(1 − ε)(−log P(target)) + ε U],  U = −(1/V) Σ_{v<V} log P(v)."""
    xp = backend.xp
    o, l, a, src, lead = _rows(vocab_logits, p_gen_logit, alpha, src_ext)
    y, w = target.reshape(-1), weight.reshape(-1)
    V = o.shape[1]
    tiny = float(xp.finfo(o.dtype).tiny)
    logp_vocab = log_softmax(o)
    in_vocab = y < V
    y_v = xp.where(in_vocab, y, 0)
    logp_y = xp.where(in_vocab, logp_vocab[xp.arange(o.shape[0]), y_v], -xp.inf)  # log P_vocab(y)
    hit = src == y[:, None]
    P_copy = (a * hit).sum(axis=-1)  # P_copy(y)
    floored = ~in_vocab & (P_copy < tiny)  # an OOV target without copy mass: floor it
    P_copy = xp.where(floored, tiny, P_copy)
    log_P, log_gen, log_copy = _log_mixture(logp_y, l, P_copy)
    nll = -log_P * w
    eps, uniform = label_smoothing, None
    if eps:  # log P(v) at every vocabulary word v < V (the OOV slots get no smoothing mass)
        src_v = xp.where(src < V, src, V)  # the OOV positions go to a spare column V, dropped
        P_copy_v = _copy_distribution(a, src_v, V + 1)[:, :V]
        log_P_v, log_gen_v, log_copy_v = _log_mixture(logp_vocab, l[:, None], P_copy_v)
        U = -log_P_v.mean(axis=-1)  # −(1/V) Σ_v log P(v): finite, as P(v) >= p_gen P_vocab(v)
        nll = ((1 - eps) * -log_P + eps * U) * w
        coef_v = xp.exp(xp.minimum(log_sigmoid(-l)[:, None] - log_P_v, -math.log(tiny)))
        coef_src = xp.where(src < V, xp.take_along_axis(coef_v, xp.minimum(src, V - 1), axis=1),
                            0)  # (1 − p_gen) / P(src_i) at the vocabulary words of the source
        uniform = (xp.exp(log_gen_v - log_P_v), xp.exp(log_copy_v - log_P_v), coef_src)
    cache = PointerNLLCache(xp.exp(logp_vocab), l, log_gen, log_copy, log_P, hit, y_v, floored,
                            w, lead, eps, uniform)
    return nll.reshape(lead), cache


def _pointer_nll_backward(dnll, cache: PointerNLLCache):
    """-> dvocab_logits, dp_gen_logit, dalpha with the leading shape, unchecked. With label
    smoothing ε the target's terms below are weighted by 1 − ε, and the uniform part's by ε
    (docs/derivations/pointer.md, "Label smoothing")."""
    xp = backend.xp
    P_vocab, l, log_gen, log_copy, log_P, hit, y_v, floored, w, lead, eps, uniform = cache
    N = P_vocab.shape[0]
    tiny = float(xp.finfo(P_vocab.dtype).tiny)
    w_all = w
    if eps:
        w = w * (1 - eps)  # the target's share of q
    ### BEGIN SOLUTION
    g = dnll.reshape(-1) * w
    p, q = sigmoid(l), sigmoid(-l)
    r_gen = xp.exp(log_gen - log_P)  # the branches' shares of P(y), summing to 1
    r_copy = xp.exp(log_copy - log_P)
    dvocab_logits = (g * r_gen)[:, None] * P_vocab
    dvocab_logits[xp.arange(N), y_v] -= g * r_gen
    # p − r_gen = r_copy − (1 − p): take the form without cancellation when p is near 1.
    dp_gen_logit = g * xp.where(p > 0.5, r_copy - q, p - r_gen)
    coef = xp.exp(xp.minimum(log_sigmoid(-l) - log_P, -math.log(tiny)))  # (1 − p_gen) / P(y)
    coef = xp.where(floored, 0, coef)
    dalpha = -(g * coef)[:, None] * hit
    ### END SOLUTION
    if eps:  # U = −(1/V) Σ_{v<V} log P(v): each log P(v) differentiated as log P(y) above
        r_gen_v, r_copy_v, coef_src = uniform
        V = P_vocab.shape[1]
        g_u = dnll.reshape(-1) * w_all * eps
        dvocab_logits += (g_u / V)[:, None] * (r_gen_v.sum(axis=-1)[:, None] * P_vocab - r_gen_v)
        dp_gen_logit += g_u * (r_copy_v.mean(axis=-1) - sigmoid(-l))
        dalpha -= (g_u / V)[:, None] * coef_src
    return (dvocab_logits.reshape(lead + P_vocab.shape[1:]), dp_gen_logit.reshape(lead),
            dalpha.reshape(lead + hit.shape[1:]))


@backend.device_inputs
def pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight,
                        label_smoothing=0.0):
    """nll = −log P(target) · weight for the pointer-generator mixture, computed in log space.

    With l the p_gen logit, y the target and P_copy(y) = Σ_{i: src_ext_i = y} alpha_i:

        a = log σ(l) + log_softmax(vocab_logits)[y]     (−inf when y >= V: P_vocab(y) = 0)
        b = log σ(−l) + log P_copy(y)                   (−inf when P_copy(y) = 0)
        log P(y) = logaddexp(a, b),    log σ(l) = −softplus(−l)

    so the value and the gradients stay finite and exact for any finite logits, including a
    saturated p_gen (|l| = 50 or 1e4), as long as P(y) > 0 in one branch.

    Zero in both branches happens only for an OOV target (y >= V) whose copy mass is 0: a target
    that was built wrong (an OOV absent from the source must be UNK), or attention that
    underflowed to exactly 0. For y >= V the copy mass is therefore floored,
    P_copy(y) ← max(P_copy(y), tiny) with tiny the dtype's smallest normal number (1.2e-38 in
    float32, 2.2e-308 in float64): the loss stays finite (softplus(l) + 87.3 in float32,
    + 708.4 in float64, where it binds), its gradient pushes p_gen toward copying and gives
    alpha 0 (the floor is flat). For y < V nothing is floored: the vocabulary branch is finite.
    Derivation: docs/derivations/pointer.md.

    Args:
        vocab_logits: (B, V) (or (B, T, V)); p_gen_logit: (B,) (or (B, T)); alpha: (B, S) (or
            (B, T, S)); src_ext: (B, S) (or like alpha) extended source ids, >= 0.
        target: (B,) (or (B, T)) int extended target ids y, >= 0.
        weight: (B,) (or (B, T)) target mask, 0 on PAD targets (bool, int or float); None = 1.
        label_smoothing: ε in [0, 1). With ε > 0 the target distribution is
            q = (1 − ε) onehot(y) + ε/V over the V fixed-vocabulary words (PAD included, as
            the plain cross-entropy's; the row's OOV slots V + k get only the target's mass),
            and nll = weight · [(1 − ε)(−log P(y)) + ε (−(1/V) Σ_{v<V} log P(v))], each
            log P(v) through the same stable mixture (finite: P(v) >= p_gen P_vocab(v) > 0).

    Returns:
        nll: (B,) (or (B, T)), −log P(y) · weight (or its smoothed form), and a
        :class:`PointerNLLCache`.
    """
    src_ext = _checks.mixture(vocab_logits, p_gen_logit, alpha, src_ext)
    lead = tuple(vocab_logits.shape[:-1])
    target = _checks.int_array("target", target)
    _checks.shape("target", target, lead, "the leading shape of vocab_logits, (B,) or (B, T)")
    weight = _checks.target_weight("weight", weight, lead, vocab_logits.dtype)
    _checks.non_negative_ids("src_ext", src_ext)
    _checks.non_negative_ids("target", target)
    eps = _checks.label_smoothing(label_smoothing)
    return _pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight, eps)


@backend.device_inputs
def pointer_nll_backward(dnll, cache: PointerNLLCache):
    """Backward of :func:`pointer_nll_forward`. Derivation: docs/derivations/pointer.md.

    With r_gen = exp(a − log P) and r_copy = exp(b − log P) (the two branches' shares of
    P(y), summing to 1) and g = dnll · weight:

        dvocab_logits = g r_gen (P_vocab − onehot(y))
        dp_gen_logit  = g (p_gen − r_gen) = g (r_copy − (1 − p_gen))
        dalpha_i      = −g [src_ext_i = y] (1 − p_gen) / P(y)

    (1 − p_gen) / P(y) = exp(log σ(−l) − log P) is capped at 1/tiny so it stays finite even
    where P(y) itself is not representable; it is 0 on floored rows.

    With label smoothing ε these are weighted by 1 − ε, and the uniform part adds, with
    r_gen(v), r_copy(v) the branches' shares of P(v) at each vocabulary word v < V:

        dvocab_logits += (g ε / V) (Σ_v r_gen(v) P_vocab − r_gen)
        dp_gen_logit  += g ε ((1/V) Σ_v r_copy(v) − (1 − p_gen))
        dalpha_i      −= (g ε / V) [src_ext_i < V] (1 − p_gen) / P(src_ext_i)

    Returns:
        dvocab_logits (B, V), dp_gen_logit (B,), dalpha (B, S) (with the time axis if any).
    """
    _checks.is_instance("cache", cache, PointerNLLCache, "pointer_nll_forward")
    _checks.shape("dnll", _checks.float_array("dnll", dnll), cache.lead,
                  "the shape of nll, (B,) or (B, T)")
    return _pointer_nll_backward(dnll, cache)


# ---------------------------------------------------------------------------------------------
# 5. Log-probabilities for decoding
# ---------------------------------------------------------------------------------------------
def _final_log_probs(o, l, alpha, src, n_ext):
    """log P (N, V_ext) through :func:`_log_mixture`, unchecked."""
    xp = backend.xp
    N, V = o.shape
    logp_vocab = xp.full((N, n_ext), -xp.inf, dtype=o.dtype)  # P_vocab is 0 on the OOV slots
    logp_vocab[:, :V] = log_softmax(o)
    log_P, _, _ = _log_mixture(logp_vocab, l[:, None], _copy_distribution(alpha, src, n_ext))
    return log_P


@backend.device_inputs
def final_log_probs(vocab_logits, p_gen_logit, alpha, src_ext, n_ext):
    """log P(w) over the extended vocabulary for greedy and beam search (forward only).

        log P(w) = logaddexp(log σ(l) + log_softmax(vocab_logits)[w]  (w < V, else −inf),
                             log σ(−l) + log P_copy(w)                 (−inf where P_copy = 0))

    Finite wherever P(w) > 0; −inf exactly where P(w) = 0, i.e. only at OOV slots w >= V
    that no source word fills (or whose copy weight is 0), which search then never picks.
    Vocabulary entries are always finite, even with p_gen saturated. Derivation:
    docs/derivations/pointer.md §5.

    Args:
        as :func:`final_distribution_forward`.

    Returns:
        (B, V_ext) (or (B, T, V_ext)) log-probabilities, of vocab_logits' dtype.
    """
    src_ext = _checks.mixture(vocab_logits, p_gen_logit, alpha, src_ext)
    n_ext = _checks.n_ext(n_ext, vocab_logits.shape[-1])
    o, l, a, src, lead = _rows(vocab_logits, p_gen_logit, alpha, src_ext)
    _checks.id_range("src_ext", src, n_ext)
    return _final_log_probs(o, l, a, src, n_ext).reshape(lead + (n_ext,))
