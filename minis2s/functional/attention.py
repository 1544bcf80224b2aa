"""Attention (Luong et al. 2015; Bahdanau et al. 2015), the article's §2.2, in four steps.

With s (B, T, H) the decoder states (T = 1 for one decoder step), hbar (B, S, Hs) the encoder
outputs (Hs = H·dirs) and mask (B, S) True on the real source positions:

1. **Keys**, once per source sequence: k = key(hbar), (B, S, K).
2. **Attention weights**: a score e_ts = score(s_t, k_s) for every step t and source position s,
   then alpha_t = masked softmax over s of e_t (:func:`masked_softmax_forward`), (B, T, S).
3. **Context**: c_t = Σ_s alpha_ts hbar_s (:func:`context_forward`), (B, T, Hs).
4. **Decode with the result**: r_t = [c_t; s_t], o_t = r_t W_o + b_o. Step 4 lives in the model
   (:mod:`minis2s.models.attention`): it is where the context and the decoder state meet again.

The four scores (:data:`REGISTRY`), each a forward/backward pair of step 2's score against the
keys, with step 1's key transform where the score has one::

    dot       e_ts = s_t · hbar_s                          k = hbar
    general   e_ts = s_tᵀ W hbar_s          = s_t · k_s    k = hbar Wᵀ         (K = H)
    additive  e_ts = vᵀ tanh(W1ᵀ hbar_s + W2ᵀ s_t)          k = hbar W1         (K = A)
              = vᵀ tanh(k_s + s_t W2)
    cosine    e_ts = scale · cos(s_t, hbar_s)  = scale · (s_t / ‖s_t‖) · k_s
                                                           k = hbar / ‖hbar‖

The pointer-generator's coverage attention (:mod:`minis2s.functional.pointer`) is the additive
score on the keys k_s + w_c cov_ts.

Entry points, which check their arguments: :func:`attention_forward` /
:func:`attention_backward` (steps 1–3), :func:`score_forward` / :func:`score_backward` (steps 1
and 2a), :func:`masked_softmax_forward` / :func:`masked_softmax_backward` (step 2b) and
:func:`context_forward` / :func:`context_backward` (step 3). The models call the unchecked
private forms and compute step 1 once per source sequence, not once per decoder step::

    k = REGISTRY[score].keys(hbar, params)                               # step 1, once
    c_t, alpha_t, cache_t = _attend(s_t, hbar, k, mask, score, params)   # steps 2-3, each t
    ds_t, dhbar_t, dk_t, dparams_t = _attend_backward(dc_t, None, cache_t)
    dhbar_k, dparams_k = REGISTRY[score].keys_backward(Σ_t dk_t, hbar, params)   # once

Shapes: B batch, T decoder steps, S source positions, H decoder size, Hs encoder output size,
A the additive score's size, K the keys' size.

Derivation: docs/derivations/attention.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _checks, backend
from .. import init as initlib
from .activations import (
    MaskedSoftmaxCache,
    _masked_softmax,
    _masked_softmax_backward,
    masked_softmax_backward,
    masked_softmax_forward,
)
from .linear import _matmul, _sum_outer

__all__ = [
    "SCORES",
    "REGISTRY",
    "Score",
    "COSINE_EPS",
    "COSINE_SCALE_INIT",
    "AttentionCache",
    "ScoreCache",
    "ContextCache",
    "MaskedSoftmaxCache",
    "score_param_shapes",
    "init_score_params",
    "masked_softmax_forward",
    "masked_softmax_backward",
    "score_forward",
    "score_backward",
    "context_forward",
    "context_backward",
    "attention_forward",
    "attention_backward",
]

#: The score functions, by name (the ``attention=`` argument of ``AttentionSeq2Seq``).
SCORES = ("dot", "general", "additive", "cosine")

#: Added under the square root of the cosine score's norms, ‖x‖ = sqrt(Σ x² + COSINE_EPS), so
#: that a zero vector gives a zero direction (and a zero gradient) instead of 0/0 = NaN.
COSINE_EPS = 1e-8

#: The initial value of the cosine score's learnable ``scale``: cosines lie in [−1, 1], and a
#: softmax over scores in so narrow a range is nearly uniform; ×10 lets it sharpen from the start.
COSINE_SCALE_INIT = 10.0


def _T(a):
    """(B, X, Y) -> (B, Y, X), a view."""
    return a.swapaxes(-1, -2)


# ------------------------------------------------------------------------------------------
# Step 1 (the keys) and step 2a (the score against the keys), score by score
# ------------------------------------------------------------------------------------------
class DotCache(NamedTuple):
    s: object  # (B, T, H) decoder states
    k: object  # (B, S, H) keys


class AdditiveCache(NamedTuple):
    s: object  # (B, T, H)
    k: object  # (B, S, A) keys, or (B, T, S, A) keys that differ per step (coverage)
    u: object  # (B, T, S, A) tanh(k_s + s_t W2)
    W2: object  # (H, A)
    v: object  # (A,)


class CosineCache(NamedTuple):
    q: object  # (B, T, H) s / ‖s‖, the decoder states' directions
    norm: object  # (B, T, 1) ‖s_t‖
    k: object  # (B, S, H) hbar / ‖hbar‖
    cos: object  # (B, T, S) cos(s_t, hbar_s)
    scale: object  # (1,)


# --- dot: e_ts = s_t · k_s, with k = hbar ----------------------------------------------------
def _identity_keys(hbar, p):
    return hbar


def _identity_keys_backward(dk, hbar, p):
    return dk, {}


def _dot_forward(s, k, p):
    """e_ts = s_t · k_s: one batched product, (B, T, H) @ (B, H, S) -> (B, T, S)."""
    ### BEGIN SOLUTION
    e = s @ _T(k)
    ### END SOLUTION
    return e, DotCache(s, k)


def _dot_backward(de, cache: DotCache):
    """ds = de k (B, T, H), dk = deᵀ s (B, S, H); no parameters."""
    s, k = cache
    ### BEGIN SOLUTION
    ds = de @ k
    dk = _T(de) @ s
    ### END SOLUTION
    return ds, dk, {}


# --- general: e_ts = s_tᵀ W hbar_s = s_t · k_s, with k = hbar Wᵀ ------------------------------
def _general_keys(hbar, p):
    """k_s = W hbar_s for every s: k = hbar Wᵀ, (B, S, Hs) -> (B, S, H)."""
    return _matmul(hbar, p["W"].T)


def _general_keys_backward(dk, hbar, p):
    """dhbar = dk W (B, S, Hs), dW = Σ_{b,s} dk_bs hbar_bsᵀ (H, Hs): the linear backward."""
    return _matmul(dk, p["W"]), {"W": _sum_outer(dk, hbar)}


# --- additive: e_ts = vᵀ tanh(k_s + s_t W2), with k = hbar W1 --------------------------------
def _additive_keys(hbar, p):
    """k = hbar W1, (B, S, Hs) -> (B, S, A)."""
    return _matmul(hbar, p["W1"])


def _additive_keys_backward(dk, hbar, p):
    """dhbar = dk W1ᵀ, dW1 = Σ hbarᵀ dk."""
    return _matmul(dk, p["W1"].T), {"W1": _sum_outer(hbar, dk)}


def _additive_forward(s, k, p):
    """e_ts = vᵀ tanh(k_s + s_t W2) for all (t, s) at once, through (B, T, S, A).

    ``k`` may also be (B, T, S, A): keys that differ per step (the coverage attention's
    k_s + w_c cov_ts).
    """
    kk = k[:, None] if k.ndim == 3 else k  # (B, 1 or T, S, A)
    ### BEGIN SOLUTION
    u = backend.xp.tanh(kk + _matmul(s, p["W2"])[:, :, None, :])  # (B, T, S, A)
    e = _matmul(u, p["v"])  # (B, T, S)
    ### END SOLUTION
    return e, AdditiveCache(s, k, u, p["W2"], p["v"])


def _additive_backward(de, cache: AdditiveCache):
    """With u = tanh(k_s + s_t W2) and e = u v:

    dv = Σ de u;  da = (de v) ⊙ (1 − u²);  dk = Σ_t da;  d(s W2) = Σ_s da;
    ds = d(s W2) W2ᵀ;  dW2 = Σ sᵀ d(s W2).
    """
    s, k, u, W2, v = cache
    ### BEGIN SOLUTION
    dv = _sum_outer(u, de[..., None])[:, 0]  # (A,)
    da = de[..., None] * v * (1 - u * u)  # (B, T, S, A), tanh' = 1 − u²
    dk = da.sum(axis=1) if k.ndim == 3 else da
    dq = da.sum(axis=2)  # (B, T, A), the gradient of s W2
    ds = _matmul(dq, W2.T)
    dW2 = _sum_outer(s, dq)
    ### END SOLUTION
    return ds, dk, {"W2": dW2, "v": dv}


# --- cosine: e_ts = scale · (s_t / ‖s_t‖) · k_s, with k = hbar / ‖hbar‖ -----------------------
def _normalize(x):
    """x / ‖x‖ along the last axis with ‖x‖ = sqrt(Σ x² + COSINE_EPS): -> (x / ‖x‖, ‖x‖)."""
    norm = backend.xp.sqrt((x * x).sum(axis=-1, keepdims=True) + COSINE_EPS)
    return x / norm, norm


def _normalize_backward(dy, y, norm):
    """Backward of y = x / ‖x‖: dx = (dy − y (y · dy)) / ‖x‖ (also right with COSINE_EPS)."""
    return (dy - y * (y * dy).sum(axis=-1, keepdims=True)) / norm


def _cosine_keys(hbar, p):
    """k_s = hbar_s / ‖hbar_s‖, the encoder states' directions."""
    return _normalize(hbar)[0]


