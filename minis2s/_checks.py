"""Argument validation shared by the public entry points.

Every check raises ValueError or TypeError with a message that names the argument, what was
expected and what was received, before any array math runs.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from . import backend
from .constants import BOS, EOS, PAD, UNK


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int; got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int (> 0); got {value}")
    return int(value)


def non_negative_int(name, value):
    """An int >= 0 (a count of steps, epochs, examples, tokens; a seed)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 0; got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0; got {value}")
    return int(value)


def non_negative_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0; got {value!r} ({type(value).__name__})")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value}")
    return float(value)


def label_smoothing(value, name="label_smoothing"):
    """ε of label smoothing: a real number in [0, 1). Returns it as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1); got {value!r} "
                        f"({type(value).__name__})")
    if not (0 <= value < 1):  # NaN fails too
        raise ValueError(f"{name} must be in [0, 1) (0: no smoothing); got {value}")
    return float(value)


def one_of(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")
    return value


def int_ids(name, a, ndim=2):
    """Validate an id array (NumPy or the active backend) and return it on the active backend."""
    if isinstance(a, (list, tuple)):
        try:
            a = np.asarray(a)
        except ValueError:
            raise ValueError(f"{name} must be a rectangular int array; got ragged lists") from None
    if not backend.is_array(a):
        raise TypeError(f"{name} must be an int array (NumPy or {backend.name}); got "
                        f"{type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids; got dtype {a.dtype}")
    if a.ndim != ndim:
        want = "(B, S)" if ndim == 2 else f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {want}; got {a.ndim} dimensions, shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{name} must not be empty; got shape {a.shape}")
    return backend.asarray(a)


def id_range(name, a, high, low=0):
    lo, hi = int(a.min()), int(a.max())
    if lo < low or hi >= high:
        bad = lo if lo < low else hi
        raise ValueError(f"{name} holds id {bad}, outside the valid range [{low}, {high})")


def float_array(name, a, ndim=None, shape_doc=None, dtype=None):
    """``a`` must be a float array (NumPy or the active backend) with ``ndim`` dimensions (an
    int, or a tuple of allowed ints) and, if given, ``dtype``; ``shape_doc`` (e.g. "(B, T, H)")
    names the expected shape in the message."""
    if not backend.is_array(a):
        raise TypeError(f"{name} must be a float array (NumPy or {backend.name}); got "
                        f"{type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array (float32 or float64); got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, so that nothing is silently upcast; "
                        f"got {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = shape_doc or " or ".join(str(n) for n in allowed) + " dimensions"
            raise ValueError(f"{name} must have shape {want}; got shape {tuple(a.shape)}")
    return a


def same_dtype(ref_name, ref, **others):
    """Every array in ``others`` (None is skipped) must have the dtype of ``ref``."""
    for name, a in others.items():
        if a is not None and a.dtype != ref.dtype:
            raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), so that "
                            f"nothing is silently upcast; got {a.dtype}")


def shape(name, a, expected, shape_doc):
    """``a.shape`` must equal ``expected``; ``shape_doc`` names it, e.g. "(B, H)"."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {shape_doc} = {tuple(expected)}; got "
                         f"{tuple(a.shape)}")
    return a


