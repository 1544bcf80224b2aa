"""Part ``gru``: functional/gru.py, the reference tier's GRU.

``gru_cell_forward/backward`` (one step), ``gru_forward/backward`` (the masked loop over the
cell: padding, the reverse direction, layers) and ``gru_stack_step_forward/backward`` (one
step through a stack, for decoders). Values are compared with :func:`oracle.gru_rowwise`,
which runs each padded row alone.
"""

from __future__ import annotations

import numpy as np

from .. import oracle
from . import Check, cases, close, dot, gradcheck, learns, model_learns, rng, student

CELL_NAMES = ("x", "h_prev", "W_ih", "W_hh", "b_ih", "b_hh")


def _cell_inputs(seed):
    r = rng(seed)
    x, h = r.standard_normal((3, 4)), r.standard_normal((3, 5))
    w = [r.uniform(-0.6, 0.6, s) for s in ((15, 4), (15, 5), (15,), (15,))]
    return r, x, h, w


def _cell_value():
    gru = student("functional.gru")
    _, x, h, w = _cell_inputs(12)
    close("gru_cell_forward h", gru.gru_cell_forward(x, h, *w)[0], oracle.gru_cell(x, h, *w))
    return "h = (1 − z) n + z h_prev"


def _cell_grad():
    gru = student("functional.gru")
    r, x, h, w = _cell_inputs(13)
    dh = r.standard_normal((3, 5))
    _, cache = gru.gru_cell_forward(x, h, *w)
    got = gru.gru_cell_backward(dh, cache)
    return gradcheck("gru_cell_backward", lambda: dot(gru.gru_cell_forward(x, h, *w)[0], dh),
                     dict(zip(CELL_NAMES, [x, h, *w])), dict(zip(CELL_NAMES, got)))


def _seq_inputs(seed, num_layers, bidirectional, padded):
    r = rng(seed)
    B, T, D, H = 3, 4, 3, 3
    dirs = 2 if bidirectional else 1
    lengths = np.array([4, 2, 1]) if padded else np.full(B, T)
    x = r.standard_normal((B, T, D))
    x[~oracle.lengths_mask(lengths, T)] = 7.0  # garbage on padded steps must not leak
    h0 = r.standard_normal((num_layers * dirs, B, H))
    p = oracle.gru_params(r, D, H, num_layers, dirs)
    mask = oracle.lengths_mask(lengths, T) if padded else None
    return r, x, h0, mask, lengths, p


CONFIGS = [("1 layer, padded", 1, False, True), ("2 layers, bidirectional, padded", 2, True, True)]


def _seq_value():
    gru = student("functional.gru")

    def one(num_layers, bidirectional):
        _, x, h0, mask, lengths, p = _seq_inputs(14, num_layers, bidirectional, True)
        out, h_n, _ = gru.gru_forward(x, h0, mask, p, num_layers, bidirectional)
        ref_out, ref_h = oracle.gru_rowwise(x, h0, lengths, p, num_layers, bidirectional)
        close("gru_forward out", out, ref_out)
        close("gru_forward h_n", h_n, ref_h)
        return "each row equals the row run alone"

    return cases([(label, lambda L=L, bi=bi: one(L, bi)) for label, L, bi, _ in CONFIGS])


def _seq_grad():
    gru = student("functional.gru")

    def one(num_layers, bidirectional, padded):
        r, x, h0, mask, _, p = _seq_inputs(15 + num_layers, num_layers, bidirectional, padded)
        dirs = 2 if bidirectional else 1
        dout = r.standard_normal((3, 4, 3 * dirs))
        dh_n = r.standard_normal(h0.shape)

        def loss():
            out, h_n, _ = gru.gru_forward(x, h0, mask, p, num_layers, bidirectional)
            return dot(out, dout) + dot(h_n, dh_n)

        _, _, cache = gru.gru_forward(x, h0, mask, p, num_layers, bidirectional)
        dx, dh0, grads = gru.gru_backward(dout, dh_n, cache)
        analytic = {"x": dx, "h0": dh0, **(grads if isinstance(grads, dict) else {})}
        return gradcheck("gru_backward", loss, {"x": x, "h0": h0, **p}, analytic)

    return cases([("1 layer, no padding", lambda: one(1, False, False)),
                  ("2 layers, bidirectional, padded", lambda: one(2, True, True))])