def _cosine_keys_backward(dk, hbar, p):
    k, norm = _normalize(hbar)
    return _normalize_backward(dk, k, norm), {}


def _cosine_forward(s, k, p):
    """e = scale · cos with cos = q kᵀ, the dot score of q = s / ‖s‖ against the keys."""
    q, norm = _normalize(s)
    ### BEGIN SOLUTION
    cos, _ = _dot_forward(q, k, p)
    e = p["scale"] * cos
    ### END SOLUTION
    return e, CosineCache(q, norm, k, cos, p["scale"])


def _cosine_backward(de, cache: CosineCache):
    """dscale = Σ de ⊙ cos; dcos = scale de; dq, dk through the dot score; ds through the
    normalisation."""
    q, norm, k, cos, scale = cache
    ### BEGIN SOLUTION
    dscale = (de * cos).sum().reshape(1)
    dq, dk, _ = _dot_backward(de * scale, DotCache(q, k))
    ds = _normalize_backward(dq, q, norm)
    ### END SOLUTION
    return ds, dk, {"scale": dscale}


class Score(NamedTuple):
    """One score function: the key transform of step 1 and the score of step 2a."""

    params: tuple  # the names of its parameters
    keys: object  # (hbar, p) -> k, once per source sequence
    keys_backward: object  # (dk, hbar, p) -> (dhbar, grads of the keys' parameters)
    forward: object  # (s, k, p) -> (e, cache)
    backward: object  # (de, cache) -> (ds, dk, grads of the score's parameters)