def is_instance(name, value, cls, made_by):
    """``value`` must be a ``cls`` (a cache, typically); ``made_by`` names what returns one."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be the {cls.__name__} returned by {made_by}; got "
                        f"{type(value).__name__}")
    return value


# --------------------------------------------------------------------------------------------
# GRU: minis2s.functional.gru's entry points, and minis2s.layers.GRU before the fast tier
# --------------------------------------------------------------------------------------------
def gru_config(num_layers, bidirectional):
    """-> (num_layers, dirs): a positive int and a bool (dirs = 2 if bidirectional)."""
    num_layers = positive_int("num_layers", num_layers)
    if not isinstance(bidirectional, bool):
        raise TypeError(f"bidirectional must be a bool; got {bidirectional!r}")
    return num_layers, 2 if bidirectional else 1


def gru_weights(names, W_ih, W_hh, b_ih, b_hh, D, dtype=None):
    """One layer/direction's W_ih (3H, D), W_hh (3H, H), b_ih and b_hh (3H,), of ``dtype`` if
    given; ``names``: what to call the four in messages. Returns H."""
    n_ih, n_hh, nb_ih, nb_hh = names
    H = float_array(n_hh, W_hh, 2, "(3H, H)", dtype).shape[1]
    shape(n_hh, W_hh, (3 * H, H), "(3H, H)")
    shape(n_ih, float_array(n_ih, W_ih, 2, "(3H, D)", dtype), (3 * H, D), "(3H, D)")
    shape(nb_ih, float_array(nb_ih, b_ih, 1, "(3H,)", dtype), (3 * H,), "(3H,)")
    shape(nb_hh, float_array(nb_hh, b_hh, 1, "(3H,)", dtype), (3 * H,), "(3H,)")
    return H


def gru_params(params, num_layers, dirs, D, dtype):
    """A stack's params dict under PyTorch's names (``weight_ih_l0``, ..., ``..._reverse`` if
    dirs = 2), layer 0 reading D inputs and layer k > 0 H·dirs; other keys are ignored.
    Returns H."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of arrays under PyTorch's names; got "
                        f"{type(params).__name__}")
    H = None
    for layer in range(num_layers):
        for d in range(dirs):
            k = f"l{layer}{'_reverse' if d == 1 else ''}"
            keys = (f"weight_ih_{k}", f"weight_hh_{k}", f"bias_ih_{k}", f"bias_hh_{k}")
            missing = [key for key in keys if key not in params]
            if missing:
                raise ValueError(f"params is missing {missing} (num_layers={num_layers}, "
                                 f"bidirectional={dirs == 2}); it has {sorted(params)}")
            if H is None:
                H = float_array(f"params[{keys[1]!r}]", params[keys[1]], 2, "(3H, H)",
                                dtype).shape[1]
            h = gru_weights([f"params[{key!r}]" for key in keys], *(params[key] for key in keys),
                            D if layer == 0 else H * dirs, dtype)
            if h != H:
                raise ValueError(f"params[{keys[1]!r}] has hidden size {h}; layer 0 has {H}")
    return H


def gru_mask(mask, B, T):
    """A right-padded (B, T) mask, bool or int, true on real steps. Returns it as bool and the
    row lengths as a NumPy array (on the host)."""
    xp = backend.xp
    if not backend.is_array(mask):
        raise TypeError(f"mask must be a bool or int array of shape (B, T); got "
                        f"{type(mask).__name__}")
    if mask.dtype.kind not in "biu":
        raise TypeError(f"mask must be a bool or int array; got dtype {mask.dtype}")
    shape("mask", mask, (B, T), "(B, T)")
    mask = xp.asarray(mask) != 0
    lengths = mask.sum(axis=1)
    prefix = xp.arange(T)[None, :] < lengths[:, None]
    if not bool((prefix == mask).all()):
        raise ValueError("mask must be true on a prefix of each row (padding only at the "
                         "right); got a row with a false before a true")
    return mask, backend.to_numpy(lengths)


def gru_sequence(x, h0, mask, params, num_layers, bidirectional):
    """The arguments of ``gru_forward``: x (B, T, D), h0 (L·dirs, B, H) or None, mask (B, T) or
    None, params, num_layers, bidirectional. Returns (mask as bool, host lengths), or
    (None, None) without a mask."""
    float_array("x", x, 3, "(B, T, D)")
    num_layers, dirs = gru_config(num_layers, bidirectional)
    B, T, D = x.shape
    H = gru_params(params, num_layers, dirs, D, x.dtype)
    if h0 is not None:
        float_array("h0", h0, 3, "(num_layers·dirs, B, H)", x.dtype)
        shape("h0", h0, (num_layers * dirs, B, H), "(num_layers·dirs, B, H)")
    return (None, None) if mask is None else gru_mask(mask, B, T)


def gru_sequence_grads(dout, dh_n, out_shape, h_n_shape, dtype):
    """``gru_backward``'s dout (B, T, H·dirs) and dh_n (L·dirs, B, H), each None or shaped
    like the forward's out and h_n."""
    if dout is not None:
        shape("dout", float_array("dout", dout, 3, "(B, T, H·dirs)", dtype), out_shape,
              "(B, T, H·dirs)")
    if dh_n is not None:
        shape("dh_n", float_array("dh_n", dh_n, 3, "(num_layers·dirs, B, H)", dtype),
              h_n_shape, "(num_layers·dirs, B, H)")


