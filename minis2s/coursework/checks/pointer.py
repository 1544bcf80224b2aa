"""Part ``pointer``: functional/pointer.py, the pointer-generator of See et al. (2017).

Coverage attention (the additive score plus w_c·cov, eq. 11), the coverage loss (eq. 12), the
final mixture over the extended vocabulary (eq. 9) and its stable NLL. Values are compared with
the row-by-row formulas of :mod:`oracle`. p_gen (eq. 8) holds no solution region (it is given),
so it has no check of its own; the mixture's checks take its logit.
"""

from __future__ import annotations

import numpy as np

from .. import oracle
from . import Check, close, dot, gradcheck, learns, model_learns, rng, student


def _cov_inputs(seed):
    r = rng(seed)
    B, S, H, A = 3, 4, 3, 5
    s, k = r.standard_normal((B, H)), r.standard_normal((B, S, A))
    mask = oracle.lengths_mask([4, 3, 2], S)
    coverage = np.where(mask, r.uniform(0, 1.5, (B, S)), 0.0)
    w = {"W2": r.uniform(-0.8, 0.8, (H, A)), "v": r.uniform(-0.8, 0.8, A),
         "w_c": r.uniform(-0.8, 0.8, A)}
    return r, s, k, coverage, mask, w


def _coverage_attention():
    ptr = student("functional.pointer")
    r, s, k, coverage, mask, w = _cov_inputs(90)

    def fwd():
        return ptr.coverage_attention_forward(s, k, coverage, mask, w["W2"], w["v"], w["w_c"])

    def value():
        e = oracle.coverage_scores(s, k, coverage, **w)
        close("coverage_attention_forward alpha", fwd()[0], oracle.masked_softmax(e, mask))
        return ""

    def grads():
        alpha, cache = fwd()
        dalpha = r.standard_normal(np.shape(alpha))
        ds, dk, dcov, g = ptr.coverage_attention_backward(dalpha, cache)
        analytic = {"s": ds, "k": dk, "coverage": dcov, **(g if isinstance(g, dict) else {})}
        return gradcheck("coverage_attention_backward", lambda: dot(fwd()[0], dalpha),
                         {"s": s, "k": k, "coverage": coverage, **w}, analytic)

    value()  # the forward must be right before its gradients count
    return grads()


def _coverage_loss():
    ptr = student("functional.pointer")
    r = rng(92)
    # alpha and coverage kept apart (|a − c| >= 0.05), where min is differentiable
    alpha = r.uniform(0.0, 1.0, (3, 2, 4))
    sign = np.where(r.random(alpha.shape) < 0.5, -1, 1)
    coverage = alpha + sign * r.uniform(0.05, 0.5, alpha.shape)
    weight = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # PAD targets weigh 0
    dcov = r.standard_normal((3, 2))

    def value():
        covloss = ptr.coverage_loss_forward(alpha, coverage, weight)[0]
        close("coverage_loss_forward covloss", covloss,
              oracle.coverage_loss(alpha, coverage) * weight)
        return ""

    def grads():
        _, cache = ptr.coverage_loss_forward(alpha, coverage, weight)
        da, dc = ptr.coverage_loss_backward(dcov, cache)
        return gradcheck("coverage_loss_backward",
                         lambda: dot(ptr.coverage_loss_forward(alpha, coverage, weight)[0], dcov),
                         {"alpha": alpha, "coverage": coverage}, {"alpha": da, "coverage": dc})

    value()  # the forward must be right before its gradients count
    return grads()


def _mixture_inputs(seed):
    """A padded batch over V = 5 with OOV source words (ids 5, 6) and repeated words."""
    r = rng(seed)
    V = 5
    src = np.array([[4, 5, 4, 6], [3, 5, 0, 0], [6, 0, 0, 0]])
    o, l = r.standard_normal((3, V)), r.standard_normal(3)
    alpha = oracle.masked_softmax(r.standard_normal((3, 4)), src != 0)
    return r, o, l, alpha, src, V