#: The four scores by name: the registry that attention dispatches on.
REGISTRY = {
    "dot": Score((), _identity_keys, _identity_keys_backward, _dot_forward, _dot_backward),
    "general": Score(("W",), _general_keys, _general_keys_backward, _dot_forward,
                     _dot_backward),
    "additive": Score(("W1", "W2", "v"), _additive_keys, _additive_keys_backward,
                      _additive_forward, _additive_backward),
    "cosine": Score(("scale",), _cosine_keys, _cosine_keys_backward, _cosine_forward,
                    _cosine_backward),
}


# ------------------------------------------------------------------------------------------
# Step 3: the context
# ------------------------------------------------------------------------------------------
def _context(alpha, hbar):
    """c_t = Σ_s alpha_ts hbar_s: one batched product, (B, T, S) @ (B, S, Hs)."""
    ### BEGIN SOLUTION
    return alpha @ hbar
    ### END SOLUTION


def _context_backward(dc, alpha, hbar):
    """dalpha = dc hbarᵀ (B, T, S), dhbar = alphaᵀ dc (B, S, Hs)."""
    ### BEGIN SOLUTION
    dalpha = dc @ _T(hbar)
    dhbar = _T(alpha) @ dc
    ### END SOLUTION
    return dalpha, dhbar


# ------------------------------------------------------------------------------------------
# Steps 2–3 on given keys (what the models call at each decoder step)
# ------------------------------------------------------------------------------------------
class AttentionCache(NamedTuple):
    score: str  # one of SCORES
    params: dict  # the score's parameters
    hbar: object  # (B, S, Hs) encoder outputs
    k: object  # (B, S, K) keys of step 1
    score_cache: object  # the score's cache (step 2a)
    alpha: object  # (B, T, S) attention weights, exactly 0 where the mask is False


