"""Attention: score functions, masked softmax and the context vector, each a forward/backward pair.

The article's §2.2 describes attention in four steps. Here they are as functions:

1. **Transform the encoder states** once per source sequence:
   :func:`transform_encoder_states` turns ``hbar`` into the *keys* that the score compares the
   decoder states with (``hbar`` itself for dot, ``hbar Wᵀ`` for general, ``hbar W1`` for
   additive, ``hbar / ‖hbar‖`` for cosine).
2. **Compute the attention weights**: a score ``e_ts`` for every decoder step t and source
   position s (:func:`score_forward` and the four ``*_score_forward``), then a softmax over the
   real source positions (:func:`masked_softmax_forward`): ``alpha_ts``.
3. **Weight the encoder states** by the weights: the context ``c_t = Σ_s alpha_ts hbar_s``
   (:func:`context_forward`).
4. **Decode with the result**: ``o_t = softmax(W_o [c_t; h_t] + b_o)``. Step 4 lives in the
   model (``minis2s.models.attention``), built from ``linear_forward`` and the loss of
   :mod:`minis2s.functional.linear` and :mod:`minis2s.functional.loss`; it is the only place
   where the context and the decoder state meet again.

:func:`attention_forward` composes steps 1–3 and :func:`attention_backward` reverses them.

Shapes: B batch, T target (decoder) steps, S source positions, H decoder hidden size, Hs
encoder output size (``H·dirs`` for a bidirectional encoder), A the additive score's hidden
size. ``h`` (B, T, H) are the decoder states (T may be 1 for step-by-step decoding: every
function works for any T), ``hbar`` (B, S, Hs) the encoder outputs and ``mask`` (B, S) is
True on real source tokens (every row has at least one).

Step by step. A decoder that attends once per time step computes step 1 once and passes the
keys to every step, so nothing is recomputed; the forward code path is the same::

    keys = transform_encoder_states(score, hbar, params)              # step 1, once
    for t in range(T):
        c_t, alpha_t, cache_t = attention_forward(h_t, hbar, mask, score, params, keys=keys)

For the backward, :func:`attention_backward` on a step's cache returns the complete gradient
(it also backpropagates through step 1). To backpropagate through step 1 only once, stop each
step at the keys and finish with the step-1 backward, which is linear in the key gradient::

    dh_t, dhbar_t, dkeys_t, dparams_t = attention_backward_to_keys(dc_t, dalpha_t, cache_t)
    ...                                                  # sum dhbar_t, dkeys_t, dparams_t over t
    dhbar_k, dparams_k = transform_encoder_states_backward(dkeys, keys)   # once

Derivation: docs/derivations/attention.md.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

from .. import backend
from .. import init as initlib
from .loss import flush_subnormals

__all__ = [
    "SCORES",
    "COSINE_EPS",
    "COSINE_SCALE_INIT",
    "EncoderKeys",
    "masked_softmax_forward",
    "masked_softmax_backward",
    "dot_score_forward",
    "dot_score_backward",
    "general_score_forward",
    "general_score_backward",
    "additive_score_forward",
    "additive_score_backward",
    "cosine_score_forward",
    "cosine_score_backward",
    "score_param_shapes",
    "init_score_params",
    "transform_encoder_states",
    "transform_encoder_states_backward",
    "score_forward",
    "score_backward",
    "score_backward_to_keys",
    "context_forward",
    "context_backward",
    "attention_forward",
    "attention_backward",
    "attention_backward_to_keys",
]

#: The score functions, by name (the ``attention=`` argument of ``AttentionSeq2Seq``).
SCORES = ("dot", "general", "additive", "cosine")

#: Added under the square root of the cosine score's norms, ‖x‖ = sqrt(Σ x² + COSINE_EPS), so
#: that a zero vector gives a zero direction (and a zero gradient) instead of 0/0 = NaN.
COSINE_EPS = 1e-8

#: The initial value of the cosine score's learnable ``scale``: cosines lie in [−1, 1], and a
#: softmax over scores in so narrow a range is nearly uniform; ×10 lets it sharpen from the start.
COSINE_SCALE_INIT = 10.0

#: The parameter names of each score, in the order of the ``*_score_forward`` arguments.
_PARAM_NAMES = {"dot": (), "general": ("W",), "additive": ("W1", "W2", "v"), "cosine": ("scale",)}


# ------------------------------------------------------------------------------------------
# Caches
# ------------------------------------------------------------------------------------------
class EncoderKeys(NamedTuple):
    """The result of step 1: the encoder states transformed once per source sequence.

    It is both the keys that step 2 compares the decoder states with and the cache of step 1's
    backward (:func:`transform_encoder_states_backward`).
    """

    score: str  # the score these keys belong to, one of SCORES
    hbar: object  # (B, S, Hs) encoder outputs
    keys: object  # (B, S, K): hbar (dot, K = Hs), hbar Wᵀ (general, K = H),
    #               hbar W1 (additive, K = A), hbar / ‖hbar‖ (cosine, K = Hs)
    W: object  # the transform's weight: W (general) or W1 (additive); None otherwise
    norm: object  # (B, S, 1) ‖hbar_s‖ for cosine; None otherwise


class SoftmaxCache(NamedTuple):
    alpha: object  # (B, T, S) attention weights, exactly 0 where mask is False
    mask: object  # (B, S) bool


class BilinearScoreCache(NamedTuple):
    """Cache of the dot and general scores, e = h keysᵀ."""

    h: object  # (B, T, H) decoder states
    keys: EncoderKeys


class AdditiveScoreCache(NamedTuple):
    h: object  # (B, T, H) decoder states
    keys: EncoderKeys  # keys.keys = hbar W1, (B, S, A)
    W2: object  # (H, A)
    v: object  # (A,)
    u: object  # (B, T, S, A) tanh(hbar_s W1 + h_t W2)


class CosineScoreCache(NamedTuple):
    keys: EncoderKeys  # keys.keys = hbar / ‖hbar‖, (B, S, Hs)
    q: object  # (B, T, H) h / ‖h‖, the decoder states' directions
    norm: object  # (B, T, 1) ‖h_t‖
    cos: object  # (B, T, S) cosine(hbar_s, h_t)
    scale: object  # (1,)


class ContextCache(NamedTuple):
    alpha: object  # (B, T, S)
    hbar: object  # (B, S, Hs)


class AttentionCache(NamedTuple):
    score: object  # the score's cache (its .keys is the EncoderKeys of step 1)
    softmax: SoftmaxCache
    context: ContextCache


# ------------------------------------------------------------------------------------------
# Validation (at the public boundary; it runs before any math)
# ------------------------------------------------------------------------------------------
def _float_array(name, a, ndim=None, shape_doc=None):
    if not backend.is_array(a):
        raise TypeError(f"{name} must be a float array (NumPy or {backend.name}); got "
                        f"{type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array (float32 or float64); got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        want = shape_doc or f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {want}; got shape {tuple(a.shape)}")
    return a


def _same_dtype(ref_name, ref, **others):
    for name, a in others.items():
        if a is not None and a.dtype != ref.dtype:
            raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), so that "
                            f"nothing is silently upcast; got {a.dtype}")


def _check_score_name(score):
    if not isinstance(score, str) or score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}; got {score!r}")
    return score


def _check_h_hbar(h, hbar):
    _float_array("h", h, 3, "(B, T, H)")
    _float_array("hbar", hbar, 3, "(B, S, Hs)")
    if h.shape[0] != hbar.shape[0]:
        raise ValueError(f"h and hbar must have the same batch size B; got h {tuple(h.shape)} "
                         f"and hbar {tuple(hbar.shape)}")
    _same_dtype("hbar", hbar, h=h)


def _check_same_size(score, h, hbar):
    if h.shape[-1] != hbar.shape[-1]:
        raise ValueError(
            f"the {score} score compares h_t with hbar_s directly, so it needs H == Hs; got h "
            f"{tuple(h.shape)} (H = {h.shape[-1]}) and hbar {tuple(hbar.shape)} "
            f"(Hs = {hbar.shape[-1]}). Use score 'general' or 'additive' for different sizes"
        )


def _check_param(name, a, shape, ref):
    _float_array(name, a)
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {tuple(a.shape)}")
    _same_dtype("hbar", ref, **{name: a})


def _check_params(score, params, hbar, H=None):
    """Check ``params`` (a dict) for ``score``; returns its arrays in _PARAM_NAMES order."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict name -> array; got {type(params).__name__}")
    names = _PARAM_NAMES[score]
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise ValueError(f"params for the {score} score must have exactly the keys {names}; "
                         f"missing {missing}, unexpected {extra}")
    Hs = hbar.shape[-1]
    if score == "general":
        W = _float_array("params['W']", params["W"], 2, "(H, Hs)")
        _check_param("params['W']", W, (W.shape[0] if H is None else H, Hs), hbar)
    elif score == "additive":
        W1 = _float_array("params['W1']", params["W1"], 2, "(Hs, A)")
        W2 = _float_array("params['W2']", params["W2"], 2, "(H, A)")
        A = W1.shape[1]
        _check_param("params['W1']", W1, (Hs, A), hbar)
        _check_param("params['W2']", W2, (W2.shape[0] if H is None else H, A), hbar)
        _check_param("params['v']", params["v"], (A,), hbar)
    elif score == "cosine":
        _check_param("params['scale']", params["scale"], (1,), hbar)
    return tuple(params[n] for n in names)


