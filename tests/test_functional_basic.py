"""Gradient checks and properties of the linear, embedding and cross-entropy ops."""

import numpy as np
import pytest

from minis2s import backend, layers
from minis2s.functional import (
    embedding_backward,
    embedding_forward,
    linear_backward,
    linear_forward,
    log_softmax,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from minis2s.gradcheck import check_function, numerical_gradient, rel_error


def arr(a):
    return backend.asarray(a)


def test_linear_gradcheck(rng):
    inputs = dict(x=arr(rng.standard_normal((2, 3, 4))), W=arr(rng.standard_normal((4, 5))),
                  b=arr(rng.standard_normal(5)))

    def fwd(x, W, b):
        return linear_forward(x, W, b)

    def bwd(dy, cache):
        dx, dW, db = linear_backward(dy, cache)
        return {"x": dx, "W": dW, "b": db}

    report = check_function(fwd, bwd, inputs)
    assert report.passed, str(report)


def test_embedding_gradcheck_with_repeated_ids(rng):
    ids = arr(np.array([[1, 2, 1, 0], [3, 3, 3, 0]]))  # repeats must add up
    W = arr(rng.standard_normal((5, 3)))
    dout = arr(rng.standard_normal((2, 4, 3)))
    _, cache = embedding_forward(ids, W)
    dW = embedding_backward(dout, cache)
    num = numerical_gradient(lambda _: embedding_forward(ids, W)[0], W, df=dout)
    assert rel_error(dW, num) < 1e-9
    assert backend.to_numpy(dW)[4].tolist() == [0, 0, 0]  # unused row


def test_cross_entropy_value_and_gradcheck(rng):
    B, T, V = 3, 4, 6
    logits = arr(rng.standard_normal((B, T, V)))
    y = arr(rng.integers(0, V, (B, T)))
    mask = arr(np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool))
    loss, cache = softmax_cross_entropy_forward(logits, y, mask)
    lp = backend.to_numpy(log_softmax(logits))
    m = backend.to_numpy(mask)
    yy = backend.to_numpy(y)
    want = -sum(lp[b, t, yy[b, t]] for b in range(B) for t in range(T) if m[b, t]) / m.sum()
    assert float(loss) == pytest.approx(want, rel=1e-12)
    d = softmax_cross_entropy_backward(cache)
    num = numerical_gradient(lambda _: softmax_cross_entropy_forward(logits, y, mask)[0], logits)
    assert rel_error(d, num) < 1e-7
    assert np.all(backend.to_numpy(d)[~m] == 0)  # padded positions get exactly zero gradient


def test_softmax_and_log_softmax_are_stable_at_extreme_logits():
    o = arr(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=np.float32))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = backend.to_numpy(softmax(o))
        lp = backend.to_numpy(log_softmax(o))
    assert np.isfinite(p).all() and np.isfinite(lp).all()
    np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-6)
    y = arr(np.array([[1], [0]]))
    loss, cache = softmax_cross_entropy_forward(o[:, None, :], y, arr(np.ones((2, 1), bool)))
    assert np.isfinite(float(loss))
    assert np.isfinite(backend.to_numpy(softmax_cross_entropy_backward(cache))).all()


def test_ops_keep_float32(rng):
    x = arr(rng.standard_normal((2, 3, 4)).astype(np.float32))
    W = arr(rng.standard_normal((4, 5)).astype(np.float32))
    y, cache = linear_forward(x, W, arr(np.zeros(5, np.float32)))
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in linear_backward(y, cache))
    loss, c = softmax_cross_entropy_forward(y, arr(np.zeros((2, 3), int)),
                                            arr(np.ones((2, 3), bool)))
    assert loss.dtype == np.float32
    assert softmax_cross_entropy_backward(c).dtype == np.float32


def test_layers_accumulate_into_grads(rng):
    lin = layers.Linear(4, 3, dtype="float64", seed=0)
    x = arr(rng.standard_normal((2, 4)))
    y, c = lin.step_forward(x)
    lin.zero_grad()
    lin.step_backward(arr(np.ones((2, 3))), c)
    once = backend.to_numpy(lin.grads["W"]).copy()
    lin.step_backward(arr(np.ones((2, 3))), c)  # a second use adds up
    np.testing.assert_allclose(backend.to_numpy(lin.grads["W"]), 2 * once)
    emb = layers.Embedding(7, 3, dtype="float64", seed=0)
    out, c = emb.step_forward(arr(np.array([[1, 1]])))
    emb.zero_grad()
    emb.step_backward(arr(np.ones((1, 2, 3))), c)
    np.testing.assert_allclose(backend.to_numpy(emb.grads["W"])[1], 2.0)
    with pytest.raises(ValueError, match="in_dim"):
        layers.Linear(0, 3)


