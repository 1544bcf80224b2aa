"""Independent NumPy references: the ops' formulas written plainly, finite differences, Adam.

The grader checks a student's copy against these, and the test suite checks the library
against them. They are written separately from ``minis2s.functional`` on purpose, in the
simplest form (often one row or one step at a time), so that a mistake in the library is not
copied into its reference.

This module imports NumPy alone, never ``minis2s``: the grading processes load it by file path
from the instructor's package, beside a student's copy of ``minis2s`` that they must not trust
(a student could change that copy's ``minis2s.gradcheck`` too, which is why the finite
differences live here as well).

Shapes: B batch, T steps, S source positions, D input size, H hidden size, V vocabulary.
Symbols as in docs/derivations/: ``s`` decoder states, ``hbar`` encoder outputs, ``h`` GRU
states, ``e`` scores, ``alpha`` attention weights, ``c`` contexts, ``o`` logits.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "numerical_gradient", "rel_error", "worst", "Adam",
    "lengths_mask", "sigmoid", "softmax", "log_softmax", "masked_softmax",
    "masked_softmax_backward", "cross_entropy", "cross_entropy_grad",
    "linear", "embedding",
    "gru_params", "gru_cell", "gru_rowwise", "gru_stack_step",
    "SCORES", "score_param_shapes", "attention_scores", "attention",
    "coverage_scores", "final_distribution", "pointer_log_prob", "coverage_loss",
    "reverse_task",
]

PAD, BOS, EOS, UNK = 0, 1, 2, 3


# ----------------------------------------------------------------------------------------------
# Finite differences, errors, Adam
# ----------------------------------------------------------------------------------------------
def numerical_gradient(f, x, h=1e-5):
    """Centred differences of the scalar ``f()`` with respect to the float64 array ``x``.

    ``x`` is perturbed in place, one element at a time, and restored.
    """
    g = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(*x.shape):
        old = x[ix]
        x[ix] = old + h
        fp = f()
        x[ix] = old - h
        fm = f()
        x[ix] = old
        g[ix] = (fp - fm) / (2 * h)
    return g


def rel_error(a, n):
    """max |a − n| / max(max |a|, max |n|) (0 when both are 0): the error at the scale of the
    whole array, so that rounding noise on tiny elements does not count."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(n), initial=0.0)))
    return float(np.max(np.abs(a - n), initial=0.0)) / scale if scale > 0 else 0.0