def _check_keys(score, keys, hbar):
    if not isinstance(keys, EncoderKeys):
        raise TypeError("keys must be the EncoderKeys returned by transform_encoder_states; got "
                        f"{type(keys).__name__}")
    if keys.score != score:
        raise ValueError(f"keys were made for the {keys.score!r} score, not for {score!r}")
    if tuple(keys.hbar.shape) != tuple(hbar.shape):
        raise ValueError(f"keys were made from hbar of shape {tuple(keys.hbar.shape)}; got hbar "
                         f"{tuple(hbar.shape)}")


def _check_mask(mask, B, S, check_rows=True):
    """Check the mask's type and shape and, with ``check_rows``, that no row is all False
    (that costs a device synchronisation under CuPy, so it is done once, in the softmax)."""
    if not backend.is_array(mask):
        raise TypeError(f"mask must be a bool array of shape (B, S) = ({B}, {S}); got "
                        f"{type(mask).__name__}")
    if tuple(mask.shape) != (B, S):
        raise ValueError(f"mask must have shape (B, S) = ({B}, {S}); got {tuple(mask.shape)}")
    if mask.dtype.kind != "b":
        if mask.dtype.kind not in "iuf":
            raise TypeError(f"mask must be a bool array (True on real tokens); got dtype "
                            f"{mask.dtype}")
        mask = mask != 0
    if not check_rows:
        return mask
    empty = ~mask.any(axis=1)
    if bool(empty.any()):
        rows = [int(i) for i in backend.to_numpy(empty).nonzero()[0]]
        raise ValueError(f"mask: every row needs at least one True (real) source position; rows "
                         f"{rows[:10]} are all False (empty source sequences)")
    return mask