def gru_cell(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """The arguments of ``gru_cell_forward``: x (B, D), h_prev (B, H), and the weights."""
    float_array("x", x, 2, "(B, D)")
    float_array("h_prev", h_prev, 2, "(B, H)", x.dtype)
    H = gru_weights(("W_ih", "W_hh", "b_ih", "b_hh"), W_ih, W_hh, b_ih, b_hh, x.shape[1],
                    x.dtype)
    shape("h_prev", h_prev, (x.shape[0], H), "(B, H)")


def gru_stack_step(x_t, h, params, num_layers):
    """The arguments of ``gru_stack_step_forward``: x_t (B, D), h (L, B, H), params, L."""
    float_array("x_t", x_t, 2, "(B, D)")
    num_layers, _ = gru_config(num_layers, False)
    B, D = x_t.shape
    H = gru_params(params, num_layers, 1, D, x_t.dtype)
    shape("h", float_array("h", h, 3, "(num_layers, B, H)", x_t.dtype), (num_layers, B, H),
          "(num_layers, B, H)")


def gru_dropout_masks(masks, num_layers, shape_, dtype):
    """``dropout_masks`` of the GRU functions: None, or num_layers − 1 float arrays of
    ``shape_`` (the input of layers 1 .. L−1) and ``dtype``."""
    if masks is None:
        return
    masks = tuple(masks)
    if len(masks) != num_layers - 1:
        raise ValueError(f"dropout_masks must hold num_layers − 1 = {num_layers - 1} arrays (the "
                         f"inputs of layers 1 .. L−1); got {len(masks)}")
    for k, d in enumerate(masks):
        shape(f"dropout_masks[{k}]", float_array(f"dropout_masks[{k}]", d, len(shape_), None,
                                                 dtype), tuple(shape_), str(tuple(shape_)))


def gru_stack_step_grads(dout_t, dh_new, num_layers, B, H, dtype):
    """``gru_stack_step_backward``'s dout_t (B, H) and dh_new (L, B, H), each may be None."""
    if dout_t is not None:
        shape("dout_t", float_array("dout_t", dout_t, 2, "(B, H)", dtype), (B, H), "(B, H)")
    if dh_new is not None:
        shape("dh_new", float_array("dh_new", dh_new, 3, "(num_layers, B, H)", dtype),
              (num_layers, B, H), "(num_layers, B, H)")


# --------------------------------------------------------------------------------------------
# Linear, embedding and the loss: minis2s.functional.{linear,embedding,loss} and the layers
# --------------------------------------------------------------------------------------------
def features(name, x, D, dtype=None, shape_doc="(..., D)"):
    """``x`` must be a float array (of ``dtype`` if given) whose last axis has size ``D``."""
    float_array(name, x, None, shape_doc, dtype)
    if x.ndim < 1 or x.shape[-1] != D:
        raise ValueError(f"{name} must have shape {shape_doc} with a last axis of {D}; got "
                         f"shape {tuple(x.shape)}")
    return x


def linear(x, W, b):
    """The arguments of ``linear_forward``: x (..., D_in), W (D_in, D_out), b (D_out,) or None."""
    float_array("W", W, 2, "(D_in, D_out)")
    features("x", x, W.shape[0], None, "(..., D_in), D_in = W.shape[0]")
    same_dtype("W", W, x=x, b=b)
    if b is not None:
        shape("b", float_array("b", b, 1, "(D_out,)"), (W.shape[1],), "(D_out,)")


def int_array(name, a):
    """``a`` must be an integer array (NumPy or the active backend); returned on the backend.
    No range check (that would read a value back from the device)."""
    if not backend.is_array(a):
        raise TypeError(f"{name} must be an int array (NumPy or {backend.name}); got "
                        f"{type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids; got dtype {a.dtype}")
    return backend.asarray(a)


def embedding(ids, W):
    """The arguments of ``embedding_forward``: int ids of any shape in [0, V), W (V, D)."""
    float_array("W", W, 2, "(V, D)")
    ids = int_array("ids", ids)
    if ids.size:
        id_range("ids", ids, W.shape[0])
    return ids


def cross_entropy(logits, targets, mask):
    """``softmax_cross_entropy_forward``'s logits (B, T, V), targets (B, T) ints in [0, V) and
    mask (B, T) bool or float. Returns targets and mask on the backend."""
    float_array("logits", logits, 3, "(B, T, V)")
    targets = int_array("targets", targets)
    shape("targets", targets, logits.shape[:2], "(B, T)")
    id_range("targets", targets, logits.shape[2])
    if not backend.is_array(mask):
        raise TypeError(f"mask must be a bool or float array of shape (B, T); got "
                        f"{type(mask).__name__}")
    shape("mask", mask, logits.shape[:2], "(B, T)")
    return targets, backend.asarray(mask)


# --------------------------------------------------------------------------------------------
# Masks: the masked softmax, attention and the pointer
# --------------------------------------------------------------------------------------------
def source_mask(mask, B, S, name="mask"):
    """A (B, S) mask, bool or 0/1, True on the real source positions, with at least one True
    in every row (an empty source). Returned as a bool array of the active backend.

    The row check reads one value back from the device (a synchronisation under CuPy): models
    check their source batch once, then call the unchecked ops.
    """
    if not backend.is_array(mask):
        raise TypeError(f"{name} must be a bool array of shape (B, S) = ({B}, {S}); got "
                        f"{type(mask).__name__}")
    if tuple(mask.shape) != (B, S):
        raise ValueError(f"{name} must have shape (B, S) = ({B}, {S}); got {tuple(mask.shape)}")
    if mask.dtype.kind != "b":
        if mask.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a bool array (True on real tokens); got dtype "
                            f"{mask.dtype}")
        mask = mask != 0
    mask = backend.asarray(mask)
    empty = ~mask.any(axis=1)
    if bool(empty.any()):
        rows = [int(i) for i in backend.to_numpy(empty).nonzero()[0]]
        raise ValueError(f"{name}: every row needs at least one True (real) source position; "
                         f"rows {rows[:10]} are all False (empty source sequences)")
    return mask


