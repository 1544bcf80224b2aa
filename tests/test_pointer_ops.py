"""Tests of minis2s.functional.pointer: coverage attention and loss, p_gen, the final mixture.

Gradient checks run in float64 on padded batches (rows with different numbers of real source
positions), with OOV ids (>= V) in src_ext and in the targets, repeated source words and nonzero
coverage.
"""

import numpy as np
import pytest

from minis2s import PAD, backend
from minis2s.functional import activations as F_act
from minis2s.functional import pointer as ptr
from minis2s.gradcheck import check_function, numerical_gradient, rel_error

TOL = 1e-6
# Overflow, 0/0 and log(0) raise; underflow (exp(-1e4) = 0) is expected and allowed.
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise"}

V, N_OOV = 7, 3
V_EXT = V + N_OOV
# Four rows of lengths 6, 4, 2 and 5. Ids >= V = 7 are source OOVs (7 = V + 0, 8 = V + 1, ...);
# row 0 repeats word 4, row 1 word 5, row 3 words 6 and 7.
SRC_EXT = np.array(
    [
        [4, 8, 5, 4, 7, 9],
        [5, 7, 5, 6, PAD, PAD],
        [7, 4, PAD, PAD, PAD, PAD],
        [6, 7, 8, 6, 7, PAD],
    ]
)
MASK = SRC_EXT != PAD
B, S = SRC_EXT.shape
# Targets over T = 3 steps: in-vocab words in the source (4, 5, 6), in the vocab but absent from
# the source (3, 2), OOVs present in the source (7, 8, 9) and a PAD target (weight 0).
TARGET = np.array([[4, 9, 3], [7, 5, 2], [7, 6, 4], [8, 6, PAD]])
WEIGHT = (TARGET != PAD).astype(np.float64)


def arr(a, dtype=np.float64):
    return backend.asarray(np.asarray(a, dtype=dtype))


def attention(rng, shape=(B, S), mask=MASK):
    """Random masked-softmax weights: 0 at padded positions, rows summing to 1."""
    e = rng.standard_normal(shape)
    m = np.broadcast_to(mask if len(shape) == 2 else mask[:, None, :], shape)
    a = np.where(m, np.exp(e), 0.0)
    return a / a.sum(-1, keepdims=True)


def as_dict(names):
    """Wrap a backward that returns a tuple (optionally ending in a grads dict) as name -> grad."""

    def wrap(backward):
        def run(dout, cache):
            out = backward(dout, cache)
            grads = dict(out[-1]) if isinstance(out[-1], dict) else {}
            plain = out[:-1] if isinstance(out[-1], dict) else out
            grads.update(zip(names, plain))
            return grads

        return run

    return wrap


def assert_checked(report):
    assert report.passed, "\n" + str(report)
    assert report.max_error < TOL


# -------------------------------------------------------------------------------------------
# Stable helpers
# -------------------------------------------------------------------------------------------


def test_sigmoid_and_log_sigmoid_are_stable_and_exact():
    l = arr([-1e4, -800.0, -50.0, -3.0, 0.0, 2.5, 50.0, 800.0, 1e4])
    with np.errstate(**STRICT):
        p, lp, lq = ptr.sigmoid(l), ptr.log_sigmoid(l), ptr.log_sigmoid(-l)
    p, lp, lq, ln = (backend.to_numpy(a) for a in (p, lp, lq, backend.to_numpy(l)))
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(lq))
    assert p[0] == 0.0 and p[-1] == 1.0 and p[4] == 0.5
    mid = np.abs(ln) <= 50
    np.testing.assert_allclose(p[mid], 1 / (1 + np.exp(-ln[mid])), rtol=1e-14)
    np.testing.assert_allclose(lp[mid], -np.log1p(np.exp(-ln[mid])), rtol=1e-12)
    # log σ(l) → l for l → −∞, and log σ(−l) = log σ(l) − l.
    np.testing.assert_allclose(lp[:2], ln[:2])
    np.testing.assert_allclose(lq, lp - ln, rtol=1e-12, atol=1e-12)
    assert abs(lp[2] - (-50.0)) < 1e-20 and 0 > lp[-3] > -1e-20


def test_masked_softmax_zero_weight_at_masked_positions_and_empty_rows_rejected():
    """The one masked softmax (minis2s.functional.activations), with attention's rule: masked
    positions get exactly 0, and a row without real positions (an empty source) is an error
    naming the mask and the rows, not zeros or NaN."""
    e = arr(np.random.default_rng(1).standard_normal((B, S)) * 30)
    with np.errstate(**STRICT):
        a, _ = F_act.masked_softmax_forward(e, backend.asarray(MASK))
    a = backend.to_numpy(a)
    assert np.all(a[~MASK] == 0.0)
    np.testing.assert_allclose(a.sum(-1), 1.0)
    mask = MASK.copy()
    mask[2] = False
    with pytest.raises(ValueError, match=r"mask.*rows \[2\]"):
        F_act.masked_softmax_forward(e, backend.asarray(mask))
    ca = coverage_attention_inputs(np.random.default_rng(2))
    with pytest.raises(ValueError, match=r"mask.*rows \[2\]"):
        ptr.coverage_attention_forward(mask=backend.asarray(mask), **ca)
    assert ptr.sigmoid is F_act.sigmoid and ptr.log_sigmoid is F_act.log_sigmoid  # one each


