"""The fast tier of the losses: :mod:`minis2s.functional.loss`'s masked cross-entropy and
:mod:`minis2s.functional.pointer`'s mixture NLL, on the rows of real tokens, with one ``exp``.

The textbook cross-entropy makes about ten passes over the (B, T, V) logits: log-softmax (a max,
a subtraction, an exp, a sum, a log, a subtraction), ``exp(log p)`` again for the cache, and in
the backward a copy of p, a fancy-index subtraction and a scale. At V ≈ 6,000–9,000 words these
passes cost as much as the output layer's matrix products. Here, on the N rows that hold a real
token (o (N, V), targets y (N,); the PAD rows, about a third of B·T, are never computed):

forward, in place on o (a buffer the caller hands over), in blocks of rows that stay in cache::

    m = max_v o_v                        one read
    o ← max(o − m, c)                    the shifted logits, clamped at the floor c
    o ← exp(o) = e                       the one exp
    Z = Σ_v e_v                          one read
    log p_y = (o_y − m) − log Z          o_y picked before the shift: not clamped

backward, once, in place on e (:meth:`SoftmaxRows.gradient`)::

    G = e / Z − onehot(y) = softmax(o) − onehot(y)        one pass and N single entries

The loss's gradient is then dL/do = diag(w) G, one weight w_n per row (the cross-entropy:
m_n dloss / N; the pointer NLL: the row's share of its gradient). The output layer folds diag(w)
into its (N, D) side (:mod:`minis2s.fast.output`), so G is never scaled, and a second backward
of the same forward finds G already formed.

**Subnormal numbers, avoided by construction.** A float32 probability below 1.2e-38 is a
subnormal number; late in training many are, and matrix products that read them run about 100
times slower on x86 (0.07 s against 10.5 s for one (960, 9000) × (9000, 256) product, measured
here). The floor c = ln(tiny) + 37 (−50.34 in float32, −671.4 in float64; tiny = the dtype's
smallest normal number) keeps every e_v ≥ e^c, so every entry of G off the target is
e_v / Z ≥ e^c / V ≥ tiny (Z ≤ V, as each e_v ≤ 1) for any V below e^37 ≈ 1.1e16, and the
target's entry p_y − 1 is 0 or at least half a rounding unit. No flush is needed, in the loss or
in the products that read G. The error this costs, against the exact softmax, is at most:

- **each loss term** (−log p_y): V e^c (Z grows by at most V e^c, and Z ≥ 1): 1.4e-18 at
  V = 10^4 in float32, 10^10 times below float32's rounding unit 6e-8;
- **each entry of G**: (V + 1) e^c in absolute value: 1.4e-18 at V = 10^4 in float32;
- **float64**: e^c = 2.6e-292; nothing a gradient check can see (tests/test_tiers_loss.py).

**Label smoothing** (ε > 0) keeps these bounds. The uniform term mean_v log p_v = mean_v (o_v −
m) − log Z reads the shifted logits in the same block pass, before the clamp, so its only error
is log Z's, as the target's (the two are weighted 1 − ε and ε). The gradient G = c e/Z − ε/V −
(target and, for the pointer, source-word entries) is formed in the same single pass; each c ≤ 1
and the error of each entry stays below (V + 1) e^c. An entry off the target is ε/V minus a
normal or smaller number, so it is 0 or a normal number whenever ε/V ≥ 2^24 tiny (2e-31 in
float32): for any ε one would use, G still holds no subnormal number.

Unchecked internals: the models check their batches, then call these on the fast tier (or the
reference's private forms on the reference tier). Each public function names the reference it
equals; tests/test_tiers_loss.py proves it in float64, forward and backward, on padded batches.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .. import backend
from ..functional import pointer as _ref_pointer
from ..functional.activations import log_sigmoid, sigmoid
from . import threads

__all__ = ["shift_floor", "flush_subnormals", "Smoothing", "SoftmaxRows", "softmax_rows_forward",
           "CrossEntropyCache", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
           "PointerNLLCache", "pointer_nll_forward", "pointer_nll_backward"]

#: c − ln(tiny): e^c / V is a normal number for every V below e^37 ≈ 1.1e16
HEADROOM = 37.0


def shift_floor(dtype):
    """The floor c = ln(tiny) + 37 of the shifted logits o − max o before ``exp`` (−50.34 in
    float32, −671.4 in float64): e^c / V stays a normal number (see the module docstring)."""
    return math.log(float(backend.xp.finfo(dtype).tiny)) + HEADROOM


def flush_subnormals(a, non_negative=False):
    """In place: set the entries of ``a`` smaller in magnitude than the smallest normal number of
    its dtype to exactly 0; return ``a``. ``non_negative=True`` skips the absolute value
    (probabilities). The losses here need no flush (their floor avoids subnormal numbers); this
    is for arrays that acquire them otherwise."""
    xp = backend.xp
    tiny = xp.finfo(a.dtype).tiny
    xp.copyto(a, 0, where=(a if non_negative else xp.abs(a)) < tiny)
    return a


# --------------------------------------------------------------------------------------------
# The softmax of N rows of logits, one exp, its gradient formed in place
# --------------------------------------------------------------------------------------------
class Smoothing(NamedTuple):
    """How a label-smoothed loss forms its gradient from e (see :meth:`SoftmaxRows.gradient`):
    G = scale ⊙ e / Z − shift − on_y ⊙ onehot(y) + Σ_k extra_k onehot(cols_k)."""

    scale: object  # 1 or (N,)
    shift: float  # ε / V
    on_y: object  # a number or (N,)
    cols: object = None  # (N, K) int columns of the extra terms, or None
    extra: object = None  # (N, K) their values


class SoftmaxRows:
    """The cache of :func:`softmax_rows_forward`: e = exp(max(o − max o, c)) (N, V) and
    Z = Σ_v e_v (N,), for targets y (N,). :meth:`gradient` turns e into G = softmax − onehot(y)
    in place, once (or, when a label-smoothed loss has set ``smoothing``, into that loss's
    G = scale ⊙ softmax − q-like terms, still in one pass)."""

    __slots__ = ("buffer", "Z", "y", "formed", "smoothing")

    def __init__(self, e, Z, y):
        self.buffer = e  # e until gradient() runs, G after
        self.Z = Z
        self.y = y
        self.formed = False
        self.smoothing = None  # a Smoothing, set by a label-smoothed loss

    def gradient(self):
        """G = e / Z − onehot(y) (N, V), the gradient of −log softmax(o)[y] with respect to o,
        formed in place in the cached e (the first call) and returned. With ``smoothing`` set:
        G = scale ⊙ e / Z − shift − on_y onehot(y) + Σ_k extra_k onehot(cols_k)."""
        xp = backend.xp
        if not self.formed:
            G = self.buffer
            rows = xp.arange(G.shape[0])
            s = self.smoothing
            scale = (1 / self.Z if s is None else s.scale / self.Z)[:, None]
            shift = None if s is None else G.dtype.type(s.shift)
            step = _rows_per_block(G)

            def block(i):  # G = scale ⊙ e (− shift), over blocks of rows on the cores
                rows_i = G[i:i + step]
                xp.multiply(rows_i, scale[i:i + step], out=rows_i)
                if shift is not None:
                    rows_i -= shift

            threads.run(block, list(range(0, G.shape[0], step)))
            if s is None:
                G[rows, self.y] -= 1
            else:
                G[rows, self.y] -= s.on_y
                if s.cols is not None:
                    backend.scatter_add(G.reshape(-1), _ref_pointer._flat_ids(s.cols, G.shape[1]),
                                        s.extra.reshape(-1))
            self.formed = True
        return self.buffer

    def probs(self):
        """softmax(o) (N, V), a new array (for inspection; training never calls it)."""
        xp = backend.xp
        if not self.formed:
            return self.buffer / self.Z[:, None]
        P = self.buffer.copy()
        rows = xp.arange(P.shape[0])
        s = self.smoothing
        if s is None:
            P[rows, self.y] += 1
            return P
        if s.cols is not None:
            backend.scatter_add(P.reshape(-1), _ref_pointer._flat_ids(s.cols, P.shape[1]),
                                -s.extra.reshape(-1))
        P[rows, self.y] += s.on_y
        P += P.dtype.type(s.shift)
        P /= xp.asarray(s.scale, dtype=P.dtype).reshape(-1, 1)
        return P


#: NumPy runs the forward's five passes over blocks of rows of about this many bytes, which stay
#: in the L2 cache from the max to the sum: about 25% less time than whole (N, V) passes (median
#: of 40 runs 20.5 against 28.2 ms at (840, 5367) in float32, 12 rows a block; measured here).
#: The blocks are spread over the cores (:mod:`minis2s.fast.threads`). CuPy takes all the rows
#: at once.
BLOCK_BYTES = 2**18


def _rows_per_block(a):
    """The rows of an (N, V) array per block of the row-wise passes: about ``BLOCK_BYTES`` on
    NumPy, all N at once on CuPy; at least 1 (so N = 0 gives no block, not an error)."""
    N, V = a.shape
    return max(1, N if backend.name == "cupy" else BLOCK_BYTES // (V * a.itemsize))


def _softmax_block(o, y, floor, mean_out=None):
    """:func:`softmax_rows_forward` on a block of rows: -> log p_y, Z (and, into ``mean_out``,
    mean_v (o_v − m))."""
    xp = backend.xp
    m = o.max(axis=1)
    shifted_y = o[xp.arange(o.shape[0]), y] - m  # o_y − m, before the clamp: the loss is exact
    o -= m[:, None]
    if mean_out is not None:  # label smoothing: mean_v (o_v − m), before the clamp, exact
        mean_out[...] = o.mean(axis=1)
    xp.maximum(o, floor, out=o)
    xp.exp(o, out=o)
    Z = o.sum(axis=1)
    return shifted_y - xp.log(Z), Z


def softmax_rows_forward(o, y, mean_logp=None):
    """log softmax(o)[y] for each row, in place on ``o``: o (N, V) float, y (N,) int in [0, V).

    ``o`` is overwritten by e = exp(max(o − max o, c)) (the clamp: see the module docstring).
    Returns log p_y (N,) and the :class:`SoftmaxRows` cache. With an (N,) array ``mean_logp``
    (label smoothing), also writes mean_v log softmax(o)[v] into it, from the unclamped
    logits (one more read of each block while it is in cache)."""
    xp = backend.xp
    N, V = o.shape
    floor = o.dtype.type(shift_floor(o.dtype))
    logp_y, Z = xp.empty(N, dtype=o.dtype), xp.empty(N, dtype=o.dtype)
    step = _rows_per_block(o)

    def block(i):  # the blocks are independent: they are spread over the cores
        mean_out = None if mean_logp is None else mean_logp[i:i + step]
        logp_y[i:i + step], Z[i:i + step] = _softmax_block(o[i:i + step], y[i:i + step], floor,
                                                           mean_out)

    threads.run(block, list(range(0, N, step)))
    if mean_logp is not None:
        mean_logp -= xp.log(Z)  # mean_v (o_v − m) − log Z
    return logp_y, SoftmaxRows(o, Z, y)


def _real_rows(mask):
    """mask (...) bool or float -> the flat indices (N,) of its nonzero entries. (Under CuPy
    this reads N back from the device: one synchronisation per step, like the loss's float.)"""
    return backend.xp.flatnonzero(mask.reshape(-1))


def _scatter_rows(values, idx, n_all):
    """values (N, ...) -> (n_all, ...) zeros with values at the rows ``idx``."""
    out = backend.xp.zeros((n_all,) + values.shape[1:], dtype=values.dtype)
    out[idx] = values
    return out


# --------------------------------------------------------------------------------------------
# The masked softmax cross-entropy
# --------------------------------------------------------------------------------------------
class CrossEntropyCache(NamedTuple):
    softmax: SoftmaxRows  # of the N real rows
    weight: object  # (N,) the mask on the real rows, m_n
    n_tokens: object  # N_w = max(Σ m, 1), the divisor of the mean (0-d array)
    idx: object  # (N,) flat indices of the real rows among the B·T
    shape: tuple  # (B, T, V)


def _cross_entropy_rows(o, y, m, n, label_smoothing=0.0):
    """L = −(1/n) Σ_n m_n log softmax(o_n)[y_n] over N rows, in place on ``o`` (N, V); with
    ε = ``label_smoothing`` > 0, −(1/n) Σ_n m_n [(1 − ε) log p_n[y_n] + ε mean_v log p_n[v]],
    and the gradient G = softmax − q, q = (1 − ε) onehot(y) + ε/V."""
    eps = label_smoothing
    if not eps:
        logp_y, softmax = softmax_rows_forward(o, y)
        return -(logp_y * m).sum() / n, softmax
    N, V = o.shape
    mean_logp = backend.xp.empty(N, dtype=o.dtype)
    logp_y, softmax = softmax_rows_forward(o, y, mean_logp)
    softmax.smoothing = Smoothing(1, eps / V, 1 - eps)
    return -(((1 - eps) * logp_y + eps * mean_logp) * m).sum() / n, softmax


def softmax_cross_entropy_forward(logits, targets, mask, label_smoothing=0.0):
    """Equals: minis2s.functional.loss.softmax_cross_entropy_forward (to the clamp's bound).

    logits (B, T, V), targets (B, T), mask (B, T) bool or float, label_smoothing ε (a checked
    float in [0, 1)). The rows where the mask is 0 are not computed (their gradient is 0); the
    others are copied out, so ``logits`` is left as it is. Returns the loss (0-d array) and a
    :class:`CrossEntropyCache`."""
    xp = backend.xp
    B, T, V = logits.shape
    idx = _real_rows(mask)
    m = mask.reshape(-1)[idx].astype(logits.dtype)
    n = xp.maximum(mask.astype(logits.dtype).sum(), 1)
    loss, softmax = _cross_entropy_rows(logits.reshape(B * T, V)[idx], targets.reshape(-1)[idx],
                                        m, n, label_smoothing)
    return loss, CrossEntropyCache(softmax, m, n, idx, (B, T, V))


def softmax_cross_entropy_backward(cache: CrossEntropyCache, dloss=1.0):
    """Equals: minis2s.functional.loss.softmax_cross_entropy_backward: dlogits (B, T, V) =
    m (softmax − q) / N · dloss (q = onehot(y), or its smoothed form), exactly 0 on the rows
    where the mask is 0."""
    B, T, V = cache.shape
    w = (cache.weight * (dloss / cache.n_tokens)).astype(cache.weight.dtype)
    d = cache.softmax.gradient() * w[:, None]
    return _scatter_rows(d, cache.idx, B * T).reshape(B, T, V)


# --------------------------------------------------------------------------------------------
# The pointer mixture's NLL
# --------------------------------------------------------------------------------------------
class PointerNLLCache(NamedTuple):
    softmax: SoftmaxRows  # P_vocab of the N rows with a nonzero weight
    p_gen_logit: object  # (N,) l
    log_gen: object  # (N,) log p_gen + log P_vocab(y), −inf if y >= V
    log_copy: object  # (N,) log(1 − p_gen) + log P_copy(y), −inf if P_copy(y) = 0
    log_P: object  # (N,) log P(y)
    hit: object  # (N, S) bool, src_ext_i == y
    floored: object  # (N,) bool, an OOV target without copy mass (floored at tiny)
    weight: object  # (N,)
    idx: object  # (N,) flat indices of these rows among all the leading positions
    lead: tuple  # (B,) or (B, T)
    label_smoothing: float = 0.0  # ε
    smooth_dl: object = None  # (N,) ρ_copy − (1 − p_gen): the uniform part's d/dl (ε > 0)
    smooth_dalpha: object = None  # (N, S) −[src_i < V] (1 − p_gen) / (V P(src_i)) (ε > 0)


def _pointer_inputs(p_gen_logit, alpha, src_ext, target, weight):
    """The mixture's inputs on the rows of nonzero weight: -> idx (N,), l (N,), alpha (N, S),
    src (N, S), y (N,), w (N,), and the leading shape. ``src_ext`` (B, S) is shared by the T
    steps of a (B, T) leading shape."""
    lead = tuple(p_gen_logit.shape)
    S = alpha.shape[-1]
    src = src_ext if src_ext.ndim == alpha.ndim else src_ext[:, None, :]
    src = backend.xp.broadcast_to(src, alpha.shape).reshape(-1, S)
    idx = _real_rows(weight)
    return (idx, p_gen_logit.reshape(-1)[idx], alpha.reshape(-1, S)[idx], src[idx],
            target.reshape(-1)[idx], weight.reshape(-1)[idx], lead)


def _source_words(alpha, src_ext, idx):
    """For label smoothing: at each source position i of the rows ``idx``, P_copy(src_i) =
    Σ_j alpha_j [src_j = src_i] and the count of src_i in its source, both (N, S). The
    (S, S) equality matrix is formed once per batch row of a (B, S) ``src_ext`` (shared by the
    T steps), and P_copy(src_i) = (alpha E)_i is a batched matrix product (E is symmetric)."""
    xp = backend.xp
    S = alpha.shape[-1]
    E = (src_ext[..., :, None] == src_ext[..., None, :]).astype(alpha.dtype)  # (.., S, S)
    count = E.sum(axis=-1)  # (.., S)
    if src_ext.ndim == alpha.ndim:  # one source per leading position
        P_src = xp.matmul(E, alpha[..., None])[..., 0]
    else:  # (B, S) shared by the T steps of alpha (B, T, S); alpha (B, S) is T = 1
        a3 = alpha.reshape(alpha.shape[0], -1, S)
        P_src = xp.matmul(a3, E)
        count = xp.broadcast_to(count[:, None, :], a3.shape)
    return P_src.reshape(-1, S)[idx], count.reshape(-1, S)[idx]


def _pointer_nll_rows(o, l, a, src, y, w, idx, lead, label_smoothing=0.0, words=None):
    """nll = −log P(y) · w for N rows, in place on ``o`` (N, V): the reference's
    ``_pointer_nll_forward`` with log P_vocab(y) from :func:`softmax_rows_forward`.
    Returns nll (N,) and a :class:`PointerNLLCache`.

    With ε = ``label_smoothing`` > 0 (``words`` = :func:`_source_words`), nll = w [(1 − ε)
    (−log P(y)) + ε U], U = −(1/V) Σ_{v<V} log P(v), computed without forming P over the
    vocabulary: log P(v) = log σ(l) + log P_vocab(v) except at the words of the source, where
    it exceeds that by softplus(b_v − a_v) = log P(v) − a_v, so that

        U = −log σ(l) − mean_v log P_vocab(v) − (1/V) Σ_i [src_i < V] (log P(src_i) − a_i) / n_i

    with n_i the count of src_i in its source (each distinct word once); log P_vocab(src_i) =
    o_{src_i} − logsumexp(o) from the logits picked before the clamp, so U is exact."""
    xp = backend.xp
    N, V = o.shape
    tiny = float(xp.finfo(o.dtype).tiny)
    eps = label_smoothing
    in_vocab = y < V
    y_v = xp.where(in_vocab, y, 0)
    mean_logp = None
    if eps:  # the logits at the targets and the source words, before the in-place softmax
        rows = xp.arange(N)
        src_in = src < V
        src_v = xp.where(src_in, src, 0)
        o_src, o_y = o[rows[:, None], src_v], o[rows, y_v]
        mean_logp = xp.empty(N, dtype=o.dtype)
    logp_y, softmax = softmax_rows_forward(o, y_v, mean_logp)
    if eps:
        logp_src = o_src - (o_y - logp_y)[:, None]  # log P_vocab(src_i), logsumexp = o_y − log p_y
    logp_y = xp.where(in_vocab, logp_y, -xp.inf)  # log P_vocab(y)
    hit = src == y[:, None]
    P_copy = (a * hit).sum(axis=-1)  # P_copy(y)
    floored = ~in_vocab & (P_copy < tiny)  # an OOV target without copy mass: floor it
    P_copy = xp.where(floored, tiny, P_copy)
    log_P, log_gen, log_copy = _ref_pointer._log_mixture(logp_y, l, P_copy)
    if not eps:
        return -log_P * w, PointerNLLCache(softmax, l, log_gen, log_copy, log_P, hit, floored,
                                           w, idx, lead)
    P_src, count = words
    log_P_src, log_gen_src, log_copy_src = _ref_pointer._log_mixture(logp_src, l[:, None],
                                                                     P_src)
    share = xp.where(src_in, 1 / count, 0)  # each distinct vocabulary word of the source once
    U = -(log_sigmoid(l) + mean_logp + ((log_P_src - log_gen_src) * share).sum(axis=-1) / V)
    r_gen = xp.exp(log_gen - log_P)
    r_copy_src = xp.exp(log_copy_src - log_P_src) * share  # r_copy(src_i) / n_i
    rho_copy = r_copy_src.sum(axis=-1) / V  # (1/V) Σ_{v<V} r_copy(v)
    # G = c1 softmax − ε/V − (1 − ε) r_gen onehot(y) + (ε/V) Σ_v r_copy(v) onehot(v), with
    # c1 = (1 − ε) r_gen + ε (1 − ρ_copy): the whole row's dvocab_logits, weighted by g
    softmax.smoothing = Smoothing((1 - eps) * r_gen + eps * (1 - rho_copy), eps / V,
                                  (1 - eps) * r_gen, src_v, (eps / V) * r_copy_src)
    coef_src = xp.exp(xp.minimum(log_sigmoid(-l)[:, None] - log_P_src, -math.log(tiny)))
    smooth_dalpha = -xp.where(src_in, coef_src, 0) / V
    nll = ((1 - eps) * -log_P + eps * U) * w
    return nll, PointerNLLCache(softmax, l, log_gen, log_copy, log_P, hit, floored, w, idx, lead,
                                eps, rho_copy - sigmoid(-l), smooth_dalpha)


def _pointer_nll_rows_backward(dnll, cache: PointerNLLCache):
    """The reference's ``_pointer_nll_backward`` on the N rows, dnll (N,) of them, with
    dvocab_logits = diag(g r_gen) G left unformed: -> G (N, V), the rows' weights g r_gen (N,),
    dp_gen_logit (N,), dalpha (N, S)."""
    xp = backend.xp
    c = cache
    tiny = float(xp.finfo(c.weight.dtype).tiny)
    g = dnll * c.weight
    eps = c.label_smoothing
    g_y = g * (1 - eps) if eps else g  # the target's share of the smoothed loss
    l = c.p_gen_logit
    p, q = sigmoid(l), sigmoid(-l)
    r_gen = xp.exp(c.log_gen - c.log_P)  # the branches' shares of P(y), summing to 1
    r_copy = xp.exp(c.log_copy - c.log_P)
    dp_gen_logit = g_y * xp.where(p > 0.5, r_copy - q, p - r_gen)
    coef = xp.exp(xp.minimum(log_sigmoid(-l) - c.log_P, -math.log(tiny)))  # (1 − p_gen) / P(y)
    coef = xp.where(c.floored, 0, coef)
    dalpha = -(g_y * coef)[:, None] * c.hit
    if not eps:
        return c.softmax.gradient(), (g * r_gen).astype(c.weight.dtype), dp_gen_logit, dalpha
    # the uniform part: its d/dl and dalpha were formed in the forward; G holds the whole row
    dp_gen_logit += g * eps * c.smooth_dl
    dalpha += (g * eps)[:, None] * c.smooth_dalpha
    return c.softmax.gradient(), g.astype(c.weight.dtype), dp_gen_logit, dalpha


def pointer_nll_forward(vocab_logits, p_gen_logit, alpha, src_ext, target, weight,
                        label_smoothing=0.0):
    """Equals: minis2s.functional.pointer.pointer_nll_forward (to the clamp's bound), with a
    float ``weight`` of the leading shape and a checked ``label_smoothing``. The rows of weight
    0 are not computed (nll 0, no gradient); the others are copied out, so ``vocab_logits`` is
    left as it is."""
    idx, l, a, src, y, w, lead = _pointer_inputs(p_gen_logit, alpha, src_ext, target, weight)
    o = vocab_logits.reshape(-1, vocab_logits.shape[-1])[idx]
    words = _source_words(alpha, src_ext, idx) if label_smoothing else None
    nll, cache = _pointer_nll_rows(o, l, a, src, y, w, idx, lead, label_smoothing, words)
    return _scatter_rows(nll, idx, math.prod(lead)).reshape(lead), cache


def pointer_nll_backward(dnll, cache: PointerNLLCache):
    """Equals: minis2s.functional.pointer.pointer_nll_backward: -> dvocab_logits, dp_gen_logit,
    dalpha with the leading shape (exactly 0 on the rows of weight 0)."""
    lead, idx = cache.lead, cache.idx
    G, w, dl, da = _pointer_nll_rows_backward(dnll.reshape(-1)[idx], cache)
    n_all = math.prod(lead)
    return (_scatter_rows(G * w[:, None], idx, n_all).reshape(lead + G.shape[1:]),
            _scatter_rows(dl, idx, n_all).reshape(lead),
            _scatter_rows(da, idx, n_all).reshape(lead + da.shape[1:]))
