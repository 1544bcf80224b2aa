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