def masked_scores(e, mask):
    """``masked_softmax_forward``'s scores e (B, S) or (B, ..., S) and mask (B, S) with a True in
    every row. Returns the mask as bool."""
    float_array("e", e, None)
    if e.ndim < 2:
        raise ValueError(f"e must have shape (B, S) or (B, T, S); got shape {tuple(e.shape)}")
    return source_mask(mask, e.shape[0], e.shape[-1])


# --------------------------------------------------------------------------------------------
# Attention: minis2s.functional.attention's entry points
# --------------------------------------------------------------------------------------------
def context(alpha, hbar):
    """``context_forward``'s alpha (B, T, S) and hbar (B, S, Hs): same B, S and dtype."""
    float_array("alpha", alpha, 3, "(B, T, S)")
    float_array("hbar", hbar, 3, "(B, S, Hs)")
    if alpha.shape[0] != hbar.shape[0] or alpha.shape[2] != hbar.shape[1]:
        raise ValueError(f"alpha (B, T, S) and hbar (B, S, Hs) must agree on B and S; got alpha "
                         f"{tuple(alpha.shape)} and hbar {tuple(hbar.shape)}")
    same_dtype("hbar", hbar, alpha=alpha)


def score_name(score, choices):
    if not isinstance(score, str) or score not in choices:
        raise ValueError(f"score must be one of {tuple(choices)}; got {score!r}")
    return score


def attention_states(s, hbar):
    """s (B, T, H) decoder states and hbar (B, S, Hs) encoder outputs: same B and dtype."""
    float_array("s", s, 3, "(B, T, H)")
    float_array("hbar", hbar, 3, "(B, S, Hs)")
    if s.shape[0] != hbar.shape[0]:
        raise ValueError(f"s and hbar must have the same batch size B; got s {tuple(s.shape)} "
                         f"and hbar {tuple(hbar.shape)}")
    same_dtype("hbar", hbar, s=s)


def score_sizes(score, H, Hs):
    """The dot and cosine scores compare s_t with hbar_s directly: they need H == Hs."""
    if score in ("dot", "cosine") and H != Hs:
        raise ValueError(f"the {score} score compares s_t with hbar_s directly, so it needs "
                         f"H == Hs; got H = {H} (s) and Hs = {Hs} (hbar). Use score 'general' "
                         "or 'additive' for different sizes")


