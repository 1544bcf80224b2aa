"""Attention ops (minis2s.functional.attention): gradient checks in float64 on padded source
batches, exact zeros on padding, numerical stability, dtypes, validation, the registry of the
four scores, and per-step use with the keys computed once (what the models do)."""

import warnings

import numpy as np
import pytest

from minis2s import backend
from minis2s.functional import activations as F_act
from minis2s.functional import attention as _attention
from minis2s.gradcheck import check_function
from tests.helpers import OnHost, to_host

A = OnHost(_attention)  # results on the host, under NumPy or CuPy

B, S, H, A_DIM = 3, 5, 4, 5
LENGTHS = (5, 3, 1)  # real source positions per row; the last row has a single one


def source_mask():
    return np.arange(S)[None, :] < np.array(LENGTHS)[:, None]


def hs_for(score):
    """dot and cosine need Hs == H; test the others with a different encoder size."""
    return H if score in ("dot", "cosine") else 3


def make(score, T, seed=0, dtype=np.float64):
    """s (B, T, H) decoder states, hbar (B, S, Hs) encoder outputs, the mask and the params."""
    rng = np.random.default_rng(seed)
    Hs = hs_for(score)
    s = rng.standard_normal((B, T, H)).astype(dtype)
    hbar = rng.standard_normal((B, S, Hs)).astype(dtype)
    params = A.init_score_params(score, H, Hs, A=A_DIM, dtype=np.dtype(dtype).name, seed=seed)
    if score == "cosine":
        params["scale"][...] = 2.5  # a value other than the initial one
    return s, hbar, source_mask(), params


def attention_pair(score, mask):
    """forward/backward in check_function's form: inputs s, hbar and the params."""

    def forward(s, hbar, **params):
        c, alpha, cache = A.attention_forward(s, hbar, mask, score, params)
        return (c, alpha), cache

    def backward(douts, cache):
        dc, dalpha = douts
        ds, dhbar, dparams = A.attention_backward(dc, dalpha, cache)
        return {"s": ds, "hbar": dhbar, **dparams}

    return forward, backward


# ------------------------------------------------------------------------------------------
# masked softmax
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 4])
def test_masked_softmax_gradcheck_and_exact_zeros(T):
    rng = np.random.default_rng(1)
    mask = source_mask()
    e = rng.standard_normal((B, T, S)) * 3
    e[:, :, -1] = 50.0  # a large score on a position that is padding in rows 1 and 2
    report = check_function(A.masked_softmax_forward,
                            lambda d, c: {"e": A.masked_softmax_backward(d, c)},
                            {"e": e, "mask": mask})
    assert report.passed, str(report)

    alpha, cache = A.masked_softmax_forward(e, mask)
    pad = ~np.broadcast_to(mask[:, None, :], alpha.shape)
    assert np.all(alpha[pad] == 0.0)
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(alpha[2, :, 0] == 1.0)  # the one-position row puts all its weight there
    de = A.masked_softmax_backward(rng.standard_normal(alpha.shape), cache)
    assert np.all(de[pad] == 0.0)
    np.testing.assert_allclose(de.sum(axis=-1), 0.0, atol=1e-12)  # softmax is shift-invariant


def test_masked_softmax_of_one_step_is_the_same_op():
    """The pointer's coverage attention uses the masked softmax on (B, S) scores: the same
    function, with the same rule, as attention's (B, T, S)."""
    rng = np.random.default_rng(1)
    mask = source_mask()
    e = rng.standard_normal((B, 3, S))
    alpha3, _ = A.masked_softmax_forward(e, mask)
    for t in range(3):
        alpha2, cache = A.masked_softmax_forward(e[:, t], mask)
        np.testing.assert_array_equal(alpha2, alpha3[:, t])
    report = check_function(A.masked_softmax_forward,
                            lambda d, c: {"e": A.masked_softmax_backward(d, c)},
                            {"e": e[:, 0], "mask": mask})
    assert report.passed, str(report)
    assert _attention.masked_softmax_forward is F_act.masked_softmax_forward  # one of it