# ------------------------------------------------------------------------------------------
# Step 2b: the masked softmax
# ------------------------------------------------------------------------------------------
@backend.device_inputs
def masked_softmax_forward(e, mask, check_rows=True):
    """Step 2 (second half): attention weights from scores, over the real source positions only.

        alpha_ts = mask_s exp(e_ts − m_t) / Σ_s' mask_s' exp(e_ts' − m_t),
        m_t = max over the real positions s of e_ts

    Masked positions get exactly 0 (not a tiny number), whatever ``e`` holds there; shifting by
    the max over the real positions keeps every exponent ≤ 0, so extreme scores (±1e4) stay
    finite in float32 and float64.

    Args:
        e: (B, T, S) scores.
        mask: (B, S) bool, True on real source tokens; each row has at least one True.
        check_rows: check that (raises ValueError otherwise). The check reads a value back from
            the device, a synchronisation under CuPy; the models check their batches once and
            pass False here, so that a decoder step never waits for the GPU.

    Returns:
        alpha: (B, T, S), dtype of ``e``; each row sums to 1. And a :class:`SoftmaxCache`.

    Derivation: docs/derivations/attention.md#masked-softmax.
    """
    _float_array("e", e, 3, "(B, T, S)")
    mask = _check_mask(mask, e.shape[0], e.shape[2], check_rows)
    xp = backend.xp
    ### BEGIN SOLUTION
    m = mask[:, None, :]  # (B, 1, S), broadcast over the decoder steps
    alpha = xp.where(m, e, -xp.inf)  # masked scores -> −inf -> exp gives exactly 0
    alpha -= alpha.max(axis=-1, keepdims=True)  # shift by the max over the real positions
    xp.exp(alpha, out=alpha)
    alpha /= alpha.sum(axis=-1, keepdims=True)
    flush_subnormals(alpha, non_negative=True)  # (speed only: see its docstring)
    ### END SOLUTION
    return alpha, SoftmaxCache(alpha, mask)


@backend.device_inputs
def masked_softmax_backward(dalpha, cache: SoftmaxCache):
    """Backward of :func:`masked_softmax_forward`: de = alpha ⊙ (dalpha − Σ_s alpha_s dalpha_s).

    Args:
        dalpha: (B, T, S) upstream gradient.

    Returns:
        de: (B, T, S); exactly 0 at masked positions (there alpha is exactly 0).

    Derivation: docs/derivations/attention.md#masked-softmax.
    """
    ### BEGIN SOLUTION
    alpha = cache.alpha
    de = dalpha - (alpha * dalpha).sum(axis=-1, keepdims=True)
    de *= alpha
    return flush_subnormals(de)
    ### END SOLUTION


# ------------------------------------------------------------------------------------------
# Step 1 (transform the encoder states) and step 2a (score) for each score function
# ------------------------------------------------------------------------------------------
def _transpose(a):
    """(B, X, Y) -> (B, Y, X), a view."""
    return a.swapaxes(-1, -2)


def _times_weight(x, W):
    """x (..., D_in) @ W (D_in, D_out) or W (D_in,), as one 2-D matmul over the leading axes.

    A batched matmul against a broadcast 2-D weight is up to ~100× slower in NumPy than the
    same product with the leading axes flattened into one (which BLAS does in one call).
    """
    return (x.reshape(-1, x.shape[-1]) @ W).reshape(x.shape[:-1] + W.shape[1:])


def _bilinear_scores(h, keys: EncoderKeys):
    """Step 2a of dot and general: e = h keysᵀ, (B, T, H) @ (B, H, S) -> (B, T, S)."""
    ### BEGIN SOLUTION
    e = backend.xp.matmul(h, _transpose(keys.keys))
    ### END SOLUTION
    return e, BilinearScoreCache(h, keys)


def _bilinear_scores_backward(de, cache: BilinearScoreCache):
    """dh = de keys (B, T, H); dkeys = deᵀ h (B, S, H)."""
    ### BEGIN SOLUTION
    xp = backend.xp
    dh = xp.matmul(de, cache.keys.keys)
    dkeys = xp.matmul(_transpose(de), cache.h)
    return dh, dkeys, {}
    ### END SOLUTION


# --- dot -----------------------------------------------------------------------------------
def _dot_keys(hbar):
    """Step 1 of dot: the keys are the encoder states themselves."""
    return EncoderKeys("dot", hbar, hbar, None, None)


