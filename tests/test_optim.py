import numpy as np
import pytest

from minis2s import backend, optim


def quad_problem(dtype="float64"):
    """f(θ) = ½ Σ (θ − 3)², gradient θ − 3."""
    params = {"w": backend.asarray(np.zeros((3, 2)), dtype=dtype),
              "b": backend.asarray(np.zeros(2), dtype=dtype)}
    grads = {k: backend.xp.zeros_like(v) for k, v in params.items()}

    def compute():
        for k in params:
            grads[k][...] = params[k] - 3

    return params, grads, compute


@pytest.mark.parametrize("make", [
    lambda p, g: optim.SGD(p, g, lr=0.1),
    lambda p, g: optim.SGD(p, g, lr=0.05, momentum=0.9),
    lambda p, g: optim.Adagrad(p, g, lr=1.0),
    lambda p, g: optim.Adam(p, g, lr=0.1),
])
def test_optimizers_minimise_a_quadratic(make):
    params, grads, compute = quad_problem()
    opt = make(params, grads)
    for _ in range(500):
        compute()
        opt.step()
    for v in params.values():
        np.testing.assert_allclose(backend.to_numpy(v), 3.0, atol=1e-3)


def test_adam_matches_textbook_formula():
    params, grads, compute = quad_problem()
    opt = optim.Adam(params, grads, lr=0.01)
    theta = np.zeros(2)
    m = v = np.zeros(2)
    for t in range(1, 6):
        compute()
        opt.step()
        g = theta - 3
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        theta = theta - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(backend.to_numpy(params["b"]), theta, rtol=1e-10)


def test_sgd_momentum_matches_formula():
    params, grads, compute = quad_problem()
    opt = optim.SGD(params, grads, lr=0.1, momentum=0.5)
    theta, vel = np.zeros(2), np.zeros(2)
    for _ in range(4):
        compute()
        opt.step()
        vel = 0.5 * vel + (theta - 3)
        theta = theta - 0.1 * vel
    np.testing.assert_allclose(backend.to_numpy(params["b"]), theta, rtol=1e-12)


def test_float32_stays_float32():
    params, grads, compute = quad_problem("float32")
    for opt in (optim.Adam(params, grads), optim.Adagrad(params, grads),
                optim.SGD(params, grads, lr=0.1, momentum=0.9)):
        compute()
        opt.step()
        assert all(v.dtype == np.float32 for v in params.values())
        assert all(v.dtype == np.float32 for v in opt.state.values())


def test_clip_grad_norm_scales_to_max_norm():
    grads = {"a": backend.asarray(np.full(4, 3.0)), "b": backend.asarray(np.full(9, 4.0))}
    norm = optim.clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(np.sqrt(4 * 9 + 9 * 16))
    assert optim.grad_norm(grads) == pytest.approx(1.0, rel=1e-5)
    small = {"a": backend.asarray(np.full(4, 0.1))}
    optim.clip_grad_norm(small, 5.0)
    np.testing.assert_allclose(backend.to_numpy(small["a"]), 0.1)


def test_clip_grad_norm_reports_non_finite_without_scaling():
    grads = {"a": backend.asarray(np.array([1.0, np.inf]))}
    assert not np.isfinite(optim.clip_grad_norm(grads, 1.0))


def test_state_dict_round_trip():
    params, grads, compute = quad_problem()
    opt = optim.Adam(params, grads, lr=0.05)
    for _ in range(3):
        compute()
        opt.step()
    saved = opt.state_dict()
    p2 = {k: v.copy() for k, v in params.items()}
    g2 = {k: backend.xp.zeros_like(v) for k, v in params.items()}
    opt2 = optim.Adam(p2, g2, lr=0.05)
    opt2.load_state_dict(saved)
    compute()
    opt.step()
    g2["w"][...] = grads["w"]
    g2["b"][...] = grads["b"]
    opt2.step()
    for k in params:
        np.testing.assert_array_equal(backend.to_numpy(params[k]), backend.to_numpy(p2[k]))