def test_masked_softmax_ignores_garbage_at_padding():
    rng = np.random.default_rng(2)
    mask = source_mask()
    e = rng.standard_normal((B, 2, S))
    e2 = e.copy()
    e2[~np.broadcast_to(mask[:, None, :], e.shape)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a1, _ = A.masked_softmax_forward(e, mask)
        a2, _ = A.masked_softmax_forward(e2, mask)
    np.testing.assert_array_equal(a1, a2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_scores_stay_finite(dtype):
    rng = np.random.default_rng(3)
    mask = source_mask()
    e = np.where(rng.random((B, 3, S)) < 0.5, 1e4, -1e4).astype(dtype)
    e[0, 0] = [-1e4, -1e4, -1e4, -1e4, -1e4]  # all real scores equal and very negative
    e[0, 1] = [1e4, -1e4, 1e4, -1e4, -1e4]
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        alpha, cache = A.masked_softmax_forward(e, mask)
        de = A.masked_softmax_backward(rng.standard_normal(e.shape).astype(dtype), cache)
    assert alpha.dtype == dtype and de.dtype == dtype
    assert np.all(np.isfinite(alpha)) and np.all(np.isfinite(de))
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(alpha[0, 0], [0.2] * 5, rtol=1e-6)
    np.testing.assert_allclose(alpha[0, 1], [0.5, 0, 0.5, 0, 0], rtol=1e-6)
    assert np.all(alpha[~np.broadcast_to(mask[:, None, :], alpha.shape)] == 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_with_huge_dot_scores_is_finite(dtype):
    s, hbar, mask, _ = make("dot", 3, dtype=dtype)
    s *= 60  # scores of order 1e4
    hbar *= 60
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        c, alpha, cache = A.attention_forward(s, hbar, mask, "dot", {})
        ds, dhbar, _ = A.attention_backward(np.ones_like(c), np.ones_like(alpha), cache)
    for a in (c, alpha, ds, dhbar):
        assert a.dtype == dtype and np.all(np.isfinite(a))


# ------------------------------------------------------------------------------------------
# score functions: the registry, one forward/backward pair each (and the keys of step 1)
# ------------------------------------------------------------------------------------------
PARAM_ORDER = {"dot": (), "general": ("W",), "additive": ("W1", "W2", "v"), "cosine": ("scale",)}


def test_the_registry_holds_the_four_scores():
    assert tuple(_attention.REGISTRY) == _attention.SCORES == ("dot", "general", "additive",
                                                               "cosine")
    for name, entry in _attention.REGISTRY.items():
        assert entry.params == PARAM_ORDER[name]
        for f in (entry.keys, entry.keys_backward, entry.forward, entry.backward):
            assert callable(f)
    # general is the dot score against the keys hbar Wᵀ
    assert _attention.REGISTRY["general"].forward is _attention.REGISTRY["dot"].forward


@pytest.mark.parametrize("T", [1, 4])
@pytest.mark.parametrize("score", A.SCORES)
def test_score_gradcheck(score, T):
    s, hbar, _, params = make(score, T, seed=4)

    def forward(s, hbar, **p):
        return A.score_forward(score, s, hbar, p)

    def backward(de, cache):
        ds, dhbar, dparams = A.score_backward(de, cache)
        assert set(dparams) == set(PARAM_ORDER[score])
        return {"s": ds, "hbar": dhbar, **dparams}

    report = check_function(forward, backward, {"s": s, "hbar": hbar, **params})
    assert report.passed, str(report)
    assert {r.name for r in report.rows} == {"s", "hbar", *PARAM_ORDER[score]}


@pytest.mark.parametrize("score", A.SCORES)
def test_registry_pairs_compose_to_the_score(score):
    """score_forward/score_backward are the registry's keys and score pairs composed."""
    s, hbar, _, params = make(score, 3, seed=5)
    de = np.random.default_rng(5).standard_normal((B, 3, S))
    f = _attention.REGISTRY[score]
    p_dev = {n: backend.asarray(v) for n, v in params.items()}  # the unchecked pairs' inputs
    k = f.keys(backend.asarray(hbar), p_dev)
    e1, c1 = f.forward(backend.asarray(s), k, p_dev)
    e2, c2 = A.score_forward(score, s, hbar, params)
    np.testing.assert_array_equal(to_host(e1), to_host(e2))
    ds1, dk, dp1 = f.backward(backend.asarray(de), c1)
    dhbar1, dpk = f.keys_backward(dk, backend.asarray(hbar), p_dev)
    ds2, dhbar2, dp2 = A.score_backward(de, c2)
    np.testing.assert_array_equal(to_host(ds1), to_host(ds2))
    np.testing.assert_array_equal(to_host(dhbar1), to_host(dhbar2))
    assert {**dpk, **dp1}.keys() == dp2.keys() == params.keys()


def test_score_formulas():
    s, hbar, _, p = make("additive", 2, seed=6)
    e, _ = A.score_forward("additive", s, hbar, p)
    b, t, j = 1, 1, 2
    assert e[b, t, j] == pytest.approx(p["v"] @ np.tanh(hbar[b, j] @ p["W1"] + s[b, t] @ p["W2"]))
    s, hbar, _, p = make("general", 2, seed=6)
    e, _ = A.score_forward("general", s, hbar, p)
    assert e[b, t, j] == pytest.approx(s[b, t] @ p["W"] @ hbar[b, j])
    s, hbar, _, _ = make("dot", 2, seed=6)
    e, _ = A.score_forward("dot", s, hbar, {})
    assert e[b, t, j] == pytest.approx(s[b, t] @ hbar[b, j])
    e, _ = A.score_forward("cosine", s, hbar, {"scale": np.array([3.0])})
    cos = s[b, t] @ hbar[b, j] / np.linalg.norm(s[b, t]) / np.linalg.norm(hbar[b, j])
    assert e[b, t, j] == pytest.approx(3.0 * cos, rel=1e-7)


def test_cosine_of_parallel_vectors_is_scale():
    rng = np.random.default_rng(7)
    hbar = rng.standard_normal((2, 3, H))
    s = np.stack([2.5 * hbar[:, 1], -0.5 * hbar[:, 2]], axis=1)  # (2, 2, H)
    e, _ = A.score_forward("cosine", s, hbar, {"scale": np.array([4.0])})
    np.testing.assert_allclose(e[:, 0, 1], 4.0, rtol=1e-6)  # parallel: +scale
    np.testing.assert_allclose(e[:, 1, 2], -4.0, rtol=1e-6)  # antiparallel: -scale
    assert np.all(np.abs(e) <= 4.0)


def test_cosine_zero_vector_gives_no_nan():
    rng = np.random.default_rng(8)
    s = rng.standard_normal((1, 2, H))
    s[0, 0] = 0.0
    hbar = rng.standard_normal((1, 3, H))
    hbar[0, 1] = 0.0
    with warnings.catch_warnings(), np.errstate(invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        e, cache = A.score_forward("cosine", s, hbar, {"scale": np.array([2.0])})
        ds, dhbar, dp = A.score_backward(np.ones_like(e), cache)
    assert np.all(e[0, 0] == 0.0) and np.all(e[0, :, 1] == 0.0)
    for a in (e, ds, dhbar, dp["scale"]):
        assert np.all(np.isfinite(a))


# ------------------------------------------------------------------------------------------
# context
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 4])
def test_context_gradcheck(T):
    rng = np.random.default_rng(9)
    alpha, _ = A.masked_softmax_forward(rng.standard_normal((B, T, S)), source_mask())
    hbar = rng.standard_normal((B, S, 3))

    def backward(dc, cache):
        dalpha, dhbar = A.context_backward(dc, cache)
        return {"alpha": dalpha, "hbar": dhbar}

    report = check_function(A.context_forward, backward, {"alpha": alpha, "hbar": hbar})
    assert report.passed, str(report)
    c, cache = A.context_forward(alpha, hbar)
    np.testing.assert_allclose(c[1, 0], alpha[1, 0] @ hbar[1], rtol=1e-12)
    _, dhbar = A.context_backward(rng.standard_normal(c.shape), cache)
    assert np.all(dhbar[~source_mask()] == 0.0)


# ------------------------------------------------------------------------------------------
# attention composed
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("grads", ["dc", "dalpha", "both"])
@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.parametrize("score", A.SCORES)
def test_attention_gradcheck(score, T, grads):
    s, hbar, mask, params = make(score, T, seed=10)
    rng = np.random.default_rng(11)
    dc = rng.standard_normal((B, T, hs_for(score))) if grads != "dalpha" else None
    dalpha = rng.standard_normal((B, T, S)) if grads != "dc" else None
    forward, backward = attention_pair(score, mask)
    report = check_function(forward, backward, {"s": s, "hbar": hbar, **params},
                            dout=(dc, dalpha))
    assert report.passed, str(report)
    assert {r.name for r in report.rows} == {"s", "hbar", *params}


@pytest.mark.parametrize("score", A.SCORES)
def test_attention_padding_gets_exact_zeros(score):
    s, hbar, mask, params = make(score, 3, seed=12)
    rng = np.random.default_rng(12)
    dc = rng.standard_normal((B, 3, hs_for(score)))
    dalpha = rng.standard_normal((B, 3, S))
    c, alpha, cache = A.attention_forward(s, hbar, mask, score, params)
    ds, dhbar, dparams = A.attention_backward(dc, dalpha, cache)
    assert np.all(alpha[~np.broadcast_to(mask[:, None, :], alpha.shape)] == 0.0)
    assert np.all(dhbar[~mask] == 0.0)
    assert np.abs(dhbar[mask]).min(axis=-1).max() > 0  # real positions do get gradient

    # whatever the padded encoder states hold, nothing else changes
    hbar2 = hbar.copy()
    hbar2[~mask] = rng.standard_normal(hbar2[~mask].shape) * 100
    c2, alpha2, cache2 = A.attention_forward(s, hbar2, mask, score, params)
    ds2, dhbar2, dparams2 = A.attention_backward(dc, dalpha, cache2)
    np.testing.assert_allclose(c2, c, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(alpha2, alpha)
    np.testing.assert_allclose(ds2, ds, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(dhbar2[~mask], 0.0)
    for k in dparams:
        np.testing.assert_allclose(dparams2[k], dparams[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("score", A.SCORES)
def test_attention_row_alone_equals_row_in_padded_batch(score):
    s, hbar, mask, params = make(score, 2, seed=13)
    c, alpha, _ = A.attention_forward(s, hbar, mask, score, params)
    for b, n in enumerate(LENGTHS):
        cb, ab, _ = A.attention_forward(s[b:b + 1], hbar[b:b + 1, :n], np.ones((1, n), bool),
                                        score, params)
        np.testing.assert_allclose(cb[0], c[b], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ab[0], alpha[b, :, :n], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("score", A.SCORES)
def test_per_step_equals_all_at_once(score):
    """What the models do: the keys once per source sequence (step 1), steps 2-3 per decoder
    step through the unchecked _attend, each step's backward stopping at the keys, and the
    keys' backward once on their summed gradient. Same results as attention_forward/backward
    over all steps at once."""
    T = 4
    s, hbar, mask, params = make(score, T, seed=14)
    rng = np.random.default_rng(14)
    dc = rng.standard_normal((B, T, hs_for(score)))
    dalpha = rng.standard_normal((B, T, S))
    c, alpha, cache = A.attention_forward(s, hbar, mask, score, params)
    ds, dhbar, dparams = A.attention_backward(dc, dalpha, cache)

    xs, xhbar, xmask = (backend.asarray(a) for a in (s, hbar, mask))
    xparams = {k: backend.asarray(v) for k, v in params.items()}
    f = _attention.REGISTRY[score]
    k = f.keys(xhbar, xparams)  # step 1, once
    ds_steps, dhbar_sum, dk_sum, dp_sum = [], 0.0, 0.0, {}
    for t in range(T):
        sl = slice(t, t + 1)
        c_t, alpha_t, cache_t = _attention._attend(xs[:, sl], xhbar, k, xmask, score, xparams)
        np.testing.assert_allclose(to_host(c_t), c[:, sl], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(to_host(alpha_t), alpha[:, sl], rtol=1e-12, atol=1e-14)
        ds_t, dhbar_t, dk_t, dp_t = _attention._attend_backward(
            backend.asarray(dc[:, sl]), backend.asarray(dalpha[:, sl]), cache_t)
        ds_steps.append(to_host(ds_t))
        dhbar_sum = dhbar_sum + dhbar_t
        dk_sum = dk_sum + dk_t
        for name, g in dp_t.items():
            dp_sum[name] = dp_sum.get(name, 0.0) + g
        # the full backward of one step equals the matching slice of the all-at-once one
        np.testing.assert_allclose(A.attention_backward(dc[:, sl], dalpha[:, sl], cache_t)[0],
                                   ds[:, sl], rtol=1e-10, atol=1e-13)
    dhbar_k, dp_k = f.keys_backward(dk_sum, xhbar, xparams)  # step 1's backward, once
    np.testing.assert_allclose(np.concatenate(ds_steps, axis=1), ds, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(to_host(dhbar_sum + dhbar_k), dhbar, rtol=1e-10, atol=1e-13)
    dp_sum.update(dp_k)
    assert dp_sum.keys() == dparams.keys()
    for name in dparams:
        np.testing.assert_allclose(to_host(dp_sum[name]), dparams[name], rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------------------------------
# dtypes
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("score", A.SCORES)
def test_float32_stays_float32(score):
    s, hbar, mask, params = make(score, 2, seed=15, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in params.values())
    keys = _attention.REGISTRY[score].keys(backend.asarray(hbar),
                                           {n: backend.asarray(v) for n, v in params.items()})
    assert keys.dtype == np.float32
    c, alpha, cache = A.attention_forward(s, hbar, mask, score, params)
    ds, dhbar, dparams = A.attention_backward(np.ones_like(c), np.ones_like(alpha), cache)
    e, scache = A.score_forward(score, s, hbar, params)
    sgrads = A.score_backward(np.ones_like(e), scache)
    for a in (c, alpha, ds, dhbar, e, sgrads[0], sgrads[1], *dparams.values(),
              *sgrads[2].values()):
        assert a.dtype == np.float32
    for k, p in params.items():
        assert dparams[k].shape == p.shape


def test_mixed_dtypes_are_rejected():
    s, hbar, mask, params = make("general", 2, dtype=np.float32)
    with pytest.raises(TypeError, match="s must have the dtype"):
        A.attention_forward(s.astype(np.float64), hbar, mask, "general", params)
    with pytest.raises(TypeError, match=r"params\['W'\]"):
        A.attention_forward(s, hbar, mask, "general", {"W": params["W"].astype(np.float64)})


# ------------------------------------------------------------------------------------------
# shapes of the parameters, initialisation
# ------------------------------------------------------------------------------------------
def test_score_param_shapes():
    assert A.score_param_shapes("dot", 4, 4) == {}
    assert A.score_param_shapes("general", 4, 6) == {"W": (4, 6)}
    assert A.score_param_shapes("additive", 4, 6, A=7) == {"W1": (6, 7), "W2": (4, 7),
                                                           "v": (7,)}
    assert A.score_param_shapes("additive", 4, 6) == {"W1": (6, 4), "W2": (4, 4), "v": (4,)}
    assert A.score_param_shapes("cosine", 4, 4) == {"scale": (1,)}
    for score in A.SCORES:
        params = A.init_score_params(score, 4, 4, A=3, dtype="float64", seed=0)
        assert {k: v.shape for k, v in params.items()} == A.score_param_shapes(score, 4, 4, A=3)
    assert A.init_score_params("cosine", 4, 4)["scale"][0] == A.COSINE_SCALE_INIT
    with pytest.raises(ValueError, match="A must be a positive int"):
        A.score_param_shapes("additive", 4, 4, A=0)


# ------------------------------------------------------------------------------------------
# invalid inputs
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("score", ["dot", "cosine"])
def test_same_size_scores_need_H_equal_Hs(score):
    rng = np.random.default_rng(16)
    s, hbar = rng.standard_normal((2, 1, 4)), rng.standard_normal((2, 3, 5))
    params = {} if score == "dot" else {"scale": np.ones(1)}
    with pytest.raises(ValueError, match="H == Hs"):
        A.score_forward(score, s, hbar, params)
    with pytest.raises(ValueError, match="H == Hs"):
        A.attention_forward(s, hbar, np.ones((2, 3), bool), score, params)
    with pytest.raises(ValueError, match="H == Hs"):
        A.score_param_shapes(score, 4, 5)


def test_unknown_score_lists_the_choices():
    s, hbar, mask, _ = make("dot", 1)
    calls = [
        lambda: A.score_forward("luong", s, hbar, {}),
        lambda: A.attention_forward(s, hbar, mask, "luong", {}),
        lambda: A.score_param_shapes("luong", 4, 4),
        lambda: A.init_score_params("luong", 4, 4),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="score must be one of") as info:
            call()
        assert all(name in str(info.value) for name in A.SCORES)


def test_mask_errors_name_mask():
    s, hbar, mask, params = make("general", 2)
    with pytest.raises(ValueError, match=r"mask must have shape \(B, S\) = \(3, 5\)"):
        A.attention_forward(s, hbar, mask[:, :4], "general", params)
    with pytest.raises(ValueError, match="mask must have shape"):
        A.masked_softmax_forward(np.zeros((B, 2, S)), mask[:2])
    empty = mask.copy()
    empty[1] = False
    with pytest.raises(ValueError, match=r"mask.*rows \[1\]"):
        A.attention_forward(s, hbar, empty, "general", params)
    with pytest.raises(ValueError, match=r"mask.*rows \[1\]"):
        A.masked_softmax_forward(np.zeros((B, 2, S)), empty)
    with pytest.raises(ValueError, match=r"mask.*rows \[1\]"):  # the same rule for one step
        A.masked_softmax_forward(np.zeros((B, S)), empty)
    with pytest.raises(TypeError, match="mask"):
        A.masked_softmax_forward(np.zeros((B, 2, S)), mask.tolist())


def test_other_invalid_inputs():
    s, hbar, mask, params = make("additive", 2)
    with pytest.raises(ValueError, match="exactly the keys"):
        A.attention_forward(s, hbar, mask, "additive", {"W1": params["W1"]})
    with pytest.raises(ValueError, match=r"params\['W2'\] must have shape \(4, 5\)"):
        A.attention_forward(s, hbar, mask, "additive", {**params, "W2": params["W2"][:3]})
    with pytest.raises(ValueError, match="s must have shape"):
        A.attention_forward(s[:, 0], hbar, mask, "additive", params)
    with pytest.raises(ValueError, match="same batch size"):
        A.attention_forward(s[:2], hbar, mask, "additive", params)
    with pytest.raises(TypeError, match="s must be a float array"):
        A.attention_forward(s.tolist(), hbar, mask, "additive", params)
    with pytest.raises(TypeError, match="params must be a dict"):
        A.attention_forward(s, hbar, mask, "additive", [params["W1"]])
    _, _, cache = A.attention_forward(s, hbar, mask, "additive", params)
    with pytest.raises(ValueError, match="dc and dalpha are both None"):
        A.attention_backward(None, None, cache)
    with pytest.raises(ValueError, match=r"dc must have shape"):
        A.attention_backward(np.ones((B, 2, 4)), None, cache)
    with pytest.raises(TypeError, match="cache must be the AttentionCache"):
        A.attention_backward(np.ones((B, 2, 3)), None, cache[1:])
