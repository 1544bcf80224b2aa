"""Greedy decoding, beam search and sampling over the per-step decoder interface that every
model offers:

    state = model.init_decoder(src)                 # dict of arrays, batch on axis 0
    log_probs, state = model.decode_step(state, y)  # y (N,) previous ids -> (N, V_out)

All three are vectorised over the batch (and the beams): one ``decode_step`` call per time step
for all N = B·K hypotheses, no Python loop over rows or beams. ``trace`` names state entries
(for example ``"alpha"``, ``"p_gen"``, ``"coverage"``) to record at every step, for plots.

What every decoder masks (``_banned``), so that an output is a sequence the model scored:

- PAD and BOS are never generated;
- ``min_len``: EOS gets −inf while fewer than ``min_len`` tokens precede it;
- ``no_repeat_ngram = n``: a token that would complete an n-gram the hypothesis already holds
  gets −inf.

Beam search ranks a hypothesis Y of |Y| tokens (EOS included) by the penalised score of Wu et
al. 2016 (GNMT), in the code's symbols (docs/decoding.md):

    score(Y) = log P(Y | X) / lp(Y) + cp(X; Y)
    lp(Y)    = ((5 + |Y|) / 6) ** length_penalty                       (:func:`lp`)
    cp(X; Y) = coverage_penalty · Σ_i log(min(Σ_t α_t,i, 1))           (:func:`cp`)

where α_t,i is the attention weight of output step t on real source position i. With
``length_penalty=None`` (the default) lp(Y) = |Y|: the mean log-probability per token, as
minis2s's beam search has always ranked. Sampling
(:func:`sample_decode`) draws each token from the temperature-scaled distribution, cut to its
top-k tokens and/or its nucleus (top-p), with uniforms drawn on the host by a seeded NumPy
Generator, so a seed gives the same outputs on NumPy and CuPy.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np  # host side only: the sampling RNG and the conversion of results

from . import backend
from ._checks import non_negative_float, non_negative_int, positive_int
from .constants import BOS, EOS, PAD
from .functional.activations import log_softmax

__all__ = ["Hypothesis", "greedy_decode", "beam_search", "sample_decode", "lp", "cp",
           "top_k_top_p_filter", "strip_ids"]


class Hypothesis(NamedTuple):
    """One output of beam search with ``n_best`` (best first)."""

    ids: list  #: the generated ids, without BOS, EOS or PAD
    score: float  #: the penalised score log P(Y|X) / lp(Y) + cp(X; Y) that ranked it
    log_prob: float  #: log P(Y|X), the sum of the token log-probabilities (EOS included)


# --- argument checks ---------------------------------------------------------------------------
def _positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number > 0; got {value!r} ({type(value).__name__})")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value}")
    return float(value)


def _top_p(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"top_p must be a number in (0, 1]; got {value!r} "
                        f"({type(value).__name__})")
    if not 0 < value <= 1:
        raise ValueError(f"top_p must be a number in (0, 1] (1 keeps every token); got {value}")
    return float(value)


def _lengths(max_len, min_len):
    max_len = positive_int("max_len", max_len)
    min_len = non_negative_int("min_len", min_len)
    if min_len >= max_len:
        raise ValueError(f"min_len must be less than max_len (max_len counts the EOS token): "
                         f"got min_len {min_len} and max_len {max_len}")
    return max_len, min_len


def _trace_names(trace):
    if isinstance(trace, str) or not all(isinstance(k, str) for k in trace):
        raise TypeError(f"trace must be a tuple of state names, e.g. ('alpha',); got {trace!r}")
    return tuple(trace)


# --- the scores of beam search -------------------------------------------------------------------
def lp(length, alpha):
    """GNMT's length penalty lp(Y) = ((5 + |Y|) / 6) ** alpha (1 for alpha = 0), or |Y| for
    alpha None (log P / lp is then the mean log-probability per token).

    ``length`` |Y| counts the tokens, EOS included (an int or an array); alpha = 0 ranks by
    log P(Y|X) alone, larger alphas favour longer outputs more.
    """
    if alpha is None:
        return float(length)
    return ((5.0 + length) / 6.0) ** alpha


def cp(attention_sum, mask, beta):
    """Wu et al.'s coverage penalty cp = beta · Σ_i log(min(Σ_t α_t,i, 1)), (N, S) -> (N,).

    Args:
        attention_sum: (N, S) Σ_t α_t,i, the attention each source position received so far
            (for the pointer-generator, its coverage vector c plus the last step's α).
        mask: (N, S) bool, True on real source positions; PAD columns add log 1 = 0.
        beta: the weight (0 turns it off).

    A source word that received total attention 1 or more costs nothing; one that was barely
    attended costs β·log of what it got. The minimum is floored at the dtype's smallest normal
    number, so a word with no attention at all costs a large finite amount, not −inf.
    """
    xp = backend.xp
    tiny = xp.finfo(attention_sum.dtype).tiny
    capped = xp.clip(attention_sum, tiny, 1.0)
    return beta * xp.where(mask, xp.log(capped), 0.0).sum(axis=1)


# --- what every decoder masks ------------------------------------------------------------------
def _ngram_ban(history, n, V):
    """(N, V) bool: True on the tokens that would complete an n-gram already in ``history``.

    history (N, t): the tokens generated so far. The new n-gram is (history[:, t−n+1:], w); it
    repeats the n-gram starting at j when history[:, j:j+n−1] equals that prefix, and then
    w = history[:, j+n−1] is banned. Vectorised over the N hypotheses and the positions j; the
    loop runs over the n − 1 prefix tokens only.
    """
    xp = backend.xp
    N, t = history.shape
    ban = xp.zeros((N, V), dtype=bool)
    J = t - n + 1  # the n-grams the hypothesis already holds start at j = 0 .. t − n
    if J <= 0:
        return ban
    match = xp.ones((N, J), dtype=bool)
    for k in range(n - 1):
        match &= history[:, k:k + J] == history[:, t - n + 1 + k][:, None]
    completes = history[:, n - 1:n - 1 + J]  # (N, J): the token that ended each earlier n-gram
    r, j = xp.nonzero(match)
    ban[r, completes[r, j]] = True
    return ban


def _banned(log_probs, history, min_len, no_repeat_ngram):
    """A copy of log_probs (N, V) with −inf on PAD, BOS, EOS before ``min_len`` tokens, and the
    tokens blocked by ``no_repeat_ngram``; ``history`` (N, t) the tokens so far."""
    xp = backend.xp
    out = log_probs.copy()
    out[:, PAD] = -xp.inf
    out[:, BOS] = -xp.inf
    if history.shape[1] < min_len:
        out[:, EOS] = -xp.inf
    if no_repeat_ngram:
        out[_ngram_ban(history, no_repeat_ngram, out.shape[1])] = -xp.inf
    return out


# --- host conversion -----------------------------------------------------------------------------
def strip_ids(ids_row):
    """Cut a host row of ids at its first EOS and drop PAD/BOS: a list of ints."""
    out = []
    for i in ids_row:
        i = int(i)
        if i == EOS:
            break
        if i not in (PAD, BOS):
            out.append(i)
    return out


def _steps(row):
    """The number of generated steps of a host row: up to its first EOS, EOS included."""
    eos = np.flatnonzero(row == EOS)
    return int(eos[0]) + 1 if eos.size else len(row)


def _finish(tokens, traces, trace):
    """Host conversion: token rows cut at EOS, and the traced arrays cut to the same lengths."""
    tokens = backend.to_numpy(tokens)
    rows = [strip_ids(r) for r in tokens]
    if not trace:
        return rows
    lengths = [_steps(r) for r in tokens]
    traced = {
        k: [backend.to_numpy(v[b, : lengths[b]]) for b in range(len(rows))]
        for k, v in traces.items()
    }
    return rows, traced


# --- one path per row: greedy decoding and sampling --------------------------------------------
def _one_path(model, src, max_len, trace, pick, min_len, no_repeat_ngram):
    """The loop that greedy decoding and sampling share: ``pick(log_probs, t)`` -> ids (B,)."""
    xp = backend.xp
    state = model.init_decoder(src)
    B = src.shape[0]
    y = xp.full((B,), BOS, dtype=src.dtype)
    tokens = xp.full((B, max_len), PAD, dtype=src.dtype)
    finished = xp.zeros((B,), dtype=bool)
    steps = {k: [] for k in trace}
    for t in range(max_len):
        log_probs, state = model.decode_step(state, y)
        log_probs = _banned(log_probs, tokens[:, :t], min_len, no_repeat_ngram)
        y = pick(log_probs, t).astype(src.dtype)
        y[finished] = PAD
        tokens[:, t] = y
        for k in trace:
            steps[k].append(state[k])
        finished |= y == EOS
        if bool(finished.all()):
            break
    traces = {k: xp.stack(v, axis=1) for k, v in steps.items()}
    return _finish(tokens, traces, trace)


def greedy_decode(model, src, max_len=50, trace=(), *, min_len=0, no_repeat_ngram=0):
    """Pick the most probable allowed token at each step until every row has emitted EOS.

    Args:
        model: a minis2s model. src: (B, S) validated source ids on the active backend.
        max_len: the most tokens to generate per row (EOS included).
        trace: names of state entries to record per step.
        min_len: EOS is masked until a row has generated this many tokens.
        no_repeat_ngram: n > 0 masks a token that would repeat an n-gram of the row.

    Returns:
        A list of B id lists (no BOS/EOS/PAD), or ``(rows, traces)`` when ``trace`` is given,
        where ``traces[name][b]`` is a NumPy array with one entry per generated token of row b
        (its EOS step included).
    """
    max_len, min_len = _lengths(max_len, min_len)
    no_repeat_ngram = non_negative_int("no_repeat_ngram", no_repeat_ngram)
    return _one_path(model, src, max_len, _trace_names(trace),
                     lambda log_probs, t: log_probs.argmax(axis=1), min_len, no_repeat_ngram)


def top_k_top_p_filter(log_probs, top_k=0, top_p=1.0):
    """Keep each row's top-k tokens and its nucleus; −inf elsewhere. (N, V) -> (N, V).

    top_k > 0 keeps the k most probable tokens (0: all). top_p < 1 keeps the nucleus: the
    fewest most probable tokens whose probabilities sum to at least top_p (a token is kept
    when the tokens ranked above it sum to less than top_p, so the first is always kept).
    ``log_probs`` must be normalised log-probabilities (rows sum to 1 in probability). The
    result is not renormalised; sampling renormalises it.
    """
    xp = backend.xp
    top_k = non_negative_int("top_k", top_k)
    top_p = _top_p(top_p)
    N, V = log_probs.shape
    if not 0 < top_k < V and top_p == 1.0:
        return log_probs  # nothing to cut (no sort)
    order = xp.argsort(-log_probs, axis=1)  # most probable first
    ranked = xp.take_along_axis(log_probs, order, axis=1)
    keep = xp.ones((N, V), dtype=bool)
    if 0 < top_k < V:
        keep[:, top_k:] = False
    if top_p < 1.0:
        p = xp.exp(ranked)
        above = xp.cumsum(p, axis=1) - p  # the mass ranked above each token
        above[:, 0] = 0.0
        keep &= above < top_p
    out = xp.full_like(log_probs, -xp.inf)
    rows = xp.arange(N)[:, None]
    out[rows, order] = xp.where(keep, ranked, -xp.inf)
    return out


def sample_decode(model, src, max_len=50, trace=(), *, temperature=1.0, top_k=0, top_p=1.0,
                  seed=None, min_len=0, no_repeat_ngram=0):
    """Draw each token at random: from softmax(log p / temperature), cut by top-k and top-p.

    At step t the allowed log-probabilities (PAD, BOS, early EOS and repeated n-grams masked,
    as in greedy decoding) are divided by ``temperature`` and renormalised; then
    :func:`top_k_top_p_filter` keeps the top-k tokens and the nucleus of that distribution,
    and one token per row is drawn from what is left (inverse CDF with a uniform u).

    Args:
        temperature: > 0; below 1 sharpens the distribution (→ 0: greedy), above 1 flattens it.
        top_k: keep the k most probable tokens (0: all).
        top_p: keep the nucleus of mass top_p (1: all).
        seed: an int, a ``numpy.random.Generator`` or None (fresh entropy). The uniforms are
            drawn on the host, B per step, so a seed reproduces the outputs on NumPy and CuPy.
        Others as :func:`greedy_decode`.

    Returns:
        Like :func:`greedy_decode`.
    """
    xp = backend.xp
    max_len, min_len = _lengths(max_len, min_len)
    no_repeat_ngram = non_negative_int("no_repeat_ngram", no_repeat_ngram)
    temperature = _positive_float("temperature", temperature)
    top_k = non_negative_int("top_k", top_k)
    top_p = _top_p(top_p)
    if not (seed is None or isinstance(seed, np.random.Generator)
            or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0)):
        raise TypeError(f"seed must be an int >= 0, a numpy.random.Generator or None; got "
                        f"{seed!r}")
    rng = np.random.default_rng(seed)
    B = src.shape[0]

    def pick(log_probs, t):
        logp = top_k_top_p_filter(log_softmax(log_probs / temperature), top_k, top_p)
        cdf = xp.cumsum(xp.exp(logp), axis=1)  # unnormalised: the kept mass sums to cdf[:, -1]
        u = backend.asarray(rng.random(B), dtype=cdf.dtype)
        y = (cdf < (u * cdf[:, -1])[:, None]).sum(axis=1)  # the first token with cdf >= u·mass
        return xp.minimum(y, cdf.shape[1] - 1)

    return _one_path(model, src, max_len, _trace_names(trace), pick, min_len, no_repeat_ngram)


# --- beam search ---------------------------------------------------------------------------------
def beam_search(model, src, beam_size=4, max_len=50, length_penalty=None, trace=(), *,
                coverage_penalty=0.0, min_len=0, no_repeat_ngram=0, n_best=None):
    """Beam search with GNMT's length and coverage penalties, vectorised over batch and beams.

    Each row keeps K = ``beam_size`` hypotheses, all N = B·K advanced by one ``decode_step``
    call per step. A hypothesis Y is ranked by its penalised score (module docstring)

        score(Y) = log P(Y|X) / ((5 + |Y|) / 6) ** length_penalty
                   + coverage_penalty · Σ_i log(min(Σ_t α_t,i, 1))

    with |Y| its tokens (EOS included) and α the attention weights of its steps (the running
    sum over the steps of that hypothesis, reordered with it; for the pointer-generator it
    equals its coverage vector plus the last step's α). At each step the K·V extensions of a
    row compete with its finished hypotheses: a hypothesis that emits EOS is finished, keeps its
    slot with its score frozen (it is extended only by PAD), and decoding stops once every
    hypothesis of every row has finished or after ``max_len`` steps, when the unfinished ones
    are scored as they are. With a beam as wide as the number of possible outputs this finds
    the argmax of the penalised score exactly (tests/test_beam_search.py enumerates them).

    Args:
        model, src, max_len, trace: as :func:`greedy_decode`.
        beam_size: K > 0 hypotheses per row.
        length_penalty: GNMT's alpha >= 0 (0: rank by log P(Y|X) alone), or None (the
            default) for lp(Y) = |Y|, the mean log-probability per token.
        coverage_penalty: beta >= 0; needs a model whose state has ``"alpha"`` (attention).
        min_len, no_repeat_ngram: as :func:`greedy_decode`.
        n_best: None returns the best hypothesis of each row; an int 1..K returns that many
            :class:`Hypothesis` per row, best first (fewer if the row has fewer outputs
            with a finite score).

    Returns:
        n_best None: like :func:`greedy_decode`. Else a list of B lists of
        :class:`Hypothesis`, and with ``trace`` ``(hyps, traces)`` where
        ``traces[name][b][j]`` belongs to hypothesis j of row b.
    """
    xp = backend.xp
    K = positive_int("beam_size", beam_size)
    max_len, min_len = _lengths(max_len, min_len)
    alpha = None if length_penalty is None else non_negative_float("length_penalty",
                                                                   length_penalty)
    beta = non_negative_float("coverage_penalty", coverage_penalty)
    no_repeat_ngram = non_negative_int("no_repeat_ngram", no_repeat_ngram)
    if n_best is not None:
        n_best = positive_int("n_best", n_best)
        if n_best > K:
            raise ValueError(f"n_best must be at most beam_size ({K}): a beam holds {K} "
                             f"hypotheses; got n_best {n_best}")
    trace = _trace_names(trace)
    B = src.shape[0]
    state = model.init_decoder(src)
    if beta and "alpha" not in state:
        raise ValueError(f"coverage_penalty={beta} needs attention weights, and "
                         f"{type(model).__name__} has no attention: use coverage_penalty=0, or "
                         "AttentionSeq2Seq or PointerGenerator")
    N = B * K
    expand = xp.repeat(xp.arange(B), K)
    state = {k: v[expand] for k, v in state.items()}
    y = xp.full((N,), BOS, dtype=src.dtype)
    dtype = next(iter(model.params.values())).dtype
    log_P = xp.zeros((B, K), dtype=dtype)  # log P(Y|X) of each hypothesis
    log_P[:, 1:] = -xp.inf  # all beams start equal: expand only the first
    score = xp.full((B, K), -xp.inf, dtype=dtype)  # the penalised score (frozen once finished)
    finished = xp.zeros((B, K), dtype=bool)
    tokens = xp.zeros((B, K, 0), dtype=src.dtype)
    if beta:
        attn_sum = xp.zeros(state["alpha"].shape, dtype=dtype)  # (N, S) Σ_t α_t of each
        src_mask = state["mask"] if "mask" in state else xp.ones(attn_sum.shape, dtype=bool)
    hist = {k: None for k in trace}
    rows = xp.arange(B)[:, None]
    for t in range(max_len):
        log_probs, state = model.decode_step(state, y)
        log_probs = _banned(log_probs, tokens.reshape(N, t), min_len, no_repeat_ngram)
        V = log_probs.shape[1]
        total = log_P[:, :, None] + log_probs.reshape(B, K, V)  # log P of each extension
        # every live hypothesis has t tokens, so each extension has t + 1: one lp for all
        cand = total / lp(t + 1, alpha)
        if beta:
            attn_new = attn_sum + state["alpha"]  # the same for every token a beam appends
            cand = cand + cp(attn_new, src_mask, beta).reshape(B, K, 1)
        cand = xp.where(finished[:, :, None], -xp.inf, cand)
        cand[:, :, PAD] = xp.where(finished, score, cand[:, :, PAD])  # a finished one stays
        flat = cand.reshape(B, K * V)
        if K == 1:  # the first maximum, as greedy decoding picks it (also among ties)
            top = flat.argmax(axis=1)[:, None]
        else:  # the K best, best first (ties in index order)
            top = xp.sort(xp.argpartition(-flat, K - 1, axis=1)[:, :K], axis=1)
            order = xp.argsort(-xp.take_along_axis(flat, top, 1), axis=1, kind="stable")
            top = xp.take_along_axis(top, order, 1)
        beam, tok = top // V, (top % V).astype(src.dtype)
        was_finished = finished[rows, beam]
        score = flat[rows, top]  # best first
        log_P = xp.where(was_finished, log_P[rows, beam], total.reshape(B, K * V)[rows, top])
        finished = was_finished | (tok == EOS)
        tok = xp.where(was_finished, PAD, tok)
        tokens = xp.concatenate([tokens[rows, beam], tok[:, :, None]], axis=2)
        src_rows = (rows * K + beam).reshape(-1)
        state = {k: v[src_rows] for k, v in state.items()}
        if beta:
            attn_sum = attn_new[src_rows]
        for k in trace:
            step = state[k].reshape((B, K) + state[k].shape[1:])[:, :, None]
            hist[k] = step if hist[k] is None else xp.concatenate([hist[k][rows, beam], step], 2)
        y = tok.reshape(-1)
        if bool(finished.all()):
            break
    if n_best is None:  # the beams are sorted: the best is beam 0
        traces = {k: v[:, 0] for k, v in hist.items()}
        return _finish(tokens[:, 0], traces, trace)
    return _n_best(tokens, score, log_P, hist, n_best, trace)


def _n_best(tokens, score, log_P, hist, n_best, trace):
    """Host conversion of the n best (finite-scored) hypotheses of each row."""
    tokens, score, log_P = (backend.to_numpy(a) for a in (tokens, score, log_P))
    hist = {k: backend.to_numpy(v) for k, v in hist.items()}
    out, traced = [], {k: [] for k in trace}
    for b in range(tokens.shape[0]):  # host-side: building Python lists of results
        keep = [j for j in range(n_best) if np.isfinite(score[b, j])] or [0]
        out.append([Hypothesis(strip_ids(tokens[b, j]), float(score[b, j]), float(log_P[b, j]))
                    for j in keep])
        for k in trace:
            traced[k].append([hist[k][b, j, :_steps(tokens[b, j])] for j in keep])
    return (out, traced) if trace else out