@pytest.mark.parametrize("bad, match", [
    (lambda p, g: optim.SGD(p, g, lr=-1), "lr"),
    (lambda p, g: optim.SGD(p, g, lr=0.1, momentum=1.5), "momentum"),
    (lambda p, g: optim.Adam(p, g, betas=(1.0, 0.9)), "betas"),
    (lambda p, g: optim.Adam(p, {"w": g["w"]}), "same keys"),
    (lambda p, g: optim.Adam([1], g), "dicts"),
])
def test_invalid_arguments(bad, match):
    params, grads, _ = quad_problem()
    with pytest.raises((ValueError, TypeError), match=match):
        bad(params, grads)


# --- decoupled weight decay (AdamW) and the in-place update ------------------------------------
def named_problem(seed=0):
    """A model-like dict: a weight matrix, a bias and an embedding table, random gradients."""
    rng = np.random.default_rng(seed)
    shapes = {"out.W": (4, 3), "out.b": (3,), "src_embed.W": (5, 4)}
    params = {k: backend.asarray(rng.normal(size=s)) for k, s in shapes.items()}
    grads = {k: backend.xp.zeros_like(v) for k, v in params.items()}
    script = [{k: rng.normal(size=s) for k, s in shapes.items()} for _ in range(6)]
    return params, grads, script


def textbook_adamw(theta, gs, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
    """θ_t = θ_{t−1} − η (m̂_t / (√v̂_t + ε) + λ θ_{t−1}), written out step by step."""
    m = v = np.zeros_like(theta)
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * theta)
    return theta


@pytest.mark.parametrize("decay_biases, decay_embeddings", [(False, False), (True, True)])
def test_adamw_matches_the_hand_computed_update(decay_biases, decay_embeddings):
    params, grads, script = named_problem()
    start = {k: backend.to_numpy(v).copy() for k, v in params.items()}
    opt = optim.Adam(params, grads, lr=0.01, weight_decay=0.1, decay_biases=decay_biases,
                     decay_embeddings=decay_embeddings)
    for gs in script:
        for k, g in gs.items():
            grads[k][...] = backend.asarray(g)
        opt.step()
    decayed = {"out.W"} | ({"out.b"} if decay_biases else set()) | (
        {"src_embed.W"} if decay_embeddings else set())
    assert opt.decayed == decayed
    for k in params:
        want = textbook_adamw(start[k], [gs[k] for gs in script], 0.01,
                              0.1 if k in decayed else 0.0)
        np.testing.assert_allclose(backend.to_numpy(params[k]), want, rtol=1e-12, err_msg=k)


def test_excluded_params_are_not_decayed_and_decay_is_decoupled():
    """Zero gradients: Adam's step is 0, so only the decay moves θ, by exactly (1 − ηλ)."""
    params, grads, _ = named_problem()
    start = {k: backend.to_numpy(v).copy() for k, v in params.items()}
    opt = optim.Adam(params, grads, lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.step()
    np.testing.assert_allclose(backend.to_numpy(params["out.W"]), start["out.W"] * 0.95**3,
                               rtol=1e-14)
    for k in ("out.b", "src_embed.W"):
        np.testing.assert_array_equal(backend.to_numpy(params[k]), start[k])
    # decoupled: the moments never saw the decay (they stay exactly 0 with zero gradients)
    assert all(not np.any(backend.to_numpy(a)) for (s, _), a in opt.state.items() if s != "tmp")


def test_zero_weight_decay_is_plain_adam_exactly():
    runs = []
    for kw in ({}, {"weight_decay": 0.0, "decay_biases": True, "decay_embeddings": True}):
        params, grads, script = named_problem(seed=3)
        opt = optim.Adam(params, grads, lr=0.02, **kw)
        for gs in script:
            for k, g in gs.items():
                grads[k][...] = backend.asarray(g)
            opt.step()
        runs.append({k: backend.to_numpy(v) for k, v in params.items()})
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k], err_msg=k)