def _dot_keys_backward(dkeys, keys: EncoderKeys):
    ### BEGIN SOLUTION
    return dkeys, {}
    ### END SOLUTION


@backend.device_inputs
def dot_score_forward(h, hbar, *, keys=None):
    """Dot score (Luong): e_ts = h_tᵀ hbar_s.

    Step 1 is the identity (the keys are ``hbar``); step 2 is one batched matmul, e = h hbarᵀ.

    Args:
        h: (B, T, H) decoder states.
        hbar: (B, S, Hs) encoder outputs; needs Hs == H (ValueError otherwise).
        keys: optional :class:`EncoderKeys` from ``transform_encoder_states("dot", hbar, {})``.

    Returns:
        e: (B, T, S) scores, and a cache for :func:`dot_score_backward`.

    Derivation: docs/derivations/attention.md#dot-score.
    """
    _check_h_hbar(h, hbar)
    _check_same_size("dot", h, hbar)
    if keys is None:
        keys = _dot_keys(hbar)
    else:
        _check_keys("dot", keys, hbar)
    return _bilinear_scores(h, keys)


@backend.device_inputs
def dot_score_backward(de, cache: BilinearScoreCache):
    """Backward of :func:`dot_score_forward`: dh = de hbar, dhbar = deᵀ h.

    Args:
        de: (B, T, S) upstream gradient.

    Returns:
        dh (B, T, H), dhbar (B, S, Hs), {} (no parameters).

    Derivation: docs/derivations/attention.md#dot-score.
    """
    ### BEGIN SOLUTION
    dh, dkeys, dparams = _bilinear_scores_backward(de, cache)
    dhbar, _ = _dot_keys_backward(dkeys, cache.keys)
    return dh, dhbar, dparams
    ### END SOLUTION


# --- general -------------------------------------------------------------------------------
def _general_keys(hbar, W):
    """Step 1 of general: keys_s = W hbar_s, i.e. keys = hbar Wᵀ, (B, S, H)."""
    ### BEGIN SOLUTION
    keys = _times_weight(hbar, W.T)
    ### END SOLUTION
    return EncoderKeys("general", hbar, keys, W, None)


def _general_keys_backward(dkeys, keys: EncoderKeys):
    """dhbar = dkeys W (B, S, Hs); dW = Σ_{b,s} dkeys_bs hbar_bsᵀ (H, Hs)."""
    ### BEGIN SOLUTION
    W, hbar = keys.W, keys.hbar
    dhbar = _times_weight(dkeys, W)
    dW = dkeys.reshape(-1, W.shape[0]).T @ hbar.reshape(-1, W.shape[1])
    return dhbar, {"W": dW}
    ### END SOLUTION


@backend.device_inputs
def general_score_forward(h, hbar, W, *, keys=None):
    """General score (Luong): e_ts = h_tᵀ W hbar_s.

    Step 1 computes the keys W hbar_s once per sequence (``keys = hbar Wᵀ``, (B, S, H)); step 2
    is then the dot score against the keys, e = h keysᵀ.

    Args:
        h: (B, T, H) decoder states.
        hbar: (B, S, Hs) encoder outputs.
        W: (H, Hs).
        keys: optional :class:`EncoderKeys` from
            ``transform_encoder_states("general", hbar, {"W": W})``.

    Returns:
        e: (B, T, S) scores, and a cache for :func:`general_score_backward`.

    Derivation: docs/derivations/attention.md#general-score.
    """
    _check_h_hbar(h, hbar)
    _check_params("general", {"W": W}, hbar, h.shape[-1])
    if keys is None:
        keys = _general_keys(hbar, W)
    else:
        _check_keys("general", keys, hbar)
    return _bilinear_scores(h, keys)


@backend.device_inputs
def general_score_backward(de, cache: BilinearScoreCache):
    """Backward of :func:`general_score_forward`.

    With keys = hbar Wᵀ: dh = de keys, dkeys = deᵀ h, dhbar = dkeys W, dW = Σ dkeysᵀ hbar.

    Args:
        de: (B, T, S) upstream gradient.

    Returns:
        dh (B, T, H), dhbar (B, S, Hs), {"W": dW (H, Hs)}.

    Derivation: docs/derivations/attention.md#general-score.
    """
    ### BEGIN SOLUTION
    dh, dkeys, _ = _bilinear_scores_backward(de, cache)
    dhbar, dparams = _general_keys_backward(dkeys, cache.keys)
    return dh, dhbar, dparams
    ### END SOLUTION


# --- additive ------------------------------------------------------------------------------
def _additive_keys(hbar, W1):
    """Step 1 of additive: keys = hbar W1, (B, S, A)."""
    ### BEGIN SOLUTION
    keys = _times_weight(hbar, W1)
    ### END SOLUTION
    return EncoderKeys("additive", hbar, keys, W1, None)