def test_copy_distribution_adds_repeated_words_and_fills_oov_slots(rng):
    alpha = attention(rng)
    P_copy = backend.to_numpy(ptr.copy_distribution(arr(alpha), backend.asarray(SRC_EXT), V_EXT))
    ref = np.zeros((B, V_EXT))
    for b in range(B):
        for i in range(S):
            ref[b, SRC_EXT[b, i]] += alpha[b, i]
    np.testing.assert_allclose(P_copy, ref, rtol=1e-14)
    assert P_copy[0, 4] == pytest.approx(alpha[0, 0] + alpha[0, 3])  # a repeated word
    assert P_copy[0, 9] == pytest.approx(alpha[0, 5])  # an OOV slot
    np.testing.assert_allclose(P_copy.sum(-1), 1.0)


# -------------------------------------------------------------------------------------------
# 1. Coverage attention
# -------------------------------------------------------------------------------------------

H, A = 5, 4


def coverage_attention_inputs(rng):
    """s (B, H), the keys k = hbar W1 + b (B, S, A), the coverage and W2, v, w_c."""
    return {
        "k": arr(rng.standard_normal((B, S, A))),
        "s": arr(rng.standard_normal((B, H))),
        "coverage": arr(attention(rng) + attention(rng)),  # cov^2 = a^0 + a^1
        "W2": arr(rng.standard_normal((H, A)) * 0.5),
        "v": arr(rng.standard_normal(A)),
        "w_c": arr(rng.standard_normal(A)),
    }


def coverage_attention(mask=MASK):
    def forward(**kw):
        return ptr.coverage_attention_forward(mask=backend.asarray(mask), **kw)

    return forward


def coverage_attention_backward(dalpha, cache):
    ds, dk, dcoverage, grads = ptr.coverage_attention_backward(dalpha, cache)
    return {"s": ds, "k": dk, "coverage": dcoverage, **grads}


def test_coverage_attention_gradcheck(rng):
    inputs = coverage_attention_inputs(rng)
    report = check_function(coverage_attention(), coverage_attention_backward, inputs)
    assert_checked(report)
    assert len(report.rows) == 6


def test_coverage_attention_matches_equation_11(rng):
    p = coverage_attention_inputs(rng)
    alpha, cache = ptr.coverage_attention_forward(mask=backend.asarray(MASK), **p)
    n = {k: backend.to_numpy(v) for k, v in p.items()}
    ref_e = np.tanh(
        n["k"] + (n["s"] @ n["W2"])[:, None] + n["coverage"][..., None] * n["w_c"]
    ) @ n["v"]
    np.testing.assert_allclose(backend.to_numpy(cache.e), ref_e, rtol=1e-12)
    ref_a = np.where(MASK, np.exp(ref_e), 0)
    np.testing.assert_allclose(backend.to_numpy(alpha), ref_a / ref_a.sum(-1, keepdims=True))


def test_coverage_attention_is_the_additive_score_on_shifted_keys(rng):
    """Eq. 11 is attention's additive score with W1 = I on the keys k + w_c cov: the same
    function, not a second copy of it."""
    from minis2s.functional import attention as F_att

    p = coverage_attention_inputs(rng)
    alpha, _ = ptr.coverage_attention_forward(mask=backend.asarray(MASK), **p)
    k_cov = p["k"] + p["coverage"][..., None] * p["w_c"]
    eye = arr(np.eye(A))
    c, alpha_att, _ = F_att.attention_forward(p["s"][:, None], k_cov, backend.asarray(MASK),
                                              "additive", {"W1": eye, "W2": p["W2"], "v": p["v"]})
    np.testing.assert_allclose(backend.to_numpy(alpha), backend.to_numpy(alpha_att)[:, 0],
                               rtol=1e-13)


def test_coverage_attention_masked_positions_get_zero_weight_and_gradient(rng):
    p = coverage_attention_inputs(rng)
    p["k"][~MASK] = 1e3  # huge padded keys must not leak in
    alpha, cache = ptr.coverage_attention_forward(mask=backend.asarray(MASK), **p)
    alpha = backend.to_numpy(alpha)
    assert np.all(alpha[~MASK] == 0.0)
    np.testing.assert_allclose(alpha.sum(-1), 1.0)
    dalpha = arr(rng.standard_normal((B, S)))  # nonzero upstream at masked positions too
    _ds, d_keys, dcov, _grads = ptr.coverage_attention_backward(dalpha, cache)
    assert np.all(backend.to_numpy(d_keys)[~MASK] == 0.0)
    assert np.all(backend.to_numpy(dcov)[~MASK] == 0.0)
    assert np.any(backend.to_numpy(d_keys)[MASK] != 0.0)


