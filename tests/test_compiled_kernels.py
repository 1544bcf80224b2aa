"""The compiled (numba) step kernels of the GRU time loops (minis2s.fast.compiled).

Their equality with the textbook GRU in float64 is tests/test_tiers_gru.py's (the fast tier is
run there with the kernels off and on). Here: the float32 tanh's accuracy, the float32 kernels
against NumPy's in-place path, whole models with the kernels on, and the switch.
"""

import subprocess
import sys

import numpy as np
import pytest

from minis2s import backend
from minis2s.fast import compiled
from minis2s.fast import gru as fast
from tests.test_gru import lengths_mask, make_params

needs_numba = pytest.mark.skipif(not compiled.available(), reason="numba is not installed")


def ulps(got, want64):
    """|got − want| in units in the last place of float32 at want."""
    spacing = np.spacing(np.abs(want64).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want64) / spacing


def test_float32_tanh_is_within_7_ulps_on_a_dense_grid():
    x = np.linspace(-12, 12, 480_001, dtype=np.float32)
    err = ulps(compiled.tanh_f32(x), np.tanh(x.astype(np.float64)))
    assert err.max() <= 7, err.max()
    assert compiled.tanh_f32(np.float32(0.0)) == 0.0
    y = compiled.tanh_f32(np.array([-1e30, -30, 30, 1e30], dtype=np.float32))
    assert np.all(np.abs(np.abs(y) - 1) <= 6e-8) and np.all(np.sign(y) == [-1, -1, 1, 1])


def test_the_tanh_accuracy_check_can_fail():
    """A cruder cut of Lambert's fraction (6 terms) is far off: the 7-ulp bound means something."""
    P, Q = compiled._lambert_polynomials(6)
    x = np.linspace(0, 9, 10_001)
    crude = x * np.polynomial.polynomial.polyval(x * x, P) / np.polynomial.polynomial.polyval(
        x * x, Q)
    assert ulps(crude.astype(np.float32), np.tanh(x)).max() > 1000


@needs_numba
def test_compiled_float32_tanh_equals_its_python_form():
    k = compiled._compile_tanh_f32()
    import numba

    @numba.njit
    def apply(x, out):
        for i in range(x.shape[0]):
            out[i] = k(x[i])

    x = np.linspace(-10, 10, 20_001, dtype=np.float32)
    out = np.empty_like(x)
    apply(x, out)
    assert np.abs(out - compiled.tanh_f32(x)).max() <= 2 * np.spacing(np.float32(1))


def _run(rng, on, dtype, bidirectional=True, num_layers=2):
    B, T, D, H = 7, 9, 5, 6
    x = rng.normal(size=(B, T, D)).astype(dtype)
    mask = lengths_mask([9, 3, 9, 1, 5, 8, 2], T)
    params = {k: v.astype(dtype) for k, v in
              make_params(rng, num_layers, bidirectional, d_in=D, hidden=H).items()}
    dout = rng.normal(size=(B, T, H * (2 if bidirectional else 1))).astype(dtype)
    dh_n = rng.normal(size=(num_layers * (2 if bidirectional else 1), B, H)).astype(dtype)
    compiled.use(on)
    try:
        out, h_n, cache = fast.gru_forward(x, None, mask, params, num_layers, bidirectional)
        dx, dh0, grads = fast.gru_backward(dout, dh_n, cache)
    finally:
        compiled.use(None)
    return out, h_n, dx, dh0, grads


@needs_numba
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_float32_kernels_equal_the_in_place_path(bidirectional):
    """In float32 the kernels' tanh differs from NumPy's by a few ulps: results agree to
    float32 rounding, and the kernels really ran (they are not bit-identical)."""
    on = _run(np.random.default_rng(1), True, np.float32, bidirectional)
    off = _run(np.random.default_rng(1), False, np.float32, bidirectional)
    for a, b in zip(on[:4], off[:4]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * max(1.0, np.abs(b).max()))
    for k in off[4]:
        np.testing.assert_allclose(on[4][k], off[4][k], rtol=0,
                                   atol=2e-5 * max(1.0, np.abs(off[4][k]).max()), err_msg=k)
    assert any(not np.array_equal(a, b) for a, b in zip(on[:4], off[:4]))


@needs_numba
def test_an_attention_model_trains_alike_with_the_kernels_on_and_off():
    import minis2s
    from minis2s import optim
    from minis2s.train import train_step

    rng = np.random.default_rng(0)
    src = rng.integers(3, 20, (8, 11))
    src[2, 6:] = 0
    tgt = rng.integers(3, 20, (8, 7))
    tgt[:, 0], tgt[:, -1] = 1, 2  # BOS ... EOS
    tgt[5, 3], tgt[5, 4:] = 2, 0  # a shorter row, padded
    losses = {}
    for on in (True, False):
        compiled.use(on)
        try:
            model = minis2s.AttentionSeq2Seq(20, 20, 8, 16, seed=3)
            opt = optim.Adam(model.params, model.grads, lr=1e-2)
            losses[on] = [train_step(model, opt, src, tgt, 5.0)[0] for _ in range(5)]
        finally:
            compiled.use(None)
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
    assert losses[True][-1] < losses[True][0]


def test_the_switch():
    with pytest.raises(TypeError, match="True, False or None"):
        compiled.use("yes")
    compiled.use(False)
    try:
        assert not compiled.enabled()
    finally:
        compiled.use(None)
    assert compiled.enabled() == compiled.available()


def test_on_without_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(compiled, "_numba", lambda: None)
    assert not compiled.available() and not compiled.enabled()
    with pytest.raises(ImportError, match=r'pip install "minis2s\[numba\]"'):
        compiled.use(True)
    with pytest.raises(ImportError, match="numba"):
        compiled.kernels.__wrapped__(np.float32)


def test_off_on_cupy(monkeypatch):
    monkeypatch.setattr(backend, "name", "cupy")
    assert not compiled.enabled()


@pytest.mark.parametrize("value,ok", [("0", True), ("2", False), ("yes", False)])
def test_the_environment_variable(value, ok):
    code = "from minis2s.fast import compiled; print(compiled.enabled())"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "MINIS2S_NUMBA": value})
    if ok:
        assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr
    else:
        assert res.returncode == 2
        assert res.stderr.strip() == (f"minis2s: error: MINIS2S_NUMBA={value}: MINIS2S_NUMBA "
                                      f"must be 0 or 1; got {value!r}")