def score_params(score, params, shapes, hbar):
    """``params`` must be a dict with exactly the keys of ``shapes`` (name -> expected shape),
    float arrays of those shapes with the dtype of ``hbar``."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict name -> array; got {type(params).__name__}")
    missing = [n for n in shapes if n not in params]
    extra = [n for n in params if n not in shapes]
    if missing or extra:
        raise ValueError(f"params for the {score} score must have exactly the keys "
                         f"{tuple(shapes)}; missing {missing}, unexpected {extra}")
    for n, expected in shapes.items():
        name = f"params[{n!r}]"
        a = float_array(name, params[n])
        if tuple(a.shape) != tuple(expected):
            raise ValueError(f"{name} must have shape {tuple(expected)}; got {tuple(a.shape)}")
        same_dtype("hbar", hbar, **{name: a})


def score_inputs(score, s, hbar, params, choices, param_shapes):
    """The score, s, hbar and params of ``score_forward`` and ``attention_forward``;
    ``param_shapes(score, H, Hs, A)`` gives the shapes the params must have."""
    score_name(score, choices)
    attention_states(s, hbar)
    H, Hs = s.shape[-1], hbar.shape[-1]
    score_sizes(score, H, Hs)
    W1 = params.get("W1") if isinstance(params, Mapping) else None
    A = W1.shape[-1] if score == "additive" and backend.is_array(W1) and W1.ndim == 2 else None
    score_params(score, params, param_shapes(score, H, Hs, A), hbar)


def attention_grads(dc, dalpha, c_shape, alpha_shape, dtype):
    """``attention_backward``'s dc (like c) and dalpha (like alpha); either, not both, None."""
    if dc is None and dalpha is None:
        raise ValueError("dc and dalpha are both None: nothing to backpropagate")
    for name, a, want, doc in (("dc", dc, c_shape, "(B, T, Hs)"),
                               ("dalpha", dalpha, alpha_shape, "(B, T, S)")):
        if a is not None:
            shape(name, float_array(name, a, len(want), doc, dtype), want, doc)


# --------------------------------------------------------------------------------------------
# The pointer: minis2s.functional.pointer's entry points
# --------------------------------------------------------------------------------------------
def n_ext(value, V=None):
    """V_ext, the extended vocabulary size: a positive int, >= V when V is given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"n_ext must be an int (V_ext, the extended vocabulary size); got "
                        f"{value!r} ({type(value).__name__})")
    if value < (1 if V is None else V):
        want = "a positive int (V_ext)" if V is None else f">= V = {V} (vocab_logits.shape[-1])"
        raise ValueError(f"n_ext must be {want}; got {value}")
    return int(value)


def non_negative_ids(name, ids):
    lo = int(ids.min())
    if lo < 0:
        raise ValueError(f"{name} holds id {lo}; ids must be >= 0 (extended vocabulary ids)")


def target_weight(name, weight, lead, dtype):
    """A target mask of shape ``lead``, (B,) or (B, T): None (all ones), bool, int or float of
    ``dtype``; returned as ``dtype``."""
    xp = backend.xp
    if weight is None:
        return xp.ones(lead, dtype=dtype)
    if not backend.is_array(weight):
        raise TypeError(f"{name} must be an array of shape {tuple(lead)}; got "
                        f"{type(weight).__name__}")
    shape(name, weight, lead, "the leading shape (B,) or (B, T)")
    if weight.dtype.kind == "f" and weight.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (or bool/int); got {weight.dtype}")
    return backend.asarray(weight).astype(dtype, copy=False)


def mixture(vocab_logits, p_gen_logit, alpha, src_ext):
    """The inputs shared by the mixture ops: vocab_logits (B, V) or (B, T, V), p_gen_logit of
    the leading shape, alpha (lead, S) of the same dtype, src_ext (B, S) (or like alpha) ints.
    Returns src_ext on the backend."""
    float_array("vocab_logits", vocab_logits, (2, 3), "(B, V) or (B, T, V)")
    lead = tuple(vocab_logits.shape[:-1])
    doc = "(B,)" if len(lead) == 1 else "(B, T)"
    shape("p_gen_logit", float_array("p_gen_logit", p_gen_logit), lead,
          f"{doc} (the leading shape of vocab_logits)")
    float_array("alpha", alpha, len(lead) + 1, f"{doc[:-1]}, S)")
    shape("alpha", alpha, lead + (alpha.shape[-1],), f"{doc[:-1]}, S)")
    same_dtype("vocab_logits", vocab_logits, p_gen_logit=p_gen_logit, alpha=alpha)
    src_ext = int_array("src_ext", src_ext)
    S = alpha.shape[-1]
    if tuple(src_ext.shape) not in ((lead[0], S), lead + (S,)):
        raise ValueError(f"src_ext must have shape (B, S) = {(lead[0], S)} (S from alpha); got "
                         f"{tuple(src_ext.shape)}")
    if vocab_logits.shape[-1] < 1 or S < 1:
        raise ValueError(f"vocab_logits and alpha must not be empty; got V = "
                         f"{vocab_logits.shape[-1]}, S = {S}")
    return src_ext


def coverage_attention(s, k, coverage, mask, W2, v, w_c):
    """``coverage_attention_forward``'s arguments: s (B, H), keys k (B, S, A), coverage (B, S),
    mask (B, S), W2 (H, A), v (A,), w_c (A,), all of one dtype. Returns the mask as bool."""
    float_array("k", k, 3, "(B, S, A)")
    B, S, A = k.shape
    float_array("s", s, 2, "(B, H)")
    if s.shape[0] != B:
        raise ValueError(f"s must have shape (B, H) with B = {B} (from k); got {tuple(s.shape)}")
    H = s.shape[1]
    shape("coverage", float_array("coverage", coverage), (B, S), "(B, S)")
    shape("W2", float_array("W2", W2), (H, A), "(H, A)")
    for name, p in (("v", v), ("w_c", w_c)):
        shape(name, float_array(name, p), (A,), "(A,)")
    same_dtype("k", k, s=s, coverage=coverage, W2=W2, v=v, w_c=w_c)
    return source_mask(mask, B, S)


def coverage_loss(alpha, coverage, weight):
    """``coverage_loss_forward``'s alpha (B, S) or (B, T, S), coverage like alpha and the
    target mask weight (B,) or (B, T). Returns the weight as alpha's dtype."""
    float_array("alpha", alpha, (2, 3), "(B, S) or (B, T, S)")
    shape("coverage", float_array("coverage", coverage), alpha.shape, "the shape of alpha")
    same_dtype("alpha", alpha, coverage=coverage)
    return target_weight("weight", weight, alpha.shape[:-1], alpha.dtype)