def worst(a, n):
    """(index, a[index], n[index]) where |a − n| is largest (NaN counts as largest)."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    diff = np.abs(a - n)
    diff = np.where(np.isnan(diff), np.inf, diff)
    ix = np.unravel_index(int(np.argmax(diff)), a.shape) if a.size else ()
    ix = tuple(int(i) for i in ix)
    return ix, float(a[ix]), float(n[ix])


class Adam:
    """Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) on a dict of float64 arrays, updated in place."""

    def __init__(self, params, lr):
        self.params, self.lr, self.t = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads):
        self.t += 1
        for k, p in self.params.items():
            g = np.asarray(grads[k], dtype=np.float64).reshape(p.shape)
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            m_hat = self.m[k] / (1 - 0.9 ** self.t)
            v_hat = self.v[k] / (1 - 0.999 ** self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


# ----------------------------------------------------------------------------------------------
# Activations and the loss
# ----------------------------------------------------------------------------------------------
def lengths_mask(lengths, T):
    """(B, T) bool, True on the first ``lengths[b]`` steps of row b."""
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}), evaluated without overflow."""
    a = np.asarray(a, dtype=np.float64)
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def softmax(o, axis=-1):
    z = np.exp(o - o.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def log_softmax(o, axis=-1):
    z = o - o.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def masked_softmax(e, mask):
    """Softmax over the last axis where ``mask`` (broadcast to ``e``) is true; exactly 0
    elsewhere. Every row needs one true position."""
    z = np.where(mask, e, -np.inf)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def masked_softmax_backward(dalpha, alpha):
    """de of :func:`masked_softmax` (0 where alpha is 0, so on the masked positions)."""
    return alpha * (dalpha - (alpha * dalpha).sum(axis=-1, keepdims=True))


def cross_entropy(o, y, mask):
    """Mean over the true positions of ``mask`` of −log softmax(o)[y]; o (..., V)."""
    logp = np.take_along_axis(log_softmax(o), np.asarray(y)[..., None], axis=-1)[..., 0]
    return float(-(logp * mask).sum() / mask.sum())


def cross_entropy_grad(o, y, mask):
    """d :func:`cross_entropy` / d o = (softmax(o) − onehot(y)) · mask / Σ mask."""
    d = softmax(o)
    np.put_along_axis(d, y[..., None], np.take_along_axis(d, y[..., None], -1) - 1, -1)
    return d * (mask / mask.sum())[..., None]


# ----------------------------------------------------------------------------------------------
# Linear and embedding
# ----------------------------------------------------------------------------------------------
def linear(x, W, b=None):
    """y = x W + b, x (..., D), W (D, M), b (M,)."""
    y = x @ W
    return y if b is None else y + b


def embedding(ids, W):
    """W[ids]: one row of W (V, D) per id."""
    return W[ids]


# ----------------------------------------------------------------------------------------------
# GRU (torch.nn.GRU's equations and layout: gate rows r, z, n)
# ----------------------------------------------------------------------------------------------
def gru_params(rng, D, H, num_layers=1, dirs=1, scale=0.6):
    """Random weights under PyTorch's names (``weight_ih_l0``, ..., ``..._reverse``)."""
    p = {}
    for layer in range(num_layers):
        d_in = D if layer == 0 else H * dirs
        for d in range(dirs):
            k = f"l{layer}{'_reverse' if d else ''}"
            p[f"weight_ih_{k}"] = rng.uniform(-scale, scale, (3 * H, d_in))
            p[f"weight_hh_{k}"] = rng.uniform(-scale, scale, (3 * H, H))
            p[f"bias_ih_{k}"] = rng.uniform(-scale, scale, 3 * H)
            p[f"bias_hh_{k}"] = rng.uniform(-scale, scale, 3 * H)
    return p


def _layer(params, layer, reverse=False):
    k = f"l{layer}{'_reverse' if reverse else ''}"
    return [params[f"{n}_{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """One GRU step: h' = (1 − z) n + z h; x (..., D), h (..., H)."""
    H = h.shape[-1]
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r = sigmoid(gi[..., :H] + gh[..., :H])
    z = sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
    n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
    return (1 - z) * n + z * h


def gru_rowwise(x, h0, lengths, params, num_layers, bidirectional):
    """A padded multi-layer (bidirectional) GRU, one row and one step at a time: each row runs
    alone over its ``lengths[b]`` real steps (packed-sequence semantics).

    Args:
        x: (B, T, D); h0: (layers·dirs, B, H) or None (zeros); lengths: (B,) ints.

    Returns:
        out (B, T, H·dirs), 0 on padded steps; h_n (layers·dirs, B, H).
    """
    B, T, _ = x.shape
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    out = np.zeros((B, T, H * dirs))
    h_n = np.zeros((num_layers * dirs, B, H))
    for b in range(B):
        L = int(lengths[b])
        inp = x[b, :L]
        for layer in range(num_layers):
            outs = []
            for d in range(dirs):
                h = np.zeros(H) if h0 is None else np.array(h0[layer * dirs + d, b])
                states = np.zeros((L, H))
                for t in (range(L - 1, -1, -1) if d else range(L)):
                    h = gru_cell(inp[t], h, *_layer(params, layer, d == 1))
                    states[t] = h
                h_n[layer * dirs + d, b] = h
                outs.append(states)
            inp = np.concatenate(outs, axis=1)
        out[b, :L] = inp
    return out, h_n


def gru_stack_step(x_t, h, params, num_layers):
    """One step through a unidirectional stack: -> (top layer's new state, new states)."""
    new, inp = [], x_t
    for layer in range(num_layers):
        inp = gru_cell(inp, h[layer], *_layer(params, layer))
        new.append(inp)
    return inp, np.stack(new)


# ----------------------------------------------------------------------------------------------
# Attention: e_ts = score(s_t, hbar_s); alpha = masked softmax over s; c_t = Σ_s alpha_ts hbar_s
# ----------------------------------------------------------------------------------------------
SCORES = ("dot", "general", "additive", "cosine")
COSINE_EPS = 1e-8


def score_param_shapes(score, H, Hs, A):
    """The parameters of each score: dot none; general W (H, Hs); additive W1 (Hs, A),
    W2 (H, A), v (A,); cosine scale (1,)."""
    return {"dot": {}, "general": {"W": (H, Hs)},
            "additive": {"W1": (Hs, A), "W2": (H, A), "v": (A,)},
            "cosine": {"scale": (1,)}}[score]


def attention_scores(score, s, hbar, params, eps=COSINE_EPS):
    """e (B, T, S) for decoder states s (B, T, H) and encoder outputs hbar (B, S, Hs):

    dot s·hbar; general s W hbar; additive vᵀ tanh(W1ᵀ hbar + W2ᵀ s); cosine
    scale · (s/‖s‖)·(hbar/‖hbar‖), with ‖x‖ = sqrt(Σ x² + eps).
    """
    B, T, _ = s.shape
    S = hbar.shape[1]
    e = np.zeros((B, T, S))
    for b in range(B):
        for t in range(T):
            for j in range(S):
                q, k = s[b, t], hbar[b, j]
                if score == "dot":
                    e[b, t, j] = q @ k
                elif score == "general":
                    e[b, t, j] = q @ params["W"] @ k
                elif score == "additive":
                    e[b, t, j] = params["v"] @ np.tanh(k @ params["W1"] + q @ params["W2"])
                elif score == "cosine":
                    e[b, t, j] = (params["scale"][0] * (q @ k)
                                  / np.sqrt(q @ q + eps) / np.sqrt(k @ k + eps))
                else:
                    raise ValueError(f"unknown score {score!r}")
    return e


def attention(score, s, hbar, mask, params, eps=COSINE_EPS):
    """-> (c (B, T, Hs), alpha (B, T, S)); mask (B, S) true on real source positions."""
    alpha = masked_softmax(attention_scores(score, s, hbar, params, eps), mask[:, None, :])
    return alpha @ hbar, alpha


# ----------------------------------------------------------------------------------------------
# Pointer-generator (See et al. 2017)
# ----------------------------------------------------------------------------------------------
def coverage_scores(s, k, coverage, W2, v, w_c):
    """e_i = vᵀ tanh(k_i + s W2 + w_c cov_i): eq. 11, the additive score plus the coverage
    term. s (B, H); k (B, S, A) the keys W_h hbar_i + b_attn; coverage (B, S)."""
    B, S, _ = k.shape
    e = np.zeros((B, S))
    for b in range(B):
        for i in range(S):
            e[b, i] = v @ np.tanh(k[b, i] + s[b] @ W2 + w_c * coverage[b, i])
    return e


def final_distribution(o, l, alpha, src_ext, n_ext):
    """P(w) = p_gen P_vocab(w) + (1 − p_gen) Σ_{i: src_i = w} alpha_i (eq. 9), row by row.

    o (B, V) vocabulary logits, l (B,) the p_gen logit, alpha (B, S), src_ext (B, S) ids in
    the extended vocabulary of size ``n_ext``.
    """
    B, V = o.shape
    p = sigmoid(l)
    P = np.zeros((B, n_ext))
    P[:, :V] = p[:, None] * softmax(o)
    for b in range(B):
        for i in range(src_ext.shape[1]):
            P[b, src_ext[b, i]] += (1 - p[b]) * alpha[b, i]
    return P


def pointer_log_prob(o, l, alpha, src_ext, y):
    """log P(y) of :func:`final_distribution`, stably: log(e^a + e^b) with
    a = log σ(l) + log softmax(o)[y] (y < V) and b = log σ(−l) + log Σ_{src_i = y} alpha_i."""
    V = o.shape[1]
    rows = np.arange(len(y))
    log_sig = np.minimum(l, 0) - np.log1p(np.exp(-np.abs(l)))
    log_sig_neg = np.minimum(-l, 0) - np.log1p(np.exp(-np.abs(l)))
    a = np.where(y < V, log_sig + log_softmax(o)[rows, np.minimum(y, V - 1)], -np.inf)
    pc = (alpha * (src_ext == y[:, None])).sum(-1)
    with np.errstate(divide="ignore"):
        b = np.where(pc > 0, log_sig_neg + np.log(np.where(pc > 0, pc, 1)), -np.inf)
    return np.logaddexp(a, b)


def coverage_loss(alpha, coverage):
    """Σ_i min(alpha_i, c_i) over the last axis (eq. 12)."""
    return np.minimum(alpha, coverage).sum(-1)


# ----------------------------------------------------------------------------------------------
# A tiny task
# ----------------------------------------------------------------------------------------------
def reverse_task(rng, n, n_symbols, min_len, max_len):
    """``n`` random sequences over the ids 4 .. 4 + n_symbols − 1 and their reverses.

    Returns:
        src (n, max_len), right-padded with PAD; tgt (n, max_len + 2): BOS, the reversed
        sequence, EOS, then PAD.
    """
    src = np.zeros((n, max_len), dtype=np.int64)
    tgt = np.zeros((n, max_len + 2), dtype=np.int64)
    for b in range(n):
        L = int(rng.integers(min_len, max_len + 1))
        seq = rng.integers(4, 4 + n_symbols, size=L)
        src[b, :L] = seq
        tgt[b, :L + 2] = [BOS, *seq[::-1], EOS]
    return src, tgt