def _additive_keys_backward(dkeys, keys: EncoderKeys):
    """dhbar = dkeys W1ᵀ (B, S, Hs); dW1 = Σ_{b,s} hbar_bsᵀ dkeys_bs (Hs, A)."""
    ### BEGIN SOLUTION
    W1, hbar = keys.W, keys.hbar
    dhbar = _times_weight(dkeys, W1.T)
    dW1 = hbar.reshape(-1, W1.shape[0]).T @ dkeys.reshape(-1, W1.shape[1])
    return dhbar, {"W1": dW1}
    ### END SOLUTION


def _additive_scores(h, keys: EncoderKeys, W2, v):
    """Step 2a of additive: e_ts = vᵀ tanh(keys_s + h_t W2), broadcast to (B, T, S, A)."""
    xp = backend.xp
    ### BEGIN SOLUTION
    q = _times_weight(h, W2)  # (B, T, A), the decoder states' half
    u = keys.keys[:, None, :, :] + q[:, :, None, :]  # (B, T, S, A)
    xp.tanh(u, out=u)
    e = _times_weight(u, v)  # (B, T, S)
    ### END SOLUTION
    return e, AdditiveScoreCache(h, keys, W2, v, u)


def _additive_scores_backward(de, cache: AdditiveScoreCache):
    """With u = tanh(keys + q), q = h W2, e = u v:

    dv = Σ_{b,t,s} de_bts u_bts;  dpre = (de v) ⊙ (1 − u²);
    dq = Σ_s dpre;  dkeys = Σ_t dpre;  dh = dq W2ᵀ;  dW2 = Σ hᵀ dq.
    """
    ### BEGIN SOLUTION
    xp = backend.xp
    h, _, W2, v, u = cache
    H, A = W2.shape
    dv = de.reshape(1, -1) @ u.reshape(-1, A)  # (1, A)
    dpre = u * u
    xp.subtract(1, dpre, out=dpre)  # tanh' = 1 − u²
    dpre *= v
    dpre *= de[..., None]
    dq = dpre.sum(axis=2)  # (B, T, A)
    dkeys = dpre.sum(axis=1)  # (B, S, A)
    dh = _times_weight(dq, W2.T)
    dW2 = h.reshape(-1, H).T @ dq.reshape(-1, A)
    return dh, dkeys, {"W2": dW2, "v": dv.reshape(A)}
    ### END SOLUTION


@backend.device_inputs
def additive_score_forward(h, hbar, W1, W2, v, *, keys=None):
    """Additive score (Bahdanau): e_ts = vᵀ tanh(hbar_s W1 + h_t W2).

    Step 1 computes the keys ``hbar W1`` (B, S, A) once per sequence; step 2 adds the decoder
    half ``h W2`` (B, T, A) by broadcasting to (B, T, S, A), with no loop over t, applies tanh
    and contracts with v.

    Args:
        h: (B, T, H) decoder states.
        hbar: (B, S, Hs) encoder outputs.
        W1: (Hs, A), W2: (H, A), v: (A,).
        keys: optional :class:`EncoderKeys` from
            ``transform_encoder_states("additive", hbar, {"W1": W1, "W2": W2, "v": v})``.

    Returns:
        e: (B, T, S) scores, and a cache for :func:`additive_score_backward`.

    Derivation: docs/derivations/attention.md#additive-score.
    """
    _check_h_hbar(h, hbar)
    _check_params("additive", {"W1": W1, "W2": W2, "v": v}, hbar, h.shape[-1])
    if keys is None:
        keys = _additive_keys(hbar, W1)
    else:
        _check_keys("additive", keys, hbar)
    return _additive_scores(h, keys, W2, v)


@backend.device_inputs
def additive_score_backward(de, cache: AdditiveScoreCache):
    """Backward of :func:`additive_score_forward`.

    Args:
        de: (B, T, S) upstream gradient.

    Returns:
        dh (B, T, H), dhbar (B, S, Hs), {"W1": (Hs, A), "W2": (H, A), "v": (A,)}.

    Derivation: docs/derivations/attention.md#additive-score.
    """
    ### BEGIN SOLUTION
    dh, dkeys, dparams = _additive_scores_backward(de, cache)
    dhbar, dparams_keys = _additive_keys_backward(dkeys, cache.keys)
    return dh, dhbar, {**dparams_keys, **dparams}
    ### END SOLUTION


# --- cosine --------------------------------------------------------------------------------
def _normalize(x):
    """x / ‖x‖ along the last axis with ‖x‖ = sqrt(Σ x² + COSINE_EPS); returns (x/‖x‖, ‖x‖)."""
    xp = backend.xp
    ### BEGIN SOLUTION
    norm = xp.sqrt((x * x).sum(axis=-1, keepdims=True) + COSINE_EPS)
    ### END SOLUTION
    return x / norm, norm


def _normalize_backward(dy, y, norm):
    """Backward of y = x / ‖x‖: dx = (dy − y (y · dy)) / ‖x‖ (also right with COSINE_EPS)."""
    ### BEGIN SOLUTION
    dx = dy - y * (y * dy).sum(axis=-1, keepdims=True)
    dx /= norm
    return dx
    ### END SOLUTION


def _cosine_keys(hbar):
    """Step 1 of cosine: keys_s = hbar_s / ‖hbar_s‖, the encoder states' directions."""
    keys, norm = _normalize(hbar)
    return EncoderKeys("cosine", hbar, keys, None, norm)