def p_gen(c, s, x, w_h, w_s, w_x, b_ptr):
    """``p_gen_forward``'s c (B, Hs), s (B, H), x (B, D) (or each with a time axis (B, T, .)),
    w_h (Hs,), w_s (H,), w_x (D,), b_ptr (1,), all of one dtype."""
    float_array("c", c, (2, 3), "(B, Hs) or (B, T, Hs)")
    lead = tuple(c.shape[:-1])
    doc = "(B, " if len(lead) == 1 else "(B, T, "
    shape("s", float_array("s", s), lead + (s.shape[-1],), doc + "H)")
    shape("x", float_array("x", x), lead + (x.shape[-1],), doc + "D)")
    for name, p, n, sym in (("w_h", w_h, c.shape[-1], "Hs"), ("w_s", w_s, s.shape[-1], "H"),
                            ("w_x", w_x, x.shape[-1], "D"), ("b_ptr", b_ptr, 1, "1")):
        shape(name, float_array(name, p), (n,), f"({sym},)")
    same_dtype("c", c, s=s, x=x, w_h=w_h, w_s=w_s, w_x=w_x, b_ptr=b_ptr)


# --------------------------------------------------------------------------------------------
# Models: the batches of minis2s.models (checked once per forward, generate and init_decoder)
# --------------------------------------------------------------------------------------------
def batch(src, tgt, src_vocab_size, tgt_vocab_size):
    """Validate a training batch and return it as backend arrays.

    Raises TypeError/ValueError naming ``src`` or ``tgt`` for: non-integer or non-array input,
    wrong dimensions, empty arrays, mismatched batch sizes, ids out of range, all-PAD rows,
    padding that is not only at the right, a ``tgt`` row that does not start with BOS or has no
    EOS right before its padding.
    """
    src = source(src, src_vocab_size)
    tgt = int_ids("tgt", tgt)
    if tgt.shape[0] != src.shape[0]:
        raise ValueError(
            f"src and tgt must have the same batch size; got src {src.shape[0]} rows and "
            f"tgt {tgt.shape[0]} rows"
        )
    if tgt.shape[1] < 2:
        raise ValueError(f"tgt must have at least 2 columns (BOS ... EOS); got shape {tgt.shape}")
    id_range("tgt", tgt, tgt_vocab_size)
    right_padded("tgt", tgt)
    xp = backend.xp
    if bool((tgt[:, 0] != BOS).any()):
        row = int(xp.argmax(tgt[:, 0] != BOS))
        raise ValueError(
            f"tgt row {row} starts with id {int(tgt[row, 0])}; every tgt row must start with "
            f"BOS ({BOS})"
        )
    lengths = (tgt != PAD).sum(axis=1)
    last = tgt[xp.arange(tgt.shape[0]), lengths - 1]
    if bool((last != EOS).any()):
        row = int(xp.argmax(last != EOS))
        raise ValueError(
            f"tgt row {row} ends with id {int(last[row])} before its padding; every tgt row must "
            f"end with EOS ({EOS})"
        )
    return src, tgt


