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
    y, c = lin.forward(x)
    lin.zero_grad()
    lin.backward(arr(np.ones((2, 3))), c)
    once = backend.to_numpy(lin.grads["W"]).copy()
    lin.backward(arr(np.ones((2, 3))), c)  # a second use adds up
    np.testing.assert_allclose(backend.to_numpy(lin.grads["W"]), 2 * once)
    emb = layers.Embedding(7, 3, dtype="float64", seed=0)
    out, c = emb.forward(arr(np.array([[1, 1]])))
    emb.zero_grad()
    emb.backward(arr(np.ones((1, 2, 3))), c)
    np.testing.assert_allclose(backend.to_numpy(emb.grads["W"])[1], 2.0)
    with pytest.raises(ValueError, match="in_dim"):
        layers.Linear(0, 3)


def test_flush_subnormals_zeroes_only_subnormal_entries():
    from minis2s.functional.loss import flush_subnormals

    for dtype in (np.float32, np.float64):
        tiny = np.finfo(dtype).tiny
        a = arr(np.array([tiny / 4, -tiny / 8, tiny, -tiny, 1.0, 0.0, -3.0], dtype=dtype))
        out = backend.to_numpy(flush_subnormals(a))
        np.testing.assert_array_equal(out, np.array([0, 0, tiny, -tiny, 1, 0, -3], dtype=dtype))


def test_softmax_gradients_hold_no_subnormal_numbers():
    """Very unlikely classes give probabilities below 1e-38 in float32; left as subnormal
    numbers they make the output layer's matrix products ~100x slower on x86."""
    logits = np.zeros((2, 3, 6), np.float32)
    logits[..., 0] = 95.0  # the others get exp(-95) ≈ 5e-42: subnormal in float32
    _, cache = softmax_cross_entropy_forward(arr(logits), arr(np.zeros((2, 3), int)),
                                             arr(np.ones((2, 3), bool)))
    d = backend.to_numpy(softmax_cross_entropy_backward(cache))
    tiny = np.finfo(np.float32).tiny
    assert not ((d != 0) & (np.abs(d) < tiny)).any()
    p = backend.to_numpy(softmax(arr(logits)))
    assert not ((p != 0) & (p < tiny)).any()