def _cosine_keys_backward(dkeys, keys: EncoderKeys):
    ### BEGIN SOLUTION
    return _normalize_backward(dkeys, keys.keys, keys.norm), {}
    ### END SOLUTION


def _cosine_scores(h, keys: EncoderKeys, scale):
    """Step 2a of cosine: e = scale · (h/‖h‖) keysᵀ."""
    ### BEGIN SOLUTION
    q, norm = _normalize(h)
    cos = backend.xp.matmul(q, _transpose(keys.keys))
    e = cos * scale
    ### END SOLUTION
    return e, CosineScoreCache(keys, q, norm, cos, scale)


def _cosine_scores_backward(de, cache: CosineScoreCache):
    """dscale = Σ de ⊙ cos; dcos = scale de; dq = dcos keys; dkeys = dcosᵀ q; dh via the norm."""
    ### BEGIN SOLUTION
    xp = backend.xp
    keys, q, norm, cos, scale = cache
    dscale = (de * cos).sum().reshape(1)
    dcos = de * scale
    dq = xp.matmul(dcos, keys.keys)
    dkeys = xp.matmul(_transpose(dcos), q)
    dh = _normalize_backward(dq, q, norm)
    return dh, dkeys, {"scale": dscale}
    ### END SOLUTION


@backend.device_inputs
def cosine_score_forward(h, hbar, scale, *, keys=None):
    """Cosine score: e_ts = scale · cosine(hbar_s, h_t) = scale · h_tᵀ hbar_s / (‖h_t‖ ‖hbar_s‖).

    The norms are ‖x‖ = sqrt(Σ x² + COSINE_EPS), so a zero vector scores 0 instead of NaN. The
    learnable ``scale`` lets the softmax sharpen (a cosine alone lies in [−1, 1]; see
    :data:`COSINE_SCALE_INIT`). Step 1 normalises the encoder states once per sequence.

    Args:
        h: (B, T, H) decoder states.
        hbar: (B, S, Hs) encoder outputs; needs Hs == H (ValueError otherwise).
        scale: (1,) learnable scalar.
        keys: optional :class:`EncoderKeys` from
            ``transform_encoder_states("cosine", hbar, {"scale": scale})``.

    Returns:
        e: (B, T, S) scores, and a cache for :func:`cosine_score_backward`.

    Derivation: docs/derivations/attention.md#cosine-score.
    """
    _check_h_hbar(h, hbar)
    _check_same_size("cosine", h, hbar)
    _check_params("cosine", {"scale": scale}, hbar, h.shape[-1])
    if keys is None:
        keys = _cosine_keys(hbar)
    else:
        _check_keys("cosine", keys, hbar)
    return _cosine_scores(h, keys, scale)


@backend.device_inputs
def cosine_score_backward(de, cache: CosineScoreCache):
    """Backward of :func:`cosine_score_forward`.

    Args:
        de: (B, T, S) upstream gradient.

    Returns:
        dh (B, T, H), dhbar (B, S, Hs), {"scale": dscale (1,)}.

    Derivation: docs/derivations/attention.md#cosine-score.
    """
    ### BEGIN SOLUTION
    dh, dkeys, dparams = _cosine_scores_backward(de, cache)
    dhbar, _ = _cosine_keys_backward(dkeys, cache.keys)
    return dh, dhbar, dparams
    ### END SOLUTION


# ------------------------------------------------------------------------------------------
# Dispatch by score name
# ------------------------------------------------------------------------------------------
_KEYS = {"dot": _dot_keys, "general": _general_keys, "additive": _additive_keys,
         "cosine": _cosine_keys}
_KEYS_BACKWARD = {"dot": _dot_keys_backward, "general": _general_keys_backward,
                  "additive": _additive_keys_backward, "cosine": _cosine_keys_backward}
_SCORES_BACKWARD = {"dot": _bilinear_scores_backward, "general": _bilinear_scores_backward,
                    "additive": _additive_scores_backward, "cosine": _cosine_scores_backward}
_SCORE_FORWARD = {"dot": dot_score_forward, "general": general_score_forward,
                  "additive": additive_score_forward, "cosine": cosine_score_forward}
_SCORE_BACKWARD = {"dot": dot_score_backward, "general": general_score_backward,
                   "additive": additive_score_backward, "cosine": cosine_score_backward}


def score_param_shapes(name, H, Hs, A=None):
    """The parameters a score needs, as a dict name -> shape, for a model to allocate.

    - ``"dot"``: {} (needs H == Hs)
    - ``"general"``: {"W": (H, Hs)}
    - ``"additive"``: {"W1": (Hs, A), "W2": (H, A), "v": (A,)}; A defaults to H
    - ``"cosine"``: {"scale": (1,)} (needs H == Hs)
    """
    _check_score_name(name)
    for arg, value in (("H", H), ("Hs", Hs)) + ((("A", A),) if A is not None else ()):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{arg} must be a positive int; got {value!r}")
    H, Hs = int(H), int(Hs)
    if name in ("dot", "cosine") and H != Hs:
        raise ValueError(f"the {name} score needs H == Hs; got H = {H} and Hs = {Hs}. Use score "
                         "'general' or 'additive' for different sizes")
    if name == "dot":
        return {}
    if name == "general":
        return {"W": (H, Hs)}
    if name == "additive":
        A = H if A is None else int(A)
        return {"W1": (Hs, A), "W2": (H, A), "v": (A,)}
    return {"scale": (1,)}


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