def test_coverage_flows_back_through_time(rng):
    """Three steps with coverage carried c^{t+1} = c^t + a^t and the coverage loss: BPTT."""
    T = 3
    p = coverage_attention_inputs(rng)
    del p["coverage"], p["s"]
    s_seq = arr(rng.standard_normal((T, B, H)))
    R = arr(rng.standard_normal((T, B, S)))  # a linear read-out of each step's alpha
    weight = arr([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])  # per-step target masks
    mask = backend.asarray(MASK)

    def loss():
        c = backend.xp.zeros((B, S))
        total, caches = 0.0, []
        for t in range(T):
            alpha, ac = ptr.coverage_attention_forward(s=s_seq[t], coverage=c, mask=mask, **p)
            cov, lc = ptr.coverage_loss_forward(alpha, c, weight[t])
            total += float((alpha * R[t]).sum() + cov.sum())
            caches.append((ac, lc))
            c = c + alpha
        return total, caches

    _, caches = loss()
    grads = {k: backend.xp.zeros_like(v) for k, v in p.items()}
    ds_seq = backend.xp.zeros_like(s_seq)
    dc_next = backend.xp.zeros((B, S))  # d loss / d c^{t+1}
    for t in reversed(range(T)):
        ac, lc = caches[t]
        da_cov, dc_cov = ptr.coverage_loss_backward(backend.xp.ones(B), lc)
        dalpha = R[t] + da_cov + dc_next  # c^{t+1} = c^t + a^t
        ds, d_keys, dc_att, g = ptr.coverage_attention_backward(dalpha, ac)
        grads["k"] += d_keys
        for k in g:
            grads[k] += g[k]
        ds_seq[t] = ds
        dc_next = dc_next + dc_att + dc_cov
    for name in ["k", "W2", "w_c", "v"]:
        num = numerical_gradient(lambda _: loss()[0], p[name])
        assert rel_error(grads[name], num) < TOL, name
    num = numerical_gradient(lambda _: loss()[0], s_seq)
    assert rel_error(ds_seq, num) < TOL
    assert np.abs(backend.to_numpy(grads["w_c"])).max() > 1e-3  # coverage really matters


# -------------------------------------------------------------------------------------------
# 2. Coverage loss
# -------------------------------------------------------------------------------------------


def away_from_ties(rng, shape):
    alpha = attention(rng, shape)
    coverage = attention(rng, shape) * 2
    close = np.abs(alpha - coverage) < 0.02
    coverage[close] += 0.05
    # In a model, padded positions have a = c = 0: a tie, where min has a kink that finite
    # differences cannot check (the attention backward zeroes those gradients anyway). Here the
    # padded coverage is moved off the tie.
    real = np.broadcast_to(MASK if len(shape) == 2 else MASK[:, None, :], shape)
    coverage[~real] = 0.3
    return alpha, coverage


@pytest.mark.parametrize("shape", [(B, S), (B, 3, S)], ids=["step", "all_steps"])
def test_coverage_loss_gradcheck(rng, shape):
    alpha, coverage = away_from_ties(rng, shape)
    weight = WEIGHT[:, 0] if len(shape) == 2 else WEIGHT
    weight = weight.copy()
    weight[1] = 0  # a PAD target: contributes nothing
    inputs = {"alpha": arr(alpha), "coverage": arr(coverage)}

    def forward(**kw):
        return ptr.coverage_loss_forward(weight=arr(weight), **kw)

    report = check_function(forward, as_dict(["alpha", "coverage"])(ptr.coverage_loss_backward),
                            inputs, wrt=["alpha", "coverage"])
    assert_checked(report)
    cov, _ = forward(**inputs)
    np.testing.assert_allclose(backend.to_numpy(cov),
                               np.minimum(alpha, coverage).sum(-1) * weight, rtol=1e-14)
    assert np.all(backend.to_numpy(cov)[1] == 0)


def test_coverage_loss_subgradient_rule_at_ties():
    alpha = arr([[0.2, 0.5, 0.3, 0.0]])
    coverage = arr([[0.4, 0.5, 0.1, 0.0]])
    cov, cache = ptr.coverage_loss_forward(alpha, coverage, arr([2.0]))
    assert backend.to_numpy(cov)[0] == pytest.approx(2 * (0.2 + 0.5 + 0.1 + 0.0))
    dalpha, dcoverage = ptr.coverage_loss_backward(arr([1.5]), cache)
    # a < c: to alpha; a == c (0.5 and 0 = 0): to coverage; a > c: to coverage.
    np.testing.assert_array_equal(backend.to_numpy(dalpha), [[3.0, 0, 0, 0]])
    np.testing.assert_array_equal(backend.to_numpy(dcoverage), [[0, 3.0, 3.0, 3.0]])


def test_coverage_loss_is_zero_at_the_first_step(rng):
    alpha = arr(attention(rng))
    cov, _ = ptr.coverage_loss_forward(alpha, backend.xp.zeros_like(alpha), None)
    assert np.all(backend.to_numpy(cov) == 0)


# -------------------------------------------------------------------------------------------
# 3. p_gen
# -------------------------------------------------------------------------------------------

HS, D = 8, 3