def source(src, src_vocab_size, name="src"):
    """Validate a source batch (B, S): ints in range, right-padded, no all-PAD row."""
    src = int_ids(name, src)
    id_range(name, src, src_vocab_size)
    right_padded(name, src)
    return src


def right_padded(name, ids):
    """Every row of ``ids`` (B, S) has a real token, and PAD only at the right."""
    xp = backend.xp
    real = ids != PAD
    lengths = real.sum(axis=1)
    if bool((lengths == 0).any()):
        row = int(xp.argmax(lengths == 0))
        raise ValueError(f"{name} row {row} is all PAD; every row needs at least one real token")
    prefix = xp.arange(ids.shape[1])[None, :] < lengths[:, None]
    if bool((prefix != real).any()):
        row = int(xp.argmax((prefix != real).any(axis=1)))
        raise ValueError(
            f"{name} row {row} has PAD ({PAD}) between real tokens; pad only at the right"
        )


def oov_numbering(name, ids, V):
    """Each row's out-of-vocabulary ids (>= V) are V, V + 1, ..., V + k − 1 for its k distinct
    OOVs (as ``Vocab.encode_extended`` numbers them)."""
    xp = backend.xp
    oov = ids >= V
    if not bool(oov.any()):
        return
    srt = xp.sort(xp.where(oov, ids, -1), axis=1)  # each row's OOV ids ascending, −1 first
    new = (srt[:, 1:] != srt[:, :-1]) & (srt[:, 1:] >= 0)
    n_distinct = (srt[:, 0] >= 0).astype(xp.int64) + new.sum(axis=1)
    bad = srt[:, -1] >= V + n_distinct
    if bool(bad.any()):
        row = int(xp.argmax(bad))
        raise ValueError(
            f"{name} row {row} holds extended id {int(srt[row, -1])}, outside the valid "
            f"range [0, {V + int(n_distinct[row])}): with {int(n_distinct[row])} distinct "
            f"out-of-vocabulary words its OOV ids must be {V}..{V + int(n_distinct[row]) - 1}"
            f" (vocab_size {V} + k for the k-th; use Vocab.encode_extended)")


def oov_targets(src, tgt, V):
    """An id >= V in a ``tgt`` row must name an OOV word of the same row's source."""
    xp = backend.xp
    oov = tgt >= V
    if not bool(oov.any()):
        return
    found = (tgt[:, :, None] == src[:, None, :]).any(axis=2)
    bad = oov & ~found
    if bool(bad.any()):
        row = int(xp.argmax(bad.any(axis=1)))
        col = int(xp.argmax(bad[row]))
        raise ValueError(
            f"tgt row {row} holds the out-of-vocabulary id {int(tgt[row, col])} (at "
            f"position {col}), which is not in that row's source: a target word that is "
            f"in neither the vocabulary nor the source cannot be produced; map it to UNK "
            f"({UNK}) (Vocab.encode_extended(tgt, oovs=source_oovs) does)")


def use_gold(value, tgt_shape):
    """Scheduled sampling's ``use_gold``: a boolean (B, T − 1) array whose column 0 is all True
    (the first decoder input is always BOS). Returns it as a host NumPy array."""
    if not backend.is_array(value) and not isinstance(value, np.ndarray):
        raise TypeError(f"use_gold must be a boolean array of shape (B, T - 1) or None; got "
                        f"{type(value).__name__}")
    host = np.asarray(backend.to_numpy(value))
    if host.dtype != bool:
        raise TypeError(f"use_gold must be a boolean array; got dtype {host.dtype}")
    expected = (tgt_shape[0], tgt_shape[1] - 1)
    if host.shape != expected:
        raise ValueError(f"use_gold must have shape (B, T - 1) = {expected}, one entry per "
                         f"decoder input tgt[:, :-1]; got {host.shape}")
    if not host[:, 0].all():
        raise ValueError("use_gold[:, 0] must be all True: the first decoder input is BOS, "
                         "and there is no earlier prediction to feed")
    return host