@backend.device_inputs
def transform_encoder_states(name, hbar, params):
    """Step 1: transform the encoder states once per source sequence into the score's keys.

    - dot: keys = hbar;  general: keys = hbar Wᵀ (B, S, H);
    - additive: keys = hbar W1 (B, S, A);  cosine: keys = hbar / ‖hbar‖ (B, S, Hs).

    Pass the result as ``keys=`` to :func:`score_forward` or :func:`attention_forward` at every
    decoder step so that it is not recomputed.

    Args:
        name: one of :data:`SCORES`.
        hbar: (B, S, Hs) encoder outputs.
        params: the score's parameters (all of them, as for :func:`score_forward`).

    Returns:
        An :class:`EncoderKeys` (``.keys`` is the array).

    Derivation: docs/derivations/attention.md#step-1-the-keys.
    """
    _check_score_name(name)
    _float_array("hbar", hbar, 3, "(B, S, Hs)")
    values = _check_params(name, params, hbar)
    if name in ("general", "additive"):  # the transform's weight, W or W1, comes first
        return _KEYS[name](hbar, values[0])
    return _KEYS[name](hbar)


@backend.device_inputs
def transform_encoder_states_backward(dkeys, keys: EncoderKeys):
    """Backward of step 1: the gradient of the keys -> (dhbar (B, S, Hs), dparams).

    dparams holds the transform's weight only: {"W": ...} (general), {"W1": ...} (additive), {}
    otherwise. It is linear in ``dkeys``, so a step-by-step decoder may sum the key gradients
    of all steps (from :func:`attention_backward_to_keys`) and call this once.

    Derivation: docs/derivations/attention.md#step-1-the-keys.
    """
    ### BEGIN SOLUTION
    return _KEYS_BACKWARD[keys.score](dkeys, keys)
    ### END SOLUTION


@backend.device_inputs
def score_forward(name, h, hbar, params, keys=None):
    """Steps 1–2a by name: e = score(h, hbar) with the score's ``params`` (a dict).

    Args:
        name: one of :data:`SCORES`.
        h: (B, T, H), hbar: (B, S, Hs).
        params: dict with exactly the names of :func:`score_param_shapes`.
        keys: optional :class:`EncoderKeys` of step 1 (:func:`transform_encoder_states`), to
            skip recomputing it.

    Returns:
        e: (B, T, S), and the score's cache for :func:`score_backward`.

    Derivation: docs/derivations/attention.md (one section per score).
    """
    _check_score_name(name)
    _check_h_hbar(h, hbar)
    values = _check_params(name, params, hbar, h.shape[-1])
    return _SCORE_FORWARD[name](h, hbar, *values, keys=keys)


@backend.device_inputs
def score_backward(de, cache):
    """Backward of :func:`score_forward`: -> (dh, dhbar, dparams), dparams like ``params``.

    The gradient is complete: it goes through step 1 too, even when the keys were passed in.

    Derivation: docs/derivations/attention.md (one section per score).
    """
    ### BEGIN SOLUTION
    return _SCORE_BACKWARD[cache.keys.score](de, cache)
    ### END SOLUTION


@backend.device_inputs
def score_backward_to_keys(de, cache):
    """Step 2a's backward only: -> (dh, dkeys, dparams), stopping at the keys of step 1.

    dparams holds the parameters used after step 1 (``W2`` and ``v`` for additive, ``scale``
    for cosine). Finish with :func:`transform_encoder_states_backward` on the summed ``dkeys``.

    Derivation: docs/derivations/attention.md#step-1-the-keys.
    """
    ### BEGIN SOLUTION
    return _SCORES_BACKWARD[cache.keys.score](de, cache)
    ### END SOLUTION


# ------------------------------------------------------------------------------------------
# Step 3: the context
# ------------------------------------------------------------------------------------------
@backend.device_inputs
def context_forward(alpha, hbar):
    """Step 3: weight the encoder states by the attention weights, c_t = Σ_s alpha_ts hbar_s.

    One batched matmul: c = alpha @ hbar, (B, T, S) @ (B, S, Hs) -> (B, T, Hs).

    Returns:
        c: (B, T, Hs), and a :class:`ContextCache`.

    Derivation: docs/derivations/attention.md#context.
    """
    _float_array("alpha", alpha, 3, "(B, T, S)")
    _float_array("hbar", hbar, 3, "(B, S, Hs)")
    if alpha.shape[0] != hbar.shape[0] or alpha.shape[2] != hbar.shape[1]:
        raise ValueError(f"alpha (B, T, S) and hbar (B, S, Hs) must agree on B and S; got alpha "
                         f"{tuple(alpha.shape)} and hbar {tuple(hbar.shape)}")
    _same_dtype("hbar", hbar, alpha=alpha)
    ### BEGIN SOLUTION
    c = backend.xp.matmul(alpha, hbar)
    ### END SOLUTION
    return c, ContextCache(alpha, hbar)