def p_gen_inputs(rng, lead=(B,), b_ptr=0.1):
    return {
        "c": arr(rng.standard_normal(lead + (HS,))),
        "s": arr(rng.standard_normal(lead + (H,))),
        "x": arr(rng.standard_normal(lead + (D,))),
        "w_h": arr(rng.standard_normal(HS) * 0.5),
        "w_s": arr(rng.standard_normal(H) * 0.5),
        "w_x": arr(rng.standard_normal(D) * 0.5),
        "b_ptr": arr([b_ptr]),
    }


PGEN_NAMES = ["c", "s", "x"]


@pytest.mark.parametrize("lead", [(B,), (B, 3)], ids=["step", "all_steps"])
@pytest.mark.parametrize("path", ["prob", "logit"])
def test_p_gen_gradcheck(rng, lead, path):
    fwd, bwd = {
        "prob": (ptr.p_gen_forward, ptr.p_gen_backward),
        "logit": (ptr.p_gen_logit_forward, ptr.p_gen_logit_backward),
    }[path]
    inputs = p_gen_inputs(rng, lead)
    report = check_function(fwd, as_dict(PGEN_NAMES)(bwd), inputs)
    assert_checked(report)
    assert len(report.rows) == 7
    p, cache = ptr.p_gen_forward(**inputs)
    n = {k: backend.to_numpy(v) for k, v in inputs.items()}
    logit = n["c"] @ n["w_h"] + n["s"] @ n["w_s"] + n["x"] @ n["w_x"] + n["b_ptr"][0]
    np.testing.assert_allclose(backend.to_numpy(cache.p_gen_logit), logit, rtol=1e-13)
    np.testing.assert_allclose(backend.to_numpy(p), 1 / (1 + np.exp(-logit)), rtol=1e-13)


def test_p_gen_saturated_low_gradchecks(rng):
    inputs = p_gen_inputs(rng, b_ptr=-50.0)
    p, _ = ptr.p_gen_forward(**inputs)
    assert np.all(backend.to_numpy(p) < 1e-18) and np.all(backend.to_numpy(p) > 0)
    assert_checked(check_function(ptr.p_gen_forward, as_dict(PGEN_NAMES)(ptr.p_gen_backward),
                                  inputs))


def test_p_gen_saturated_high_keeps_exact_gradient(rng):
    """At logit ≈ +50 p_gen rounds to 1; σ'(l) = e^{−l}/(1+e^{−l})² ≈ 2e-22 must survive."""
    inputs = p_gen_inputs(rng, b_ptr=50.0)
    dp = arr(rng.standard_normal(B))
    with np.errstate(**STRICT):
        p, cache = ptr.p_gen_forward(**inputs)
        _, _, _, grads = ptr.p_gen_backward(dp, cache)
    assert np.all(backend.to_numpy(p) == 1.0)
    l = backend.to_numpy(cache.p_gen_logit)
    deriv = np.exp(-l) / (1 + np.exp(-l)) ** 2
    db = float(backend.to_numpy(grads["b_ptr"])[0])
    assert db != 0.0
    assert db == pytest.approx(float((backend.to_numpy(dp) * deriv).sum()), rel=1e-12)


@pytest.mark.parametrize("b_ptr", [1e4, -1e4])
def test_p_gen_extreme_logits_are_finite(rng, b_ptr):
    inputs = p_gen_inputs(rng, b_ptr=b_ptr)
    with np.errstate(**STRICT):
        p, cache = ptr.p_gen_forward(**inputs)
        out = ptr.p_gen_backward(arr(np.ones(B)), cache)
    assert np.all(backend.to_numpy(p) == (1.0 if b_ptr > 0 else 0.0))
    for g in list(out[:3]) + list(out[3].values()):
        assert np.all(np.isfinite(backend.to_numpy(g)))


# -------------------------------------------------------------------------------------------
# 4. The final distribution and its loss
# -------------------------------------------------------------------------------------------


def mixture_inputs(rng, T=None, p_gen_logit=None, scale=1.0):
    lead = (B,) if T is None else (B, T)
    shape = lead + (S,)
    l = rng.standard_normal(lead) if p_gen_logit is None else p_gen_logit
    return {
        "vocab_logits": arr(rng.standard_normal(lead + (V,)) * scale),
        "p_gen_logit": arr(l),
        "alpha": arr(attention(rng, shape)),
    }


def reference_P(vocab_logits, p_gen_logit, alpha, src_ext=SRC_EXT):
    """Eq. 9 with explicit loops, in float64 NumPy."""
    o, l, a = (backend.to_numpy(x) for x in (vocab_logits, p_gen_logit, alpha))
    lead = o.shape[:-1]
    P = np.zeros(lead + (V_EXT,))
    for idx in np.ndindex(*lead):
        pv = np.exp(o[idx] - o[idx].max())
        pv /= pv.sum()
        p = 1 / (1 + np.exp(-l[idx]))
        P[idx][:V] = p * pv
        for i in range(S):
            P[idx][src_ext[idx[0], i]] += (1 - p) * a[idx][i]
    return P