def _final_distribution():
    ptr = student("functional.pointer")
    r, o, l, alpha, src, V = _mixture_inputs(94)
    n_ext = 7
    dP = r.standard_normal((3, n_ext))

    def value():
        close("final_distribution_forward P", ptr.final_distribution_forward(o, l, alpha, src,
                                                                             n_ext)[0],
              oracle.final_distribution(o, l, alpha, src, n_ext))
        return ""

    def grads():
        _, cache = ptr.final_distribution_forward(o, l, alpha, src, n_ext)
        do, dl, da = ptr.final_distribution_backward(dP, cache)
        return gradcheck(
            "final_distribution_backward",
            lambda: dot(ptr.final_distribution_forward(o, l, alpha, src, n_ext)[0], dP),
            {"vocab_logits": o, "p_gen_logit": l, "alpha": alpha},
            {"vocab_logits": do, "p_gen_logit": dl, "alpha": da})

    value()  # the forward must be right before its gradients count
    return grads()


def _nll():
    ptr = student("functional.pointer")
    r, o, l, alpha, src, V = _mixture_inputs(96)
    y = np.array([4, 2, 6])  # in the vocabulary and the source; vocabulary only; OOV copy
    ones = np.ones(3)

    def value():
        close("pointer_nll_forward nll", ptr.pointer_nll_forward(o, l, alpha, src, y, ones)[0],
              -oracle.pointer_log_prob(o, l, alpha, src, y))
        l_sat = np.array([50.0, -50.0, 50.0])  # a saturated p_gen: still finite and exact
        close("pointer_nll_forward nll (p_gen logit ±50)",
              ptr.pointer_nll_forward(o, l_sat, alpha, src, y, ones)[0],
              -oracle.pointer_log_prob(o, l_sat, alpha, src, y))
        return ""

    def grads():
        w2 = np.array([1.0, 0.0, 1.0])  # a PAD target
        dnll = r.standard_normal(3)
        _, cache = ptr.pointer_nll_forward(o, l, alpha, src, y, w2)
        do, dl, da = ptr.pointer_nll_backward(dnll, cache)
        return gradcheck(
            "pointer_nll_backward",
            lambda: dot(ptr.pointer_nll_forward(o, l, alpha, src, y, w2)[0], dnll),
            {"vocab_logits": o, "p_gen_logit": l, "alpha": alpha},
            {"vocab_logits": do, "p_gen_logit": dl, "alpha": da})

    value()  # in-vocabulary, vocabulary-only and OOV targets, a saturated p_gen
    return grads()  # with a PAD target


def _learns():
    """Fit vocabulary logits, p_gen logits and attention scores to targets that need both the
    vocabulary and copying (OOV), through pointer_nll_forward/backward."""
    ptr = student("functional.pointer")
    r = rng(98)
    *_, src, V = _mixture_inputs(99)
    mask = src != 0
    y = np.array([5, 2, 6])
    p = {"o": r.standard_normal((3, V)) * 0.1, "l": np.zeros(3),
         "e": r.standard_normal((3, 4)) * 0.1}
    opt, losses = oracle.Adam(p, 0.1), []
    for _ in range(41):
        alpha = oracle.masked_softmax(p["e"], mask)
        nll, cache = ptr.pointer_nll_forward(p["o"], p["l"], alpha, src, y, np.ones(3))
        losses.append(float(np.mean(nll)))
        do, dl, da = ptr.pointer_nll_backward(np.full(3, 1 / 3), cache)
        opt.step({"o": do, "l": dl, "e": oracle.masked_softmax_backward(np.asarray(da), alpha)})
    return learns("the pointer mixture learning to generate and to copy", losses)


def _model_learns():
    minis2s = student("")
    return model_learns(lambda V: minis2s.PointerGenerator(
        V, embed_dim=12, hidden_dim=24, coverage=True, dtype="float64", seed=0))


CHECKS = [
    Check("coverage attention value and gradients", _coverage_attention),
    Check("coverage loss value and gradients", _coverage_loss),
    Check("final distribution value and gradients (OOV and repeated source ids)",
          _final_distribution),
    Check("pointer NLL value and gradients", _nll, 2),
    Check("pointer mixture learns", _learns),
    Check("PointerGenerator (coverage) learns to reverse on the reference tier (all of your ops)",
          _model_learns, impl="reference"),
]