def _stack_step():
    gru = student("functional.gru")
    r = rng(17)
    B, D, H, L = 3, 4, 3, 2
    x, h = r.standard_normal((B, D)), r.standard_normal((L, B, H))
    p = oracle.gru_params(r, D, H, L, 1)
    dout, dh = r.standard_normal((B, H)), r.standard_normal((L, B, H))

    def value():
        out, h_new, _ = gru.gru_stack_step_forward(x, h, p, L)
        ref_out, ref_h = oracle.gru_stack_step(x, h, p, L)
        close("gru_stack_step_forward h_new", h_new, ref_h)
        close("gru_stack_step_forward out_t", out, ref_out)
        return "equals one step of each layer's cell"

    def grads():
        def loss():
            o, hn, _ = gru.gru_stack_step_forward(x, h, p, L)
            return dot(o, dout) + dot(hn, dh)

        _, _, cache = gru.gru_stack_step_forward(x, h, p, L)
        dx, dh_prev, g = gru.gru_stack_step_backward(dout, dh, cache)
        analytic = {"x_t": dx, "h": dh_prev, **(g if isinstance(g, dict) else {})}
        return gradcheck("gru_stack_step_backward", loss, {"x_t": x, "h": h, **p}, analytic)

    value()  # the forward must be right before its gradients count
    return grads()


def _learns():
    """A tiny encoder-decoder of the GRU ops alone (one-hot inputs, a NumPy read-out written
    here) reversing padded sequences: the loss must fall."""
    gru = student("functional.gru")
    r = rng(18)
    V, H, B = 7, 10, 4
    src = np.array([[3, 4, 5], [5, 6, 0], [4, 0, 0], [6, 3, 0]])
    lengths = (src != 0).sum(1)
    T = 5  # BOS, up to 3 tokens, EOS
    tgt = np.zeros((B, T), dtype=np.int64)
    for b in range(B):
        seq = [1, *src[b, :lengths[b]][::-1], 2]
        tgt[b, :len(seq)] = seq
    eye = np.eye(V)
    x, dec_in = eye[src], eye[tgt[:, :-1]]
    x[src == 0] = 0
    y, m = tgt[:, 1:], (tgt[:, 1:] != 0)
    enc, dec = oracle.gru_params(r, V, H), oracle.gru_params(r, V, H)
    params = {**{f"enc.{k}": v for k, v in enc.items()}, **{f"dec.{k}": v for k, v in dec.items()},
              "W_out": r.uniform(-0.3, 0.3, (H, V)), "b_out": np.zeros(V)}
    opt, losses = oracle.Adam(params, 0.05), []
    for _ in range(61):
        _, h_n, ecache = gru.gru_forward(x, None, src != 0, enc, 1, False)
        h, outs, caches = np.asarray(h_n), [], []
        for t in range(T - 1):
            o, h, c = gru.gru_stack_step_forward(dec_in[:, t], h, dec, 1)
            outs.append(np.asarray(o))
            caches.append(c)
        O = np.stack(outs, axis=1)  # (B, T-1, H)
        logits = oracle.linear(O, params["W_out"], params["b_out"])
        losses.append(oracle.cross_entropy(logits, y, m))
        dlogits = oracle.cross_entropy_grad(logits, y, m)
        grads = {"W_out": np.einsum("bth,btv->hv", O, dlogits), "b_out": dlogits.sum((0, 1))}
        dO = dlogits @ params["W_out"].T
        dh = np.zeros_like(h)
        dgrads = {k: np.zeros_like(v) for k, v in dec.items()}
        for t in range(T - 2, -1, -1):
            _, dh, g = gru.gru_stack_step_backward(dO[:, t], dh, caches[t])
            for k in dgrads:
                dgrads[k] += g[k]
        _, _, egrads = gru.gru_backward(None, dh, ecache)
        grads.update({f"enc.{k}": egrads[k] for k in enc})
        grads.update({f"dec.{k}": dgrads[k] for k in dec})
        opt.step(grads)
    return learns("a tiny GRU encoder-decoder reversing padded sequences", losses)


def _model_learns():
    minis2s = student("")
    return model_learns(lambda V: minis2s.Seq2Seq(V, V, embed_dim=12, hidden_dim=24,
                                                  dtype="float64", seed=0))


CHECKS = [
    Check("gru_cell_forward value", _cell_value),
    Check("gru_cell_backward gradients", _cell_grad, 2),
    Check("gru_forward value (padded; 1 layer, and 2 layers bidirectional)", _seq_value, 2),
    Check("gru_backward gradients (unpadded 1 layer; padded 2 layers bidirectional)", _seq_grad,
          2),
    Check("gru_stack_step value and gradients", _stack_step),
    Check("GRU encoder-decoder learns", _learns),
    Check("Seq2Seq learns to reverse on the reference tier (all of your ops)", _model_learns,
          impl="reference"),
]