def test_decay_filter_on_the_real_models_names():
    import minis2s

    models = [minis2s.Seq2Seq(20, 20), minis2s.PointerGenerator(20, coverage=True),
              minis2s.AttentionSeq2Seq(20, 20, attention="additive", bidirectional=True)]
    for m in models:
        opt = optim.Adam(m.params, m.grads, weight_decay=0.01)
        skipped = set(m.params) - opt.decayed
        assert {"src_embed.W", "out.b"} <= skipped
        assert all(optim.is_bias(n) or optim.is_embedding(n) for n in skipped)
        assert all(p.ndim == 1 or n.endswith("embed.W") for n, p in m.params.items()
                   if n in skipped)
        assert {"out.W", "decoder.weight_hh_l0", "encoder.weight_ih_l0"} <= opt.decayed
    assert {"attn.v", "attn.w_c", "ptr.w_h", "attn.W_h"} <= optim.Adam(
        models[1].params, models[1].grads).decayed  # weight vectors are weights
    assert not {"attn.b_attn", "ptr.b_ptr", "encoder.bias_hh_l0_reverse", "tgt_embed.W"} & (
        optim.Adam(models[0].params, models[0].grads).decayed | optim.Adam(
            models[1].params, models[1].grads).decayed)


def test_adam_on_a_large_matrix_equals_the_textbook_loop_in_place():
    """The in-place update equals the textbook lines, keeps its buffers from step to step and
    allocates nothing of the parameter's size after the first step."""
    import tracemalloc

    rng = np.random.default_rng(1)
    theta0 = rng.normal(size=(256, 512))
    params = {"big.W": backend.asarray(theta0.copy())}
    grads = {"big.W": backend.xp.zeros_like(params["big.W"])}
    opt = optim.Adam(params, grads, lr=3e-3, weight_decay=0.01)
    p_id = id(params["big.W"])
    gs = [rng.normal(size=theta0.shape) for _ in range(4)]
    grads["big.W"][...] = gs[0]
    opt.step()  # allocates m, v and the scratch array once
    buffers = {k: id(a) for k, a in opt.state.items()}
    tracemalloc.start()
    try:
        for g in gs[1:]:
            grads["big.W"][...] = g
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < theta0.nbytes / 20, peak  # no temporary of the matrix's 1 MiB
    assert id(params["big.W"]) == p_id and {k: id(a) for k, a in opt.state.items()} == buffers
    want = textbook_adamw(theta0, gs, 3e-3, 0.01)
    np.testing.assert_allclose(backend.to_numpy(params["big.W"]), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kw, match", [
    ({"weight_decay": -0.1}, "weight_decay must be a finite number >= 0"),
    ({"weight_decay": "0.1"}, "weight_decay must be a number"),
    ({"decay_biases": 1}, "decay_biases must be True or False"),
])
def test_invalid_weight_decay_arguments(kw, match):
    params, grads, _ = named_problem()
    with pytest.raises((ValueError, TypeError), match=match):
        optim.Adam(params, grads, **kw)


def test_decay_larger_than_one_over_lr_is_refused_at_the_step():
    params, grads, _ = named_problem()
    opt = optim.Adam(params, grads, lr=1.0, weight_decay=1.0)
    with pytest.raises(ValueError, match="lr \\* weight_decay must be < 1"):
        opt.step()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_blocked_update_is_bit_identical_to_the_whole_array_update(dtype, monkeypatch):
    """The NumPy update over cache-sized blocks, spread over threads, does the same arithmetic
    element for element as one pass over each whole array on one thread (sizes that are not
    multiples of the block, a parameter smaller than a block, weight decay on one of them)."""
    rng = np.random.default_rng(3)
    shapes = {"enc.W": (37, 29), "enc.b": (5,), "out.W": (64, 100)}
    theta0 = {k: rng.normal(size=s) for k, s in shapes.items()}
    gs = [{k: rng.normal(size=s) for k, s in shapes.items()} for _ in range(3)]
    results = []
    for block, n_threads in ((10**9, "1"), (7, "1"), (7, "3"), (1000, "2")):
        monkeypatch.setenv("MINIS2S_THREADS", n_threads)
        params = {k: backend.asarray(v.copy(), dtype=dtype) for k, v in theta0.items()}
        grads = {k: backend.xp.zeros_like(v) for k, v in params.items()}
        opt = optim.Adam(params, grads, lr=1e-2, weight_decay=0.1)
        opt.block_size = block
        for g in gs:
            for k in grads:
                grads[k][...] = backend.asarray(g[k], dtype=dtype)
            opt.step()
        results.append({k: backend.to_numpy(v) for k, v in params.items()})
    for other in results[1:]:
        for k in shapes:
            np.testing.assert_array_equal(results[0][k], other[k])
    assert not np.array_equal(results[0]["enc.W"], theta0["enc.W"].astype(dtype))