@backend.device_inputs
def context_backward(dc, cache: ContextCache):
    """Backward of :func:`context_forward`: dalpha = dc hbarᵀ (B, T, S), dhbar = alphaᵀ dc.

    dhbar is exactly 0 at the source positions where alpha is 0 for every t (the padding).

    Derivation: docs/derivations/attention.md#context.
    """
    ### BEGIN SOLUTION
    xp = backend.xp
    alpha, hbar = cache
    dalpha = xp.matmul(dc, _transpose(hbar))
    dhbar = xp.matmul(_transpose(alpha), dc)
    return dalpha, dhbar
    ### END SOLUTION


# ------------------------------------------------------------------------------------------
# Steps 1–3 composed
# ------------------------------------------------------------------------------------------
@backend.device_inputs
def attention_forward(h, hbar, mask, score, params, keys=None, check_rows=True):
    """Attention, steps 1–3: keys, scores e, weights alpha, context c.

        keys = transform(hbar)                           (step 1; skipped when ``keys`` is given)
        e_ts = score(h_t, keys_s)                        (step 2a)
        alpha_t = masked softmax over s of e_t           (step 2b)
        c_t = Σ_s alpha_ts hbar_s                        (step 3)

    Args:
        h: (B, T, H) decoder states (T = 1 for one decoder step).
        hbar: (B, S, Hs) encoder outputs.
        mask: (B, S) bool, True on real source tokens (each row at least one).
        score: one of :data:`SCORES`.
        params: the score's parameters, a dict (see :func:`score_param_shapes`).
        keys: optional :class:`EncoderKeys` from :func:`transform_encoder_states` (computed
            once per source sequence, reused at every decoder step).
        check_rows: check that every mask row has a True (see :func:`masked_softmax_forward`).

    Returns:
        c: (B, T, Hs) context, alpha: (B, T, S) weights (exactly 0 on padding), and an
        :class:`AttentionCache`.

    Derivation: docs/derivations/attention.md#attention-composed.
    """
    _check_score_name(score)
    _check_h_hbar(h, hbar)
    _check_params(score, params, hbar, h.shape[-1])
    if score in ("dot", "cosine"):
        _check_same_size(score, h, hbar)
    _check_mask(mask, hbar.shape[0], hbar.shape[1], check_rows=False)  # rows: in the softmax
    if keys is None:
        keys = transform_encoder_states(score, hbar, params)  # step 1
    e, score_cache = score_forward(score, h, hbar, params, keys=keys)  # step 2a
    alpha, softmax_cache = masked_softmax_forward(e, mask, check_rows)  # step 2b
    c, context_cache = context_forward(alpha, hbar)  # step 3
    return c, alpha, AttentionCache(score_cache, softmax_cache, context_cache)


@backend.device_inputs
def attention_backward_to_keys(dc, dalpha, cache: AttentionCache):
    """Backward of steps 3, 2b and 2a, stopping at the keys of step 1.

    Args:
        dc: (B, T, Hs) gradient of the context, or None (zero).
        dalpha: (B, T, S) gradient reaching the weights from elsewhere (a loss on alpha, a copy
            distribution, coverage), or None (zero).

    Returns:
        dh (B, T, H); dhbar (B, S, Hs) through the context only; dkeys, the gradient of
        ``EncoderKeys.keys``; dparams for the parameters used after step 1. Finish with
        :func:`transform_encoder_states_backward` (once, on the keys' summed gradient).

    Derivation: docs/derivations/attention.md#attention-composed.
    """
    if dc is None and dalpha is None:
        raise ValueError("dc and dalpha are both None: nothing to backpropagate")
    ### BEGIN SOLUTION
    xp = backend.xp
    if dc is None:
        dalpha_total, dhbar = dalpha, xp.zeros_like(cache.context.hbar)
    else:
        dalpha_total, dhbar = context_backward(dc, cache.context)  # step 3
        if dalpha is not None:
            dalpha_total += dalpha
    de = masked_softmax_backward(dalpha_total, cache.softmax)  # step 2b
    dh, dkeys, dparams = score_backward_to_keys(de, cache.score)  # step 2a
    return dh, dhbar, dkeys, dparams
    ### END SOLUTION


@backend.device_inputs
def attention_backward(dc, dalpha, cache: AttentionCache):
    """Backward of :func:`attention_forward`, through steps 3, 2b, 2a and 1.

    Args:
        dc: (B, T, Hs) gradient of the context, or None (zero).
        dalpha: (B, T, S) gradient reaching the weights from elsewhere, or None (zero).

    Returns:
        dh (B, T, H), dhbar (B, S, Hs) (exactly 0 at padded source positions), and dparams, a
        dict with the keys of the score's params.

    Derivation: docs/derivations/attention.md#attention-composed.
    """
    ### BEGIN SOLUTION
    dh, dhbar, dkeys, dparams = attention_backward_to_keys(dc, dalpha, cache)
    dhbar_keys, dparams_keys = transform_encoder_states_backward(dkeys, cache.score.keys)
    dhbar += dhbar_keys
    return dh, dhbar, {**dparams_keys, **dparams}
    ### END SOLUTION