@pytest.mark.parametrize("T", [None, 3], ids=["step", "all_steps"])
def test_final_distribution_matches_eq_9_and_sums_to_one(rng, T):
    inputs = mixture_inputs(rng, T)
    P, _ = ptr.final_distribution_forward(src_ext=backend.asarray(SRC_EXT), n_ext=V_EXT, **inputs)
    P = backend.to_numpy(P)
    np.testing.assert_allclose(P, reference_P(**inputs), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(P.sum(-1), 1.0, rtol=1e-13)
    assert np.all(P >= 0)


@pytest.mark.parametrize("T", [None, 3], ids=["step", "all_steps"])
def test_final_distribution_gradcheck(rng, T):
    inputs = mixture_inputs(rng, T)

    def forward(**kw):
        return ptr.final_distribution_forward(src_ext=backend.asarray(SRC_EXT), n_ext=V_EXT, **kw)

    names = ["vocab_logits", "p_gen_logit", "alpha"]
    report = check_function(forward, as_dict(names)(ptr.final_distribution_backward), inputs)
    assert_checked(report)
    assert len(report.rows) == 3


def nll_forward(target=TARGET, weight=WEIGHT, src_ext=SRC_EXT):
    def forward(**kw):
        lead = kw["vocab_logits"].shape[:-1]
        t = target if len(lead) == 2 else target[:, 0]
        w = weight if len(lead) == 2 else weight[:, 0]
        return ptr.pointer_nll_forward(src_ext=backend.asarray(src_ext), target=backend.asarray(t),
                                       weight=arr(w), **kw)

    return forward


NLL_NAMES = ["vocab_logits", "p_gen_logit", "alpha"]


@pytest.mark.parametrize("T", [None, 3], ids=["step", "all_steps"])
def test_pointer_nll_gradcheck(rng, T):
    inputs = mixture_inputs(rng, T)
    report = check_function(nll_forward(), as_dict(NLL_NAMES)(ptr.pointer_nll_backward), inputs)
    assert_checked(report)


def test_pointer_nll_equals_minus_log_of_final_distribution(rng):
    inputs = mixture_inputs(rng, 3)
    nll, _ = nll_forward()(**inputs)
    P, _ = ptr.final_distribution_forward(src_ext=backend.asarray(SRC_EXT), n_ext=V_EXT, **inputs)
    picked = np.take_along_axis(backend.to_numpy(P), TARGET[..., None], -1)[..., 0]
    np.testing.assert_allclose(backend.to_numpy(nll), -np.log(picked) * WEIGHT, rtol=1e-12)
    assert np.all(backend.to_numpy(nll)[WEIGHT == 0] == 0)
    assert np.all(backend.to_numpy(nll)[WEIGHT == 1] > 0)


def test_pointer_nll_stepwise_equals_all_steps(rng):
    inputs = mixture_inputs(rng, 3)
    whole, _ = nll_forward()(**inputs)
    for t in range(3):
        step = {k: v[:, t] for k, v in inputs.items()}
        part, _ = ptr.pointer_nll_forward(src_ext=backend.asarray(SRC_EXT),
                                          target=backend.asarray(TARGET[:, t]),
                                          weight=arr(WEIGHT[:, t]), **step)
        np.testing.assert_allclose(backend.to_numpy(part), backend.to_numpy(whole)[:, t])


def saturated_logits():
    """p_gen logit +50 where the target is an OOV (only copying reaches it), −50 where the
    target is absent from the source (only generating does), ±50 elsewhere (both branches)."""
    in_src = np.array([[TARGET[b, t] in SRC_EXT[b] for t in range(3)] for b in range(B)])
    l = np.where(TARGET >= V, 50.0, np.where(~in_src, -50.0, 50.0))
    l[0, 0] = -50.0  # word 4: in the vocab and twice in the source, generation nearly off
    return l


def test_pointer_nll_saturated_p_gen_is_finite_and_gradchecks(rng):
    l = saturated_logits()
    inputs = mixture_inputs(rng, 3, p_gen_logit=l)
    with np.errstate(**STRICT):
        nll, cache = nll_forward()(**inputs)
        grads = ptr.pointer_nll_backward(arr(np.ones((B, 3))), cache)
    nll = backend.to_numpy(nll)
    assert np.all(np.isfinite(nll))
    # Where only the saturated-off branch reaches the target, nll ≈ −log σ(−50) = 50 + ...
    in_src = np.array([[TARGET[b, t] in SRC_EXT[b] for t in range(3)] for b in range(B)])
    one_branch = (WEIGHT == 1) & ((TARGET >= V) | ~in_src)
    assert one_branch.sum() >= 6
    assert np.all(nll[one_branch] > 50) and np.all(nll[(WEIGHT == 1) & ~one_branch] < 10)
    assert all(np.all(np.isfinite(backend.to_numpy(g))) for g in grads)
    dl = backend.to_numpy(grads[1])
    assert dl[1, 0] == pytest.approx(1.0)  # OOV target, l = +50: d nll/dl = p_gen ≈ 1
    assert dl[0, 2] == pytest.approx(-1.0)  # target absent from the source, l = −50: p_gen − 1
    report = check_function(nll_forward(), as_dict(NLL_NAMES)(ptr.pointer_nll_backward), inputs)
    assert_checked(report)


def test_pointer_nll_extreme_vocab_logits_are_finite(rng):
    """Logits ±1e4 and p_gen logits ±1e4: finite values and gradients, no warnings."""
    signs = rng.choice([-1.0, 1.0], size=(B, 3, V))
    inputs = mixture_inputs(rng, 3, p_gen_logit=np.where(TARGET >= V, 1e4, -1e4))
    inputs["vocab_logits"] = arr(signs * 1e4)
    with np.errstate(**STRICT):
        nll, cache = nll_forward()(**inputs)
        grads = ptr.pointer_nll_backward(arr(np.ones((B, 3))), cache)
        logp = ptr.final_log_probs(src_ext=backend.asarray(SRC_EXT), n_ext=V_EXT, **inputs)
        P, pc = ptr.final_distribution_forward(src_ext=backend.asarray(SRC_EXT), n_ext=V_EXT,
                                               **inputs)
        dP = ptr.final_distribution_backward(arr(np.ones((B, 3, V_EXT))), pc)
    assert np.all(np.isfinite(backend.to_numpy(nll)))
    for g in list(grads) + list(dP):
        assert np.all(np.isfinite(backend.to_numpy(g)))
    assert np.all(np.isfinite(backend.to_numpy(logp)[..., :V]))
    np.testing.assert_allclose(backend.to_numpy(P).sum(-1), 1.0)
    # The loss agrees with the decoding log-probabilities, and stays exact (not clamped) where
    # it is huge: row 1, step 2 wants word 2 (absent from the source) with p_gen ≈ e^-1e4.
    picked = np.take_along_axis(backend.to_numpy(logp), TARGET[..., None], -1)[..., 0]
    np.testing.assert_allclose(backend.to_numpy(nll), -picked * WEIGHT, rtol=1e-12)
    o = backend.to_numpy(inputs["vocab_logits"])[1, 2]
    exact = 1e4 - (o[2] - o.max() - np.log(np.exp(o - o.max()).sum()))
    assert backend.to_numpy(nll)[1, 2] == pytest.approx(exact, rel=1e-12)
    assert backend.to_numpy(grads[0])[1, 2, 2] == pytest.approx(np.exp(o[2] - o.max()) - 1)


def test_pointer_nll_target_unreachable_is_floored_not_nan(rng):
    """An OOV target absent from the source (a malformed target) has P = 0 in both branches."""
    target = TARGET.copy()
    target[2, 0] = 9  # row 2's source has no id 9
    inputs = mixture_inputs(rng, 3)
    with np.errstate(**STRICT):
        nll, cache = nll_forward(target=target)(**inputs)
        dvocab, dl, dalpha = ptr.pointer_nll_backward(arr(np.ones((B, 3))), cache)
    nll = backend.to_numpy(nll)
    l = backend.to_numpy(inputs["p_gen_logit"])[2, 0]
    tiny = np.finfo(np.float64).tiny
    assert nll[2, 0] == pytest.approx(np.logaddexp(0, l) - np.log(tiny))  # softplus(l) + 708.4
    assert np.all(np.isfinite(nll))
    p = 1 / (1 + np.exp(-l))
    assert backend.to_numpy(dl)[2, 0] == pytest.approx(p)  # push p_gen toward copying
    assert np.all(backend.to_numpy(dalpha)[2, 0] == 0)
    assert np.all(backend.to_numpy(dvocab)[2, 0] == 0)


def test_pointer_nll_floor_gives_alpha_no_gradient_where_attention_underflowed(rng):
    """An OOV target in the source whose attention is exactly 0 there: floored, dalpha = 0."""
    inputs = mixture_inputs(rng)
    alpha = backend.to_numpy(inputs["alpha"]).copy()
    alpha[1, 1] = 0.0  # row 1's only 7; renormalise the rest
    alpha[1] /= alpha[1].sum()
    inputs["alpha"] = arr(alpha)
    target = np.array([4, 7, 6, 5])
    with np.errstate(**STRICT):
        nll, cache = ptr.pointer_nll_forward(src_ext=backend.asarray(SRC_EXT),
                                             target=backend.asarray(target), weight=None, **inputs)
        _, _, dalpha = ptr.pointer_nll_backward(arr(np.ones(B)), cache)
    assert np.isfinite(backend.to_numpy(nll)[1])
    assert np.all(backend.to_numpy(dalpha)[1] == 0)
    assert np.any(backend.to_numpy(dalpha)[0] != 0)


def test_pointer_nll_logit_gradient_is_accurate_when_p_gen_rounds_to_one(rng):
    """At l = 40, p_gen = 1 in float64 yet d nll/dl = −p(1−p)(P_vocab(y) − P_copy(y)) / P(y)."""
    inputs = mixture_inputs(rng, p_gen_logit=np.full(B, 40.0))
    target = np.array([4, 5, 4, 6])  # in the vocabulary and in the source: both branches
    nll, cache = ptr.pointer_nll_forward(src_ext=backend.asarray(SRC_EXT),
                                         target=backend.asarray(target), weight=None, **inputs)
    _, dl, _ = ptr.pointer_nll_backward(arr(np.ones(B)), cache)
    o, a = backend.to_numpy(inputs["vocab_logits"]), backend.to_numpy(inputs["alpha"])
    pv = np.exp(o)[np.arange(B), target] / np.exp(o).sum(-1)
    pc = (a * (SRC_EXT == target[:, None])).sum(-1)
    q = np.exp(-40.0) / (1 + np.exp(-40.0))
    p = 1 / (1 + np.exp(-40.0))
    ref = -p * q * (pv - pc) / (p * pv + q * pc)
    np.testing.assert_allclose(backend.to_numpy(dl), ref, rtol=1e-9)
    assert np.all(ref != 0)


def test_pointer_nll_copy_mass_zero_branch_contributes_nothing(rng):
    """Target in the vocabulary but absent from the source: exactly the generation term."""
    inputs = mixture_inputs(rng)
    target = np.array([3, 2, 6, 5])  # none of these is in its row's source
    nll, cache = ptr.pointer_nll_forward(src_ext=backend.asarray(SRC_EXT),
                                         target=backend.asarray(target), weight=None, **inputs)
    o = backend.to_numpy(inputs["vocab_logits"])
    l = backend.to_numpy(inputs["p_gen_logit"])
    logpv = o - np.log(np.exp(o).sum(-1, keepdims=True))
    ref = -(logpv[np.arange(B), target] - np.log1p(np.exp(-l)))
    np.testing.assert_allclose(backend.to_numpy(nll), ref, rtol=1e-12)
    _, _, dalpha = ptr.pointer_nll_backward(arr(np.ones(B)), cache)
    assert np.all(backend.to_numpy(dalpha) == 0)


# -------------------------------------------------------------------------------------------
# 5. Decoding log-probabilities
# -------------------------------------------------------------------------------------------


def test_final_log_probs_is_log_of_final_distribution(rng):
    inputs = mixture_inputs(rng)
    with np.errstate(**STRICT):
        logp = backend.to_numpy(
            ptr.final_log_probs(src_ext=backend.asarray(SRC_EXT), n_ext=V_EXT, **inputs))
    P = reference_P(**inputs)
    pos = P > 0
    np.testing.assert_allclose(logp[pos], np.log(P[pos]), rtol=1e-12)
    assert np.all(logp[~pos] == -np.inf)
    assert not pos[2, 8] and not pos[1, 9]  # OOV slots no source word fills: −inf
    assert np.all(np.isfinite(logp[:, :V]))


def test_final_log_probs_saturated_keeps_vocab_and_copies_finite(rng):
    inputs = mixture_inputs(rng, p_gen_logit=np.array([1e4, -1e4, 800.0, -800.0]))
    with np.errstate(**STRICT):
        logp = backend.to_numpy(
            ptr.final_log_probs(src_ext=backend.asarray(SRC_EXT), n_ext=V_EXT, **inputs))
    assert np.all(np.isfinite(logp[:, :V]))
    for b in range(B):  # every word of the source stays reachable
        assert np.all(np.isfinite(logp[b, SRC_EXT[b, MASK[b]]]))
    assert logp[0, 8] == pytest.approx(-1e4 + np.log(backend.to_numpy(inputs["alpha"])[0, 1]))


# -------------------------------------------------------------------------------------------
# dtypes and input validation
# -------------------------------------------------------------------------------------------


def test_float32_in_float32_out(rng):
    f32 = np.float32
    ca = {k: arr(backend.to_numpy(v), f32) for k, v in coverage_attention_inputs(rng).items()}
    alpha, cache = ptr.coverage_attention_forward(mask=backend.asarray(MASK), **ca)
    outs = [alpha, cache.e, *ptr.coverage_attention_backward(arr(np.ones((B, S)), f32), cache)[:3]]
    outs += list(ptr.coverage_attention_backward(arr(np.ones((B, S)), f32), cache)[3].values())
    cov, cc = ptr.coverage_loss_forward(alpha, ca["coverage"], backend.asarray(WEIGHT[:, 0] > 0))
    outs += [cov, *ptr.coverage_loss_backward(arr(np.ones(B), f32), cc)]
    pg = {k: arr(backend.to_numpy(v), f32) for k, v in p_gen_inputs(rng).items()}
    p, pc = ptr.p_gen_forward(**pg)
    back = ptr.p_gen_backward(arr(np.ones(B), f32), pc)
    outs += [p, pc.p_gen_logit, *back[:3], *back[3].values()]
    mx = {k: arr(backend.to_numpy(v), f32) for k, v in mixture_inputs(rng, 3).items()}
    src = backend.asarray(SRC_EXT)
    P, fc = ptr.final_distribution_forward(src_ext=src, n_ext=V_EXT, **mx)
    outs += [P, *ptr.final_distribution_backward(arr(np.ones((B, 3, V_EXT)), f32), fc)]
    nll, nc = ptr.pointer_nll_forward(src_ext=src, target=backend.asarray(TARGET),
                                      weight=backend.asarray(WEIGHT > 0), **mx)
    outs += [nll, *ptr.pointer_nll_backward(arr(np.ones((B, 3)), f32), nc)]
    outs += [ptr.final_log_probs(src_ext=src, n_ext=V_EXT, **mx)]
    outs += [ptr.copy_distribution(mx["alpha"][:, 0], src, V_EXT)]
    for i, o in enumerate(outs):
        assert o.dtype == np.float32, f"output {i} is {o.dtype}"
    assert np.allclose(backend.to_numpy(P).sum(-1), 1.0, atol=1e-5)


def test_float32_unreachable_target_floor_is_finite(rng):
    mx = {k: arr(backend.to_numpy(v), np.float32) for k, v in mixture_inputs(rng).items()}
    target = np.array([4, 9, 6, 5])  # row 1's source has no 9
    with np.errstate(**STRICT):
        nll, cache = ptr.pointer_nll_forward(src_ext=backend.asarray(SRC_EXT),
                                             target=backend.asarray(target), weight=None, **mx)
        grads = ptr.pointer_nll_backward(arr(np.ones(B), np.float32), cache)
    assert np.all(np.isfinite(backend.to_numpy(nll)))
    assert backend.to_numpy(nll)[1] > 87
    assert all(np.all(np.isfinite(backend.to_numpy(g))) for g in grads)


def test_invalid_mixture_inputs_name_the_argument(rng):
    mx = mixture_inputs(rng)
    src = backend.asarray(SRC_EXT)
    bad_src = SRC_EXT.copy()
    bad_src[1, 0] = V_EXT
    with pytest.raises(ValueError, match="src_ext.*10"):
        ptr.final_distribution_forward(src_ext=backend.asarray(bad_src), n_ext=V_EXT, **mx)
    with pytest.raises(ValueError, match="src_ext"):
        ptr.final_log_probs(src_ext=backend.asarray(bad_src), n_ext=V_EXT, **mx)
    with pytest.raises(ValueError, match="src_ext"):
        ptr.copy_distribution(mx["alpha"], backend.asarray(bad_src), V_EXT)
    with pytest.raises(ValueError, match="n_ext"):
        ptr.final_distribution_forward(src_ext=src, n_ext=V - 1, **mx)
    with pytest.raises(ValueError, match="src_ext"):
        ptr.final_distribution_forward(src_ext=src[:, :4], n_ext=V_EXT, **mx)
    with pytest.raises(ValueError, match="alpha"):
        ptr.final_distribution_forward(src_ext=src, n_ext=V_EXT,
                                       **{**mx, "alpha": mx["alpha"][:3]})
    with pytest.raises(ValueError, match="p_gen_logit"):
        ptr.final_distribution_forward(src_ext=src, n_ext=V_EXT,
                                       **{**mx, "p_gen_logit": mx["p_gen_logit"][:, None]})
    with pytest.raises(TypeError, match="alpha.*float64"):
        ptr.final_distribution_forward(src_ext=src, n_ext=V_EXT,
                                       **{**mx, "alpha": mx["alpha"].astype(np.float32)})
    with pytest.raises(TypeError, match="src_ext"):
        ptr.final_distribution_forward(src_ext=arr(SRC_EXT), n_ext=V_EXT, **mx)
    with pytest.raises(ValueError, match="target"):
        ptr.pointer_nll_forward(src_ext=src, target=backend.asarray(TARGET), weight=None, **mx)
    with pytest.raises(ValueError, match="target"):
        ptr.pointer_nll_forward(src_ext=src, target=backend.asarray(np.array([1, -2, 3, 4])),
                                weight=None, **mx)
    with pytest.raises(ValueError, match="weight"):
        ptr.pointer_nll_forward(src_ext=src, target=backend.asarray(TARGET[:, 0]),
                                weight=arr(WEIGHT), **mx)


def test_invalid_op_inputs_name_the_argument(rng):
    ca = coverage_attention_inputs(rng)
    mask = backend.asarray(MASK)
    for name, bad in [("coverage", ca["coverage"][:, :3]), ("W2", ca["W2"].T),
                      ("w_c", ca["w_c"][:2]), ("v", ca["v"][None]), ("s", ca["s"][:2])]:
        with pytest.raises(ValueError, match=name):
            ptr.coverage_attention_forward(mask=mask, **{**ca, name: bad})
    with pytest.raises(ValueError, match="mask"):
        ptr.coverage_attention_forward(mask=mask[:, :2], **ca)
    with pytest.raises(TypeError, match="W2"):
        ptr.coverage_attention_forward(mask=mask, **{**ca, "W2": ca["W2"].astype(np.float32)})
    with pytest.raises(ValueError, match="coverage"):
        ptr.coverage_loss_forward(ca["coverage"], ca["coverage"][:, 1:], None)
    with pytest.raises(ValueError, match="weight"):
        ptr.coverage_loss_forward(ca["coverage"], ca["coverage"], arr(np.ones(B + 1)))
    pg = p_gen_inputs(rng)
    for name, bad in [("w_h", pg["w_h"][:3]), ("b_ptr", pg["b_ptr"][None]), ("x", pg["x"][:2])]:
        with pytest.raises(ValueError, match=name):
            ptr.p_gen_forward(**{**pg, name: bad})
    with pytest.raises(TypeError, match="c must be a float array"):
        ptr.p_gen_forward(**{**pg, "c": [[0.0] * HS] * B})


def test_no_numpy_or_cupy_import_in_the_op_module():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(ptr))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom)}
    assert not names & {"numpy", "cupy"}