def test_layers_forward_keeps_the_cache_step_forward_returns_it(rng):
    """One layer convention: forward/backward keep the cache on the layer, step_forward /
    step_backward take an explicit one; both give the same numbers."""
    lin = layers.Linear(4, 3, dtype="float64", seed=1)
    x, dy = arr(rng.standard_normal((2, 5, 4))), arr(rng.standard_normal((2, 5, 3)))
    y = lin.forward(x)
    y2, cache = lin.step_forward(x)
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(y2))
    lin.zero_grad()
    dx = lin.backward(dy)
    g_kept = {k: backend.to_numpy(g).copy() for k, g in lin.grads.items()}
    lin.zero_grad()
    dx2 = lin.step_backward(dy, cache)
    np.testing.assert_array_equal(backend.to_numpy(dx), backend.to_numpy(dx2))
    for k, g in lin.grads.items():
        np.testing.assert_array_equal(backend.to_numpy(g), g_kept[k])
    num = numerical_gradient(lambda _: lin.step_forward(x)[0], x, df=dy)
    assert rel_error(dx, num) < 1e-9

    emb = layers.Embedding(6, 3, dtype="float64", seed=1)
    ids = arr(np.array([[1, 2, 1], [5, 0, 0]]))
    out = emb.forward(ids)
    assert out.shape == (2, 3, 3)
    emb.zero_grad()
    emb.backward(arr(np.ones((2, 3, 3))))
    np.testing.assert_allclose(backend.to_numpy(emb.grads["W"])[[1, 0]], [[2.0] * 3, [2.0] * 3])
    with pytest.raises(RuntimeError, match="before forward"):
        layers.Linear(2, 2).backward(arr(np.ones((1, 2), np.float32)))
    with pytest.raises(ValueError, match="x must have shape"):
        lin.forward(arr(np.ones((2, 5))))
    with pytest.raises(TypeError, match="ids"):
        emb.forward(arr(np.ones((2, 2))))


def test_functional_linear_and_embedding_check_their_arguments(rng):
    W = arr(rng.standard_normal((4, 5)))
    with pytest.raises(ValueError, match="x must have shape"):
        linear_forward(arr(np.ones((2, 3))), W)
    with pytest.raises(ValueError, match="b must have shape"):
        linear_forward(arr(np.ones((2, 4))), W, arr(np.ones(4)))
    with pytest.raises(TypeError, match="x must have the dtype of W"):
        linear_forward(arr(np.ones((2, 4), np.float32)), W)
    with pytest.raises(ValueError, match="ids holds id 9"):
        embedding_forward(arr(np.array([[1, 9]])), W)
    with pytest.raises(TypeError, match="ids must hold integer"):
        embedding_forward(arr(np.ones((1, 2))), W)


def test_flush_subnormals_zeroes_only_subnormal_entries():
    from minis2s.fast.loss import flush_subnormals

    for dtype in (np.float32, np.float64):
        tiny = np.finfo(dtype).tiny
        a = arr(np.array([tiny / 4, -tiny / 8, tiny, -tiny, 1.0, 0.0, -3.0], dtype=dtype))
        out = backend.to_numpy(flush_subnormals(a))
        np.testing.assert_array_equal(out, np.array([0, 0, tiny, -tiny, 1, 0, -3], dtype=dtype))


def test_fast_softmax_gradients_hold_no_subnormal_numbers():
    """Very unlikely classes give probabilities below 1e-38 in float32; left as subnormal
    numbers they make the output layer's matrix products ~100x slower on x86. The fast tier's
    loss (which the models train with by default) keeps them out of its gradient; the textbook
    loss equals it otherwise."""
    from minis2s.fast import loss as fast_loss

    logits = np.zeros((2, 3, 6), np.float32)
    logits[..., 0] = 95.0  # the others get exp(-95) ≈ 5e-42: subnormal in float32
    args = (arr(logits), arr(np.zeros((2, 3), int)), arr(np.ones((2, 3), bool)))
    loss, cache = fast_loss.softmax_cross_entropy_forward(*args)
    d = backend.to_numpy(fast_loss.softmax_cross_entropy_backward(cache))
    tiny = np.finfo(np.float32).tiny
    assert not ((d != 0) & (np.abs(d) < tiny)).any()
    ref_loss, ref_cache = softmax_cross_entropy_forward(*args)
    assert float(ref_loss) == pytest.approx(float(loss), rel=1e-6, abs=1e-30)
    ref_d = backend.to_numpy(softmax_cross_entropy_backward(ref_cache))
    np.testing.assert_allclose(d, ref_d, rtol=1e-6, atol=1e-20)  # the fast clamp: (V+1)e^c
