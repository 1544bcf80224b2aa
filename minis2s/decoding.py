"""Greedy decoding and beam search over the per-step decoder interface that every model offers:

    state = model.init_decoder(src)                 # dict of arrays, batch on axis 0
    log_probs, state = model.decode_step(state, y)  # y (B,) previous ids -> (B, V_out)

Both are vectorised over the batch (and the beams): one ``decode_step`` call per time step for
the whole batch, no Python loop over rows. ``trace`` names state entries (for example
``"alpha"``, ``"p_gen"``, ``"coverage"``) to record at every step, for plots.
"""

from __future__ import annotations

import numpy as np

from . import backend
from ._checks import positive_int
from .constants import BOS, EOS, PAD

__all__ = ["greedy_decode", "beam_search", "strip_ids"]


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


def _finish(tokens, traces, trace):
    """Host conversion: token rows cut at EOS, and the traced arrays cut to the same lengths."""
    tokens = backend.to_numpy(tokens)
    rows = [strip_ids(r) for r in tokens]
    if not trace:
        return rows
    lengths = []
    for r in tokens:
        eos = np.flatnonzero(r == EOS)
        lengths.append(int(eos[0]) + 1 if eos.size else len(r))  # include the EOS step
    traced = {
        k: [backend.to_numpy(v[b, : lengths[b]]) for b in range(len(rows))]
        for k, v in traces.items()
    }
    return rows, traced


def greedy_decode(model, src, max_len=50, trace=()):
    """Pick the most probable token at each step until every row has emitted EOS.

    Args:
        model: a minis2s model. src: (B, S) validated source ids on the active backend.
        max_len: the most tokens to generate per row (EOS included).
        trace: names of state entries to record per step.

    Returns:
        A list of B id lists (no BOS/EOS/PAD), or ``(rows, traces)`` when ``trace`` is given,
        where ``traces[name][b]`` is a NumPy array with one entry per generated token of row b
        (its EOS step included).
    """
    xp = backend.xp
    max_len = positive_int("max_len", max_len)
    state = model.init_decoder(src)
    B = src.shape[0]
    y = xp.full((B,), BOS, dtype=src.dtype)
    tokens = xp.full((B, max_len), PAD, dtype=src.dtype)
    finished = xp.zeros((B,), dtype=bool)
    steps = {k: [] for k in trace}
    for t in range(max_len):
        log_probs, state = model.decode_step(state, y)
        y = log_probs.argmax(axis=1).astype(src.dtype)
        y[finished] = PAD
        tokens[:, t] = y
        for k in trace:
            steps[k].append(state[k])
        finished |= y == EOS
        if bool(finished.all()):
            break
    traces = {k: xp.stack(v, axis=1) for k, v in steps.items()}
    return _finish(tokens, traces, trace)


def beam_search(model, src, beam_size=4, max_len=50, length_penalty=1.0, trace=()):
    """Beam search with length normalisation, vectorised over the batch.

    Each row keeps ``beam_size`` hypotheses. A hypothesis is ranked by its length-normalised
    log-probability ``Σ log p / len^length_penalty`` (len counts the tokens, EOS included). A
    hypothesis that emits EOS is finished: it stays in the beam with its score frozen and is
    extended only by PAD, so each row stops by itself; decoding ends when every beam of every row
    has finished or after ``max_len`` steps. The best hypothesis of each row is returned.

    Returns:
        Like :func:`greedy_decode`.
    """
    xp = backend.xp
    K = positive_int("beam_size", beam_size)
    max_len = positive_int("max_len", max_len)
    B = src.shape[0]
    state = model.init_decoder(src)
    expand = xp.repeat(xp.arange(B), K)
    state = {k: v[expand] for k, v in state.items()}
    y = xp.full((B * K,), BOS, dtype=src.dtype)
    dtype = next(iter(model.params.values())).dtype
    scores = xp.zeros((B, K), dtype=dtype)  # Σ log p of each hypothesis
    scores[:, 1:] = -xp.inf  # all beams start equal: expand only the first
    lengths = xp.zeros((B, K), dtype=dtype)
    finished = xp.zeros((B, K), dtype=bool)
    tokens = xp.zeros((B, K, 0), dtype=src.dtype)
    hist = {k: None for k in trace}
    rows = xp.arange(B)[:, None]
    for _ in range(max_len):
        log_probs, state = model.decode_step(state, y)
        V = log_probs.shape[1]
        total = scores[:, :, None] + log_probs.reshape(B, K, V)
        norm = total / ((lengths + 1) ** length_penalty)[:, :, None]
        frozen = scores / xp.maximum(lengths, 1) ** length_penalty
        norm = xp.where(finished[:, :, None], -xp.inf, norm)
        norm[:, :, PAD] = xp.where(finished, frozen, norm[:, :, PAD])
        flat = norm.reshape(B, K * V)
        top = xp.argpartition(-flat, K - 1, axis=1)[:, :K]
        top = xp.take_along_axis(top, xp.argsort(-xp.take_along_axis(flat, top, 1), axis=1), 1)
        beam, tok = top // V, (top % V).astype(src.dtype)
        was_finished = finished[rows, beam]
        scores = xp.where(was_finished, scores[rows, beam], total.reshape(B, K * V)[rows, top])
        lengths = lengths[rows, beam] + (~was_finished)
        finished = was_finished | (tok == EOS)
        tok = xp.where(was_finished, PAD, tok)
        tokens = xp.concatenate([tokens[rows, beam], tok[:, :, None]], axis=2)
        src_rows = (rows * K + beam).reshape(-1)
        state = {k: v[src_rows] for k, v in state.items()}
        for k in trace:
            step = state[k].reshape((B, K) + state[k].shape[1:])[:, :, None]
            hist[k] = step if hist[k] is None else xp.concatenate([hist[k][rows, beam], step], 2)
        y = tok.reshape(-1)
        if bool(finished.all()):
            break
    final = scores / xp.maximum(lengths, 1) ** length_penalty
    best = final.argmax(axis=1)
    b = xp.arange(B)
    traces = {k: v[b, best] for k, v in hist.items()}
    return _finish(tokens[b, best], traces, trace)
