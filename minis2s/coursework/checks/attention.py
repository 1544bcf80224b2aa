"""Part ``attention``: functional/attention.py, attention in four steps.

Keys from the encoder outputs, scores e (dot, general, additive, cosine), the masked softmax
alpha and the context c = Σ_s alpha_s hbar_s, through the part's entry points
``attention_forward`` and ``attention_backward`` and its pieces ``score_*``,
``masked_softmax_*`` and ``context_*``. Values are compared with :func:`oracle.attention`,
written one score at a time.
"""

from __future__ import annotations

import numpy as np

from .. import oracle
from . import Check, Fail, cases, close, dot, gradcheck, learns, model_learns, rng, student

B, T, S, H, A = 3, 2, 4, 3, 5
LENGTHS = [4, 2, 1]


def _scores():
    return tuple(getattr(student("functional.attention"), "SCORES", None) or oracle.SCORES)


def _inputs(seed, score):
    r = rng(seed)
    Hs = 4 if score in ("general", "additive") else H  # dot and cosine need Hs = H
    s, hbar = r.standard_normal((B, T, H)), r.standard_normal((B, S, Hs))
    mask = oracle.lengths_mask(LENGTHS, S)  # hbar stays nonzero on padding: it must not leak
    params = {k: r.uniform(-0.8, 0.8, shape)
              for k, shape in oracle.score_param_shapes(score, H, Hs, A).items()}
    if score == "cosine":
        params["scale"] = np.array([3.0])
    return r, s, hbar, mask, params


def _eps():
    return float(getattr(student("functional.attention"), "COSINE_EPS", oracle.COSINE_EPS))


def _every_score(one):
    """``one(k, score)`` as a case of the check for each score (k numbers them)."""
    return cases([(score, lambda k=k, score=score: one(k, score))
                  for k, score in enumerate(_scores())])


def _scores_check():
    """Steps 1–2a alone: each score's values and gradients, before the softmax and context."""
    att = student("functional.attention")

    def one(k, score):
        r, s, hbar, _, p = _inputs(10 + k, score)
        de = r.standard_normal((B, T, S))
        e, cache = att.score_forward(score, s, hbar, p)
        close("score_forward e", e, oracle.attention_scores(score, s, hbar, p, _eps()))
        ds, dhbar, dparams = att.score_backward(de, cache)
        analytic = {"s": ds, "hbar": dhbar, **(dparams if isinstance(dparams, dict) else {})}
        return gradcheck("score_backward",
                         lambda: dot(att.score_forward(score, s, hbar, p)[0], de),
                         {"s": s, "hbar": hbar, **p}, analytic)

    return _every_score(one)


def _value():
    att = student("functional.attention")

    def one(k, score):
        _, s, hbar, mask, p = _inputs(20 + k, score)
        c, alpha, _ = att.attention_forward(s, hbar, mask, score, p)
        ref_c, ref_alpha = oracle.attention(score, s, hbar, mask, p, _eps())
        close("attention_forward c", c, ref_c)
        close("attention_forward alpha", alpha, ref_alpha)
        pad = ~np.broadcast_to(mask[:, None, :], ref_alpha.shape)
        if np.any(np.asarray(alpha)[pad] != 0):
            raise Fail("attention_forward alpha is not exactly 0 on padded source positions")
        return ""

    return _every_score(one)


def _grad():
    att = student("functional.attention")

    def one(k, score):
        r, s, hbar, mask, p = _inputs(30 + k, score)
        dc, dalpha = r.standard_normal((B, T, hbar.shape[2])), r.standard_normal((B, T, S))

        def loss():
            c, alpha, _ = att.attention_forward(s, hbar, mask, score, p)
            return dot(c, dc) + dot(alpha, dalpha)

        _, _, cache = att.attention_forward(s, hbar, mask, score, p)
        ds, dhbar, dparams = att.attention_backward(dc, dalpha, cache)
        analytic = {"s": ds, "hbar": dhbar, **(dparams if isinstance(dparams, dict) else {})}
        return gradcheck("attention_backward", loss, {"s": s, "hbar": hbar, **p}, analytic)

    return _every_score(one)


def _softmax_and_context():
    att = student("functional.attention")
    r = rng(50)
    mask = oracle.lengths_mask(LENGTHS, S)
    e = r.standard_normal((B, T, S))
    dalpha = r.standard_normal((B, T, S))

    def softmax_value():
        big = e * 1e4  # extreme scores stay finite
        alpha = att.masked_softmax_forward(big, mask)[0]
        close("masked_softmax_forward alpha (scores ±1e4)", alpha,
              oracle.masked_softmax(big, mask[:, None, :]))
        return ""

    def softmax_grad():
        _, cache = att.masked_softmax_forward(e, mask)
        de = att.masked_softmax_backward(dalpha, cache)
        return gradcheck("masked_softmax_backward",
                         lambda: dot(att.masked_softmax_forward(e, mask)[0], dalpha), {"e": e},
                         {"e": de})

    def context_grad():
        alpha = oracle.masked_softmax(e, mask[:, None, :])
        hbar, dc = r.standard_normal((B, S, 5)), r.standard_normal((B, T, 5))
        c, cache = att.context_forward(alpha, hbar)
        close("context_forward c", c, alpha @ hbar)
        da, dhbar = att.context_backward(dc, cache)
        return gradcheck("context_backward", lambda: dot(att.context_forward(alpha, hbar)[0], dc),
                         {"alpha": alpha, "hbar": hbar}, {"alpha": da, "hbar": dhbar})

    return cases([("masked softmax value", softmax_value),
                  ("masked softmax gradient", softmax_grad),
                  ("context value and gradients", context_grad)])


def _learns():
    """Learn queries s and a general score's W so that each context picks out the encoder
    output at a target position."""
    att = student("functional.attention")
    r = rng(80)
    Bq, Sq, Hq = 4, 5, 4
    hbar = r.standard_normal((Bq, Sq, Hq))
    mask = oracle.lengths_mask([5, 4, 3, 2], Sq)
    pos = np.array([3, 1, 2, 0])
    target = hbar[np.arange(Bq), pos][:, None, :]  # (B, 1, H)
    p = {"s": r.standard_normal((Bq, 1, Hq)) * 0.1, "W": r.standard_normal((Hq, Hq)) * 0.1}
    opt, losses = oracle.Adam(p, 0.1), []
    for _ in range(61):
        c, _, cache = att.attention_forward(p["s"], hbar, mask, "general", {"W": p["W"]})
        diff = np.asarray(c) - target
        losses.append(0.5 * float((diff ** 2).sum()) / Bq)
        ds, _, dparams = att.attention_backward(diff / Bq, None, cache)
        opt.step({"s": ds, "W": dparams["W"]})
    return learns("attention (general score) learning to point at a position", losses)


def _model_learns():
    minis2s = student("")
    return model_learns(lambda V: minis2s.AttentionSeq2Seq(
        V, V, embed_dim=12, hidden_dim=24, attention="general", dtype="float64", seed=0))


CHECKS = [
    Check("score_forward values and score_backward gradients (every score)", _scores_check, 2),
    Check("attention_forward values (every score; alpha exactly 0 on padding)", _value, 2),
    Check("attention_backward gradients (every score)", _grad, 2),
    Check("masked softmax and context, value and gradients", _softmax_and_context),
    Check("attention learns", _learns),
    Check("AttentionSeq2Seq learns to reverse on the reference tier (all of your ops)",
          _model_learns, impl="reference"),
]