def _attend(s, hbar, k, mask, score, params):
    """Steps 2–3, unchecked: e = score(s, k), alpha = masked softmax(e), c = alpha hbar.

    Returns c (B, T, Hs), alpha (B, T, S) and an :class:`AttentionCache`.
    """
    e, score_cache = REGISTRY[score].forward(s, k, params)  # step 2a
    alpha = _masked_softmax(e, mask)  # step 2b
    c = _context(alpha, hbar)  # step 3
    return c, alpha, AttentionCache(score, params, hbar, k, score_cache, alpha)


def _attend_backward(dc, dalpha, cache: AttentionCache):
    """Backward of :func:`_attend` (steps 3, 2b, 2a), stopping at the keys.

    Args:
        dc: (B, T, Hs) or None (zero). dalpha: (B, T, S) from elsewhere, or None (zero).

    Returns:
        ds (B, T, H), dhbar (B, S, Hs) through the context only, dk (B, S, K), and the
        gradients of the score's parameters used after step 1.
    """
    if dc is None:
        dalpha_all, dhbar = dalpha, backend.xp.zeros_like(cache.hbar)
    else:
        dalpha_all, dhbar = _context_backward(dc, cache.alpha, cache.hbar)  # step 3
        if dalpha is not None:
            dalpha_all = dalpha_all + dalpha
    de = _masked_softmax_backward(dalpha_all, cache.alpha)  # step 2b
    ds, dk, dparams = REGISTRY[cache.score].backward(de, cache.score_cache)  # step 2a
    return ds, dhbar, dk, dparams


# ------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------
def _param_shapes(name, H, Hs, A=None):
    A = H if A is None else A
    return {"dot": {}, "general": {"W": (H, Hs)},
            "additive": {"W1": (Hs, A), "W2": (H, A), "v": (A,)},
            "cosine": {"scale": (1,)}}[name]


def score_param_shapes(name, H, Hs, A=None):
    """The parameters a score needs, as a dict name -> shape, for a model to allocate.

    - ``"dot"``: {} (needs H == Hs)
    - ``"general"``: {"W": (H, Hs)}
    - ``"additive"``: {"W1": (Hs, A), "W2": (H, A), "v": (A,)}; A defaults to H
    - ``"cosine"``: {"scale": (1,)} (needs H == Hs)
    """
    _checks.score_name(name, SCORES)
    H, Hs = _checks.positive_int("H", H), _checks.positive_int("Hs", Hs)
    A = None if A is None else _checks.positive_int("A", A)
    _checks.score_sizes(name, H, Hs)
    return _param_shapes(name, H, Hs, A)


def init_score_params(name, H, Hs, A=None, dtype="float32", seed=0):
    """Initial parameters for a score, on the active backend: a dict name -> array.

    Matrices are Xavier uniform (see :mod:`minis2s.init`), ``v`` is Xavier uniform with
    fan_in A and fan_out 1, and the cosine ``scale`` starts at :data:`COSINE_SCALE_INIT`.
    ``seed`` is an int or a NumPy Generator.
    """
    shapes = score_param_shapes(name, H, Hs, A)
    dtype = backend.resolve_dtype(dtype)
    rng = initlib.as_rng(seed)
    params = {}
    for pname, shape in shapes.items():
        if pname == "scale":
            params[pname] = backend.xp.full(shape, COSINE_SCALE_INIT, dtype=dtype)
        elif pname == "v":
            params[pname] = initlib.xavier_uniform(rng, shape[0], 1, shape, dtype)
        else:
            params[pname] = initlib.xavier_uniform(rng, shape[0], shape[1], shape, dtype)
    return params


# ------------------------------------------------------------------------------------------
# The entry points
# ------------------------------------------------------------------------------------------
class ScoreCache(NamedTuple):
    score: str
    params: dict
    hbar: object  # (B, S, Hs)
    inner: object  # the score's cache of step 2a


@backend.device_inputs
def score_forward(score, s, hbar, params):
    """Steps 1–2a: the scores e_ts = score(s_t, hbar_s) of every step against every position.

    Args:
        score: one of :data:`SCORES`.
        s: (B, T, H) decoder states. hbar: (B, S, Hs) encoder outputs (dot and cosine need
            Hs == H).
        params: the score's parameters, a dict with exactly the names of
            :func:`score_param_shapes`, of hbar's dtype.

    Returns:
        e: (B, T, S), and a :class:`ScoreCache` for :func:`score_backward`.

    Derivation: docs/derivations/attention.md (one section per score).
    """
    _checks.score_inputs(score, s, hbar, params, SCORES, _param_shapes)
    f = REGISTRY[score]
    e, inner = f.forward(s, f.keys(hbar, params), params)
    return e, ScoreCache(score, params, hbar, inner)


