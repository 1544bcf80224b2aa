"""The pointer-generator's own ops (See, Liu & Manning 2017, "Get To The Point"), one decoder step.

With the decoder state s_t, the encoder outputs h_i, the attention a^t and the context h*_t:

    coverage attention (eq. 11)  e_i^t = vᵀ tanh(W_h h_i + W_s s_t + w_c c_i^t + b_attn)
                                 a^t   = masked softmax(e^t),   c^t = Σ_{t'<t} a^{t'}   (c^0 = 0)
    coverage loss (eq. 12)       covloss_t = Σ_i min(a_i^t, c_i^t)
    generation prob. (eq. 8)     p_gen = σ(w_hᵀ h*_t + w_sᵀ s_t + w_xᵀ x_t + b_ptr)
    final mixture (eq. 9)        P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: w_i = w} a_i^t
    its loss (eq. 6)             nll_t = −log P(w*_t)

P lives on the *extended vocabulary* of size V_ext = V + (most source OOVs of a row in the
batch): id V + k is the k-th distinct out-of-vocabulary word of that row's source, which only the
copy branch can produce.

Shapes: B batch, S source length, H decoder hidden, Hs encoder output size, A attention size,
D decoder input (embedding) size, V vocabulary, V_ext extended vocabulary.

Every op works on one decoder step, so a model with coverage calls them inside its loop over T.
The mixture ops (:func:`p_gen_forward`, :func:`final_distribution_forward`,
:func:`pointer_nll_forward`, :func:`final_log_probs`, :func:`coverage_loss_forward`) also accept
a time axis, (B, T, ...) instead of (B, ...), so a model without coverage can run all its steps at
once; ``src_ext`` stays (B, S) and is shared by the T steps.

Derivations: docs/derivations/pointer.md (p_gen, the mixture, its stable log) and
docs/derivations/coverage.md (coverage attention and loss).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

from .. import backend
from .loss import flush_subnormals, log_softmax, softmax

__all__ = [
    "sigmoid",
    "log_sigmoid",
    "masked_softmax",
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
# Input validation (runs before any math; every message names the argument)
# ---------------------------------------------------------------------------------------------


def _float_array(name, a, ndims=None):
    if not backend.is_array(a):
        raise TypeError(
            f"{name} must be a float array (NumPy or {backend.name}); got {type(a).__name__}"
        )
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array; got dtype {a.dtype}")
    if ndims is not None and a.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name} must have {want} dimensions; got shape {tuple(a.shape)}")
    return a


def _int_array(name, a):
    if not backend.is_array(a):
        raise TypeError(
            f"{name} must be an int array (NumPy or {backend.name}); got {type(a).__name__}"
        )
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids; got dtype {a.dtype}")
    return backend.asarray(a)


def _same_dtype(ref_name, ref, **others):
    for name, a in others.items():
        if a.dtype != ref.dtype:
            raise TypeError(
                f"{name} must have the dtype of {ref_name} ({ref.dtype}); got {a.dtype} "
                "(mixing float32 and float64 would silently upcast)"
            )


def _shape(name, a, expected, desc):
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {desc} = {tuple(expected)}; got {tuple(a.shape)}")


def _weight(name, weight, shape, dtype):
    """The target mask: None (all ones), bool, int or float, of ``shape``; returned as ``dtype``."""
    xp = backend.xp
    if weight is None:
        return xp.ones(shape, dtype=dtype)
    if not backend.is_array(weight):
        raise TypeError(f"{name} must be an array of shape {tuple(shape)}; got "
                        f"{type(weight).__name__}")
    _shape(name, weight, shape, "the leading shape (B,) or (B, T)")
    if weight.dtype.kind == "f" and weight.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (or bool/int); got {weight.dtype}")
    return backend.asarray(weight).astype(dtype, copy=False)


def _n_ext(n_ext, V=None):
    if isinstance(n_ext, bool) or not isinstance(n_ext, numbers.Integral):
        raise TypeError(f"n_ext must be an int (V_ext, the extended vocabulary size); got "
                        f"{n_ext!r} ({type(n_ext).__name__})")
    if V is None and n_ext < 1:
        raise ValueError(f"n_ext must be a positive int (V_ext); got {n_ext}")
    if V is not None and n_ext < V:
        raise ValueError(f"n_ext must be >= V = {V} (vocab_logits.shape[-1]); got {n_ext}")
    return int(n_ext)


def _id_range(name, ids, high):
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= high:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name} holds id {bad}, outside the extended vocabulary [0, {high}) "
                         f"(n_ext = {high})")


def _non_negative(name, ids):
    lo = int(ids.min())
    if lo < 0:
        raise ValueError(f"{name} holds id {lo}; ids must be >= 0 (extended vocabulary ids)")


def _mixture_inputs(vocab_logits, p_gen_logit, alpha, src_ext):
    """Validate the inputs shared by the mixture ops; return them flattened to N = B·T rows.

    Returns (o, l, a, src, lead): o (N, V), l (N,), a (N, S), src (N, S) int, and the leading
    shape lead, (B,) or (B, T).
    """
    _float_array("vocab_logits", vocab_logits, ndims=(2, 3))
    lead = tuple(vocab_logits.shape[:-1])
    V = vocab_logits.shape[-1]
    desc = "(B,)" if len(lead) == 1 else "(B, T)"
    _float_array("p_gen_logit", p_gen_logit)
    _shape("p_gen_logit", p_gen_logit, lead, f"{desc} (the leading shape of vocab_logits)")
    _float_array("alpha", alpha, ndims=(len(lead) + 1,))
    _shape("alpha", alpha, lead + (alpha.shape[-1],), f"{desc[:-1]}, S)")
    _same_dtype("vocab_logits", vocab_logits, p_gen_logit=p_gen_logit, alpha=alpha)
    src_ext = _int_array("src_ext", src_ext)
    S = alpha.shape[-1]
    if tuple(src_ext.shape) not in ((lead[0], S), lead + (S,)):
        raise ValueError(f"src_ext must have shape (B, S) = {(lead[0], S)} (S from alpha); got "
                         f"{tuple(src_ext.shape)}")
    if V < 1 or S < 1:
        raise ValueError(f"vocab_logits and alpha must not be empty; got V = {V}, S = {S}")
    src = src_ext if src_ext.ndim == alpha.ndim else src_ext[:, None, :]
    src = backend.xp.broadcast_to(src, alpha.shape).reshape(-1, S)
    N = int(math.prod(lead))
    return (vocab_logits.reshape(N, V), p_gen_logit.reshape(N), alpha.reshape(N, S), src, lead)


# ---------------------------------------------------------------------------------------------
# Small stable helpers
# ---------------------------------------------------------------------------------------------


def sigmoid(l):
    """σ(l) = 1 / (1 + exp(−l)) without overflow: exp is only ever taken of −|l| ≤ 0."""
    xp = backend.xp
    z = xp.exp(-xp.abs(l))
    return xp.where(l >= 0, 1 / (1 + z), z / (1 + z))


@backend.device_inputs
def log_sigmoid(l):
    """log σ(l) = −softplus(−l) = min(l, 0) − log1p(exp(−|l|)); finite for every finite l."""
    xp = backend.xp
    return xp.minimum(l, 0) - xp.log1p(xp.exp(-xp.abs(l)))


@backend.device_inputs
def masked_softmax(e, mask=None):
    """Softmax of the scores e (..., S) over the positions where ``mask`` is true.

    Masked positions get exactly 0 weight, and since the softmax backward multiplies by the
    weights, exactly 0 gradient too. A row with no true position gets all-zero weights
    instead of NaN. ``mask=None`` means every position is real.
    """
    xp = backend.xp
    if mask is None:
        return softmax(e, axis=-1)
    m = xp.where(mask, e, -xp.inf).max(axis=-1, keepdims=True)  # −inf on an all-masked row
    ex = xp.exp(xp.where(mask, e - m, -xp.inf))
    denom = ex.sum(axis=-1, keepdims=True)
    ex /= xp.where(denom > 0, denom, 1)
    return flush_subnormals(ex, non_negative=True)


def _flat_ids(src, n_ext):
    """Flat indices b·V_ext + src[b, i] into a (N·V_ext,) view of an (N, V_ext) array."""
    xp = backend.xp
    N = src.shape[0]
    return (xp.arange(N, dtype=xp.int64)[:, None] * n_ext + src).reshape(-1)


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
    _float_array("alpha", alpha, ndims=(2,))
    src_ext = _int_array("src_ext", src_ext)
    _shape("src_ext", src_ext, alpha.shape, "(B, S), the shape of alpha")
    n_ext = _n_ext(n_ext)
    _id_range("src_ext", src_ext, n_ext)
    out = backend.xp.zeros((alpha.shape[0], n_ext), dtype=alpha.dtype)
    backend.scatter_add(out.reshape(-1), _flat_ids(src_ext, n_ext), alpha.reshape(-1))
    return out


# ---------------------------------------------------------------------------------------------
# 1. Coverage attention (eq. 11)
# ---------------------------------------------------------------------------------------------


class CoverageAttentionCache(NamedTuple):
    s: object  # (B, H) decoder state s_t
    coverage: object  # (B, S) coverage c^t
    u: object  # (B, S, A) tanh(W_h h_i + W_s s_t + w_c c_i + b_attn)
    alpha: object  # (B, S) attention weights a^t
    W_s: object  # (H, A)
    w_c: object  # (A,)
    v: object  # (A,)


@backend.device_inputs
def coverage_attention_forward(enc_keys, s, coverage, mask, W_s, w_c, b_attn, v):
    """Additive attention with coverage for one decoder step (See et al. eq. 11).

        u_i = tanh(enc_keys_i + s_t W_s + c_i w_c + b_attn),  e_i = vᵀ u_i,
        alpha = masked softmax(e)

    Derivation: docs/derivations/coverage.md.

    Args:
        enc_keys: (B, S, A) the encoder outputs times W_h (h_i W_h, W_h of shape (Hs, A)),
            computed once per sequence by the caller, who gets ``d_enc_keys`` back.
        s: (B, H) decoder state s_t.
        coverage: (B, S) coverage c^t = Σ_{t'<t} a^{t'} (zeros at t = 0).
        mask: (B, S) bool, true on real source positions (None: all real).
        W_s: (H, A); w_c: (A,); b_attn: (A,); v: (A,).

    Returns:
        alpha: (B, S) weights, exactly 0 at masked positions (a row without any real position
        gets all zeros); e: (B, S) the raw scores (before masking); and a
        :class:`CoverageAttentionCache`.
    """
    xp = backend.xp
    _float_array("enc_keys", enc_keys, ndims=(3,))
    B, S, A = enc_keys.shape
    _float_array("s", s, ndims=(2,))
    if s.shape[0] != B:
        raise ValueError(f"s must have shape (B, H) with B = {B} (from enc_keys); got {s.shape}")
    H = s.shape[1]
    _float_array("coverage", coverage)
    _shape("coverage", coverage, (B, S), "(B, S)")
    _float_array("W_s", W_s)
    _shape("W_s", W_s, (H, A), "(H, A)")
    for name, p in (("w_c", w_c), ("b_attn", b_attn), ("v", v)):
        _float_array(name, p)
        _shape(name, p, (A,), "(A,)")
    _same_dtype("enc_keys", enc_keys, s=s, coverage=coverage, W_s=W_s, w_c=w_c, b_attn=b_attn,
                v=v)
    if mask is not None:
        if not backend.is_array(mask):
            raise TypeError(f"mask must be a bool array of shape (B, S); got {type(mask).__name__}")
        _shape("mask", mask, (B, S), "(B, S)")
        mask = backend.asarray(mask).astype(bool, copy=False)
    ### BEGIN SOLUTION
    feat = enc_keys + (s @ W_s + b_attn)[:, None, :]
    feat += coverage[:, :, None] * w_c
    u = xp.tanh(feat, out=feat)
    e = u @ v
    alpha = masked_softmax(e, mask)
    return alpha, e, CoverageAttentionCache(s, coverage, u, alpha, W_s, w_c, v)
    ### END SOLUTION


@backend.device_inputs
def coverage_attention_backward(dalpha, cache: CoverageAttentionCache):
    """Backward of :func:`coverage_attention_forward`.

    Derivation: docs/derivations/coverage.md.

    Args:
        dalpha: (B, S) upstream gradient of alpha (the attention's consumers, the coverage loss,
            and the later coverage vectors c^{t'} = c^t + alpha + ..., t' > t).

    Returns:
        d_enc_keys (B, S, A), ds (B, H), dcoverage (B, S) (which the caller adds to the
        gradient of the previous steps' alphas), and grads {"W_s": (H, A), "w_c": (A,),
        "b_attn": (A,), "v": (A,)}. Masked positions get exactly 0 in d_enc_keys and dcoverage.
    """
    s, coverage, u, alpha, W_s, w_c, v = cache
    ### BEGIN SOLUTION
    B, S, A = u.shape
    de = alpha * (dalpha - (alpha * dalpha).sum(axis=-1, keepdims=True))
    dv = u.reshape(-1, A).T @ de.reshape(-1)
    dfeat = de[:, :, None] * v * (1 - u * u)
    dq = dfeat.sum(axis=1)
    ds = dq @ W_s.T
    dW_s = s.T @ dq
    db_attn = dq.sum(axis=0)
    dcoverage = dfeat @ w_c
    dw_c = dfeat.reshape(-1, A).T @ coverage.reshape(-1)
    grads = {"W_s": dW_s, "w_c": dw_c, "b_attn": db_attn, "v": dv}
    return dfeat, ds, dcoverage, grads
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# 2. Coverage loss (eq. 12-13)
# ---------------------------------------------------------------------------------------------


class CoverageLossCache(NamedTuple):
    alpha: object  # (B, S) or (B, T, S) attention a^t
    coverage: object  # same shape, coverage c^t
    weight: object  # (B,) or (B, T) target mask


@backend.device_inputs
def coverage_loss_forward(alpha, coverage, weight):
    """covloss = weight · Σ_i min(alpha_i, coverage_i) (See et al. eq. 12), per row.

    Derivation: docs/derivations/coverage.md.

    Args:
        alpha: (B, S) attention a^t of this step (or (B, T, S) for all steps at once).
        coverage: like alpha, the coverage c^t *before* adding alpha.
        weight: (B,) (or (B, T)) target mask, 0 on PAD targets; bool, int or float; None = 1.

    Returns:
        covloss: (B,) (or (B, T)), and a :class:`CoverageLossCache`.
    """
    _float_array("alpha", alpha, ndims=(2, 3))
    _float_array("coverage", coverage)
    _shape("coverage", coverage, alpha.shape, "the shape of alpha")
    _same_dtype("alpha", alpha, coverage=coverage)
    weight = _weight("weight", weight, alpha.shape[:-1], alpha.dtype)
    ### BEGIN SOLUTION
    covloss = backend.xp.minimum(alpha, coverage).sum(axis=-1) * weight
    return covloss, CoverageLossCache(alpha, coverage, weight)
    ### END SOLUTION


@backend.device_inputs
def coverage_loss_backward(dcov, cache: CoverageLossCache):
    """Backward of :func:`coverage_loss_forward`: a subgradient of min.

    d min(a, c) goes entirely to alpha where a < c and entirely to coverage where c <= a
    (ties, including the a = c = 0 of padded positions and of t = 0, go to coverage).

    Returns:
        dalpha, dcoverage: each like alpha.
    """
    alpha, coverage, weight = cache
    ### BEGIN SOLUTION
    g = (dcov * weight)[..., None]
    to_alpha = alpha < coverage
    dalpha = g * to_alpha
    dcoverage = g * ~to_alpha
    return dalpha, dcoverage
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# 3. Generation probability (eq. 8)
# ---------------------------------------------------------------------------------------------


class PGenCache(NamedTuple):
    context: object  # (B, Hs) context h*_t
    s: object  # (B, H) decoder state s_t
    x: object  # (B, D) decoder input x_t
    w_h: object  # (Hs,)
    w_s: object  # (H,)
    w_x: object  # (D,)
    p_gen_logit: object  # (B,) the logit l
    p_gen: object  # (B,) σ(l)


@backend.device_inputs
def p_gen_logit_forward(context, s, x, w_h, w_s, w_x, b_ptr):
    """The logit l = w_h·h*_t + w_s·s_t + w_x·x_t + b_ptr of p_gen = σ(l) (See et al. eq. 8).

    Feed the logit to :func:`pointer_nll_forward` and :func:`final_distribution_forward`,
    which take log σ(l) and log σ(−l) from it stably. Derivation: docs/derivations/pointer.md.

    Args:
        context: (B, Hs) context vector h*_t; s: (B, H) decoder state; x: (B, D) decoder input.
            A time axis is allowed: (B, T, Hs), (B, T, H), (B, T, D).
        w_h: (Hs,); w_s: (H,); w_x: (D,); b_ptr: (1,).

    Returns:
        p_gen_logit: (B,) (or (B, T)), and a :class:`PGenCache` (which also holds p_gen).
    """
    _float_array("context", context, ndims=(2, 3))
    lead = tuple(context.shape[:-1])
    desc = "(B, " if len(lead) == 1 else "(B, T, "
    _float_array("s", s)
    _shape("s", s, lead + (s.shape[-1],), desc + "H)")
    _float_array("x", x)
    _shape("x", x, lead + (x.shape[-1],), desc + "D)")
    for name, p, n, sym in (("w_h", w_h, context.shape[-1], "Hs"), ("w_s", w_s, s.shape[-1], "H"),
                            ("w_x", w_x, x.shape[-1], "D"), ("b_ptr", b_ptr, 1, "1")):
        _float_array(name, p)
        _shape(name, p, (n,), f"({sym},)")
    _same_dtype("context", context, s=s, x=x, w_h=w_h, w_s=w_s, w_x=w_x, b_ptr=b_ptr)
    ### BEGIN SOLUTION
    logit = context @ w_h + s @ w_s + x @ w_x + b_ptr
    p_gen = sigmoid(logit)
    return logit, PGenCache(context, s, x, w_h, w_s, w_x, logit, p_gen)
    ### END SOLUTION


@backend.device_inputs
def p_gen_logit_backward(dlogit, cache: PGenCache):
    """Backward of :func:`p_gen_logit_forward`.

    Returns:
        dcontext (B, Hs), ds (B, H), dx (B, D) (with the time axis if there was one), and
        grads {"w_h": (Hs,), "w_s": (H,), "w_x": (D,), "b_ptr": (1,)}.
    """
    context, s, x, w_h, w_s, w_x, _logit, _p = cache
    ### BEGIN SOLUTION
    g = dlogit[..., None]
    dcontext, ds, dx = g * w_h, g * w_s, g * w_x
    flat = dlogit.reshape(-1)
    grads = {
        "w_h": context.reshape(-1, w_h.shape[0]).T @ flat,
        "w_s": s.reshape(-1, w_s.shape[0]).T @ flat,
        "w_x": x.reshape(-1, w_x.shape[0]).T @ flat,
        "b_ptr": flat.sum(keepdims=True),
    }
    return dcontext, ds, dx, grads
    ### END SOLUTION


@backend.device_inputs
def p_gen_forward(context, s, x, w_h, w_s, w_x, b_ptr):
    """p_gen = σ(w_h·h*_t + w_s·s_t + w_x·x_t + b_ptr) (See et al. eq. 8), a stable sigmoid.

    Same arguments as :func:`p_gen_logit_forward`; the cache holds the logit too
    (``cache.p_gen_logit``), which the stable loss needs. Derivation: docs/derivations/pointer.md.

    Returns:
        p_gen: (B,) (or (B, T)) in [0, 1], and a :class:`PGenCache`. p_gen rounds to exactly 1
        beyond a logit of about 37 (float64) or 17 (float32), and to 0 only below about −745
        (float64) or −104 (float32); the logit path keeps log p_gen and log(1 − p_gen) exact.
    """
    _logit, cache = p_gen_logit_forward(context, s, x, w_h, w_s, w_x, b_ptr)
    return cache.p_gen, cache


@backend.device_inputs
def p_gen_backward(dp_gen, cache: PGenCache):
    """Backward of :func:`p_gen_forward`: dl = dp_gen · σ(l) σ(−l), then as the logit path.

    σ(−l) is recomputed from the logit rather than taken as 1 − p_gen, so the derivative stays
    exact (and nonzero) where p_gen rounds to 1.

    Returns:
        dcontext, ds, dx, grads {"w_h", "w_s", "w_x", "b_ptr"} as :func:`p_gen_logit_backward`.
    """
    ### BEGIN SOLUTION
    dlogit = dp_gen * cache.p_gen * sigmoid(-cache.p_gen_logit)
    return p_gen_logit_backward(dlogit, cache)
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# 4. The final distribution over the extended vocabulary (eq. 9) and its loss (eq. 6)
# ---------------------------------------------------------------------------------------------


class FinalDistributionCache(NamedTuple):
    P_vocab: object  # (N, V) softmax of the vocabulary logits, N = B (or B·T)
    p_gen: object  # (N,) σ(l)
    one_minus_p_gen: object  # (N,) σ(−l), exact where p_gen rounds to 1
    alpha: object  # (N, S)
    src_ext: object  # (N, S) int extended source ids
    lead: tuple  # (B,) or (B, T)


@backend.device_inputs
def final_distribution_forward(vocab_logits, p_gen_logit, alpha, src_ext, n_ext, *,
                               check_ids=True):
    """P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: src_ext_i = w} alpha_i (See et al. eq. 9).

    The copy term is a scatter-add of (1 − p_gen) alpha into P at the flat indices
    ``b·V_ext + src_ext[b, i]`` (:func:`minis2s.backend.scatter_add`): O(B·S) work on top of
    the O(B·V_ext) that P itself needs, no Python loop over the batch. A one-hot matmul would
    build a (B, S, V_ext) array (64 × 400 × 50k = 1.3e9 numbers): far too big. The backward
    of the scatter-add is a gather. Derivation: docs/derivations/pointer.md.

    For training use the fused, stable :func:`pointer_nll_forward`; for decoding,
    :func:`final_log_probs`. This op gives the probabilities themselves.

    Args:
        vocab_logits: (B, V) (or (B, T, V)) vocabulary scores; P_vocab = softmax.
        p_gen_logit: (B,) (or (B, T)) logit l of p_gen (see :func:`p_gen_logit_forward`).
        alpha: (B, S) (or (B, T, S)) attention, 0 at padded positions.
        src_ext: (B, S) (or like alpha) int extended source ids, PAD at padded positions.
        n_ext: V_ext >= V.
        check_ids: verify that every src_ext id lies in [0, n_ext) (an out-of-range id would
            otherwise land in a neighbouring row). It reads two numbers back from the device.

    Returns:
        P: (B, V_ext) (or (B, T, V_ext)); rows sum to 1 (alpha rows summing to 1). And a
        :class:`FinalDistributionCache`.
    """
    xp = backend.xp
    o, l, a, src, lead = _mixture_inputs(vocab_logits, p_gen_logit, alpha, src_ext)
    V = o.shape[1]
    n_ext = _n_ext(n_ext, V)
    if check_ids:
        _id_range("src_ext", src, n_ext)
    ### BEGIN SOLUTION
    P_vocab = softmax(o, axis=-1)
    p, q = sigmoid(l), sigmoid(-l)
    P = xp.zeros((o.shape[0], n_ext), dtype=o.dtype)
    P[:, :V] = p[:, None] * P_vocab
    backend.scatter_add(P.reshape(-1), _flat_ids(src, n_ext), (q[:, None] * a).reshape(-1))
    cache = FinalDistributionCache(P_vocab, p, q, a, src, lead)
    return P.reshape(lead + (n_ext,)), cache
    ### END SOLUTION


@backend.device_inputs
def final_distribution_backward(dP, cache: FinalDistributionCache):
    """Backward of :func:`final_distribution_forward`. Derivation: docs/derivations/pointer.md.

    Args:
        dP: (B, V_ext) (or (B, T, V_ext)) upstream gradient.

    Returns:
        dvocab_logits (B, V), dp_gen_logit (B,), dalpha (B, S) (with the time axis if there
        was one). dalpha_i = (1 − p_gen) dP[src_ext_i]: the gather that undoes the scatter.
    """
    xp = backend.xp
    P_vocab, p, q, alpha, src, lead = cache
    ### BEGIN SOLUTION
    V = P_vocab.shape[1]
    dP = dP.reshape(P_vocab.shape[0], -1)
    dP_v = dP[:, :V]
    g = xp.take_along_axis(dP, src, axis=1)  # (N, S): dP at each source word's slot
    vocab_dot = (P_vocab * dP_v).sum(axis=-1)  # Σ_w P_vocab(w) dP(w)
    dvocab_logits = p[:, None] * P_vocab * (dP_v - vocab_dot[:, None])
    dp = vocab_dot - (alpha * g).sum(axis=-1)
    dp_gen_logit = dp * p * q
    dalpha = q[:, None] * g
    return (dvocab_logits.reshape(lead + (V,)), dp_gen_logit.reshape(lead),
            dalpha.reshape(lead + (alpha.shape[1],)))
    ### END SOLUTION


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


@backend.device_inputs
def pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight, *,
                        check_ids=True):
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
            (B, T, S)); src_ext: (B, S) (or like alpha) extended source ids.
        target: (B,) (or (B, T)) int extended target ids y, in [0, V_ext).
        weight: (B,) (or (B, T)) target mask, 0 on PAD targets (bool, int or float); None = 1.
        check_ids: verify that the src_ext ids are >= 0 and the target ids are >= 0 (reads
            numbers back from the device).

    Returns:
        nll: (B,) (or (B, T)), −log P(y) · weight, and a :class:`PointerNLLCache`.
    """
    xp = backend.xp
    o, l, a_, src, lead = _mixture_inputs(vocab_logits, p_gen_logit, alpha, src_ext)
    target = _int_array("target", target)
    _shape("target", target, lead, "the leading shape of vocab_logits, (B,) or (B, T)")
    w = _weight("weight", weight, lead, o.dtype).reshape(-1)
    y = target.reshape(-1)
    if check_ids:
        _non_negative("src_ext", src)
        _non_negative("target", y)
    V = o.shape[1]
    tiny = float(xp.finfo(o.dtype).tiny)
    ### BEGIN SOLUTION
    logp_vocab = log_softmax(o, axis=-1)
    in_vocab = y < V
    y_v = xp.where(in_vocab, y, 0)
    rows = xp.arange(o.shape[0])
    log_gen = xp.where(in_vocab, log_sigmoid(l) + logp_vocab[rows, y_v], -xp.inf)
    hit = src == y[:, None]
    P_copy = (a_ * hit).sum(axis=-1)
    floored = ~in_vocab & (P_copy < tiny)
    P_copy = xp.where(floored, tiny, P_copy)
    positive = P_copy > 0
    log_copy = xp.where(positive, log_sigmoid(-l) + xp.log(xp.where(positive, P_copy, 1)),
                        -xp.inf)
    log_P = xp.logaddexp(log_gen, log_copy)
    nll = -log_P * w
    P_vocab = flush_subnormals(xp.exp(logp_vocab), non_negative=True)
    cache = PointerNLLCache(P_vocab, l, log_gen, log_copy, log_P, hit, y_v, floored, w, lead)
    return nll.reshape(lead), cache
    ### END SOLUTION


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

    Returns:
        dvocab_logits (B, V), dp_gen_logit (B,), dalpha (B, S) (with the time axis if any).
    """
    xp = backend.xp
    P_vocab, l, log_gen, log_copy, log_P, hit, y_v, floored, w, lead = cache
    ### BEGIN SOLUTION
    g = dnll.reshape(-1) * w
    p, q = sigmoid(l), sigmoid(-l)
    r_gen = xp.exp(log_gen - log_P)
    r_copy = xp.exp(log_copy - log_P)
    dvocab_logits = (g * r_gen)[:, None] * P_vocab
    dvocab_logits[xp.arange(P_vocab.shape[0]), y_v] -= g * r_gen
    flush_subnormals(dvocab_logits)  # it feeds the vocabulary projection's matrix products
    # p − r_gen = r_copy − (1 − p): take the form without cancellation when p is near 1.
    dp_gen_logit = g * xp.where(p > 0.5, r_copy - q, p - r_gen)
    tiny = float(xp.finfo(P_vocab.dtype).tiny)
    coef = xp.exp(xp.minimum(log_sigmoid(-l) - log_P, -math.log(tiny)))
    coef = xp.where(floored, 0, coef)
    dalpha = -(g * coef)[:, None] * hit
    V, S = P_vocab.shape[1], hit.shape[1]
    return (dvocab_logits.reshape(lead + (V,)), dp_gen_logit.reshape(lead),
            dalpha.reshape(lead + (S,)))
    ### END SOLUTION


# ---------------------------------------------------------------------------------------------
# 5. Log-probabilities for decoding
# ---------------------------------------------------------------------------------------------


@backend.device_inputs
def final_log_probs(vocab_logits, p_gen_logit, alpha, src_ext, n_ext, *, check_ids=True):
    """log P(w) over the extended vocabulary for greedy and beam search (forward only).

        log P(w) = logaddexp(log σ(l) + log_softmax(vocab_logits)[w]  (w < V, else −inf),
                             log σ(−l) + log P_copy(w)                 (−inf where P_copy = 0))

    Finite wherever P(w) > 0; −inf exactly where P(w) = 0, i.e. only at OOV slots w >= V
    that no source word fills (or whose copy weight is 0), which search then never picks.
    Vocabulary entries are always finite, even with p_gen saturated. Only the ≤ S slots named
    by the source carry copy mass, so the copy term is mixed in there alone (gather, logaddexp,
    write back): O(B·V_ext) with a small constant. Derivation: docs/derivations/pointer.md §5.

    Args:
        as :func:`final_distribution_forward`.

    Returns:
        (B, V_ext) (or (B, T, V_ext)) log-probabilities, of vocab_logits' dtype.
    """
    xp = backend.xp
    o, l, a, src, lead = _mixture_inputs(vocab_logits, p_gen_logit, alpha, src_ext)
    V = o.shape[1]
    n_ext = _n_ext(n_ext, V)
    if check_ids:
        _id_range("src_ext", src, n_ext)
    N = o.shape[0]
    log_P = xp.full((N, n_ext), -xp.inf, dtype=o.dtype)
    log_P[:, :V] = log_softmax(o, axis=-1) + log_sigmoid(l)[:, None]
    # Only the ≤ S slots named by the source have copy mass: mix them in there, not over V_ext.
    flat = _flat_ids(src, n_ext)
    P_copy = xp.zeros((N, n_ext), dtype=o.dtype)
    backend.scatter_add(P_copy.reshape(-1), flat, a.reshape(-1))
    P_copy = P_copy.reshape(-1)[flat].reshape(src.shape)  # (N, S), the copy mass of each word
    positive = P_copy > 0
    log_copy = xp.where(positive, xp.log(xp.where(positive, P_copy, 1)) + log_sigmoid(-l)[:, None],
                        -xp.inf)
    mixed = xp.logaddexp(log_P.reshape(-1)[flat].reshape(src.shape), log_copy)
    log_P.reshape(-1)[flat] = mixed.reshape(-1)  # repeated words write the same value
    return log_P.reshape(lead + (n_ext,))