@backend.device_inputs
def score_backward(de, cache: ScoreCache):
    """Backward of :func:`score_forward`: de (B, T, S) -> ds (B, T, H), dhbar (B, S, Hs) and
    dparams, a dict with the keys of the score's params.

    Derivation: docs/derivations/attention.md (one section per score).
    """
    _checks.is_instance("cache", cache, ScoreCache, "score_forward")
    f = REGISTRY[cache.score]
    ds, dk, dparams = f.backward(de, cache.inner)
    dhbar, dparams_k = f.keys_backward(dk, cache.hbar, cache.params)
    return ds, dhbar, {**dparams_k, **dparams}


class ContextCache(NamedTuple):
    alpha: object  # (B, T, S)
    hbar: object  # (B, S, Hs)


@backend.device_inputs
def context_forward(alpha, hbar):
    """Step 3: weight the encoder states by the attention weights, c_t = Σ_s alpha_ts hbar_s.

    Args:
        alpha: (B, T, S) attention weights. hbar: (B, S, Hs) encoder outputs.

    Returns:
        c: (B, T, Hs), and a :class:`ContextCache`.

    Derivation: docs/derivations/attention.md#context.
    """
    _checks.context(alpha, hbar)
    return _context(alpha, hbar), ContextCache(alpha, hbar)


@backend.device_inputs
def context_backward(dc, cache: ContextCache):
    """Backward of :func:`context_forward`: dalpha = dc hbarᵀ (B, T, S), dhbar = alphaᵀ dc.

    dhbar is exactly 0 at the source positions where alpha is 0 for every t (the padding).

    Derivation: docs/derivations/attention.md#context.
    """
    _checks.is_instance("cache", cache, ContextCache, "context_forward")
    return _context_backward(dc, cache.alpha, cache.hbar)


@backend.device_inputs
def attention_forward(s, hbar, mask, score, params):
    """Attention, steps 1–3: keys k, scores e, weights alpha, context c.

        k = key(hbar)                              (step 1)
        e_ts = score(s_t, k_s)                     (step 2a)
        alpha_t = masked softmax over s of e_t     (step 2b)
        c_t = Σ_s alpha_ts hbar_s                  (step 3)

    Args:
        s: (B, T, H) decoder states (T = 1 for one decoder step).
        hbar: (B, S, Hs) encoder outputs.
        mask: (B, S) bool, True on real source tokens; every row needs one (ValueError naming
            the empty rows otherwise).
        score: one of :data:`SCORES`.
        params: the score's parameters, a dict (see :func:`score_param_shapes`).

    Returns:
        c: (B, T, Hs) context, alpha: (B, T, S) weights (exactly 0 on padding), and an
        :class:`AttentionCache`.

    Derivation: docs/derivations/attention.md#attention-composed.
    """
    _checks.score_inputs(score, s, hbar, params, SCORES, _param_shapes)
    mask = _checks.source_mask(mask, hbar.shape[0], hbar.shape[1])
    k = REGISTRY[score].keys(hbar, params)  # step 1
    return _attend(s, hbar, k, mask, score, params)  # steps 2-3


@backend.device_inputs
def attention_backward(dc, dalpha, cache: AttentionCache):
    """Backward of :func:`attention_forward`, through steps 3, 2b, 2a and 1.

    Args:
        dc: (B, T, Hs) gradient of the context, or None (zero).
        dalpha: (B, T, S) gradient reaching the weights from elsewhere (a loss on alpha, a
            copy distribution), or None (zero). Not both None.

    Returns:
        ds (B, T, H), dhbar (B, S, Hs) (exactly 0 at padded source positions), and dparams, a
        dict with the keys of the score's params.

    Derivation: docs/derivations/attention.md#attention-composed.
    """
    _checks.is_instance("cache", cache, AttentionCache, "attention_forward")
    B, T, S = cache.alpha.shape
    _checks.attention_grads(dc, dalpha, (B, T, cache.hbar.shape[2]), (B, T, S),
                            cache.alpha.dtype)
    ds, dhbar, dk, dparams = _attend_backward(dc, dalpha, cache)
    dhbar_k, dparams_k = REGISTRY[cache.score].keys_backward(dk, cache.hbar, cache.params)
    return ds, dhbar + dhbar_k, {**dparams_k, **dparams}

