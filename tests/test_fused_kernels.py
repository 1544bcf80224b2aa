"""The fused elementwise kernels of the GRU time loops (backend.ElementwiseKernel).

On the GPU each kernel is one ``cupy.ElementwiseKernel``; here, with no GPU, the very same text
runs as Python on NumPy arrays. These tests check that text: it is valid in both languages'
common subset, its math equals the in-place NumPy path, and the GRU's gradients stay right
with it switched on.
"""

import io
import re
import tokenize

import numpy as np
import pytest

from minis2s import backend
from minis2s.fast import gru as _gru
from minis2s.gradcheck import check_function
from tests.helpers import OnHost
from tests.test_gru import lengths_mask, make_params

F = OnHost(_gru)  # the fast tier (where the kernels live), results on the host


def dev(a):
    """An array, or a dict of arrays, on the active backend: the fast tier's functions are
    unchecked internals that take device arrays (the layer converts and checks)."""
    if isinstance(a, dict):
        return {k: backend.asarray(v) for k, v in a.items()}
    return backend.asarray(a)
FORWARD, BACKWARD = F.step_kernels()
KERNELS = [FORWARD, BACKWARD]


def run_kernel(kernel, *inputs, out_shape):
    """Call a kernel on the active backend with host inputs; return its outputs on the host."""
    outs = [backend.xp.empty(out_shape, dtype=inputs[0].dtype) for _ in kernel.outputs]
    kernel(*(backend.asarray(a) for a in inputs), *outs)
    return [backend.to_numpy(o) for o in outs]


@pytest.fixture
def fused_on():
    backend.use_fused(True)
    yield
    backend.use_fused(None)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_kernel_text_is_in_the_common_subset_of_c_and_python(kernel):
    """Only assignments ``name = expr;`` over the declared names, tanh/exp, + − * / and float
    literals with a decimal point (an integer literal would divide as an integer in C)."""
    names = set(kernel.inputs) | set(kernel.outputs) | {"tanh", "exp"}
    statements = [s.strip() for s in kernel.body.split(";")]
    assert statements[-1] == "", "every statement ends with ';'"
    assigned = set()
    for st in statements[:-1]:
        target, sep, expr = st.partition("=")
        assert sep and target.strip() in kernel.outputs, f"not an assignment to an output: {st}"
        assigned.add(target.strip())
        for tok in tokenize.generate_tokens(io.StringIO(expr).readline):
            if tok.type == tokenize.NAME:
                assert tok.string in names, f"unknown name {tok.string!r} in {st!r}"
            elif tok.type == tokenize.NUMBER:
                assert re.fullmatch(r"\d+\.\d+", tok.string), f"literal {tok.string!r}"
            elif tok.type == tokenize.OP:
                assert tok.string in "+-*/()", f"operator {tok.string!r} in {st!r}"
    assert assigned == set(kernel.outputs), "every output is written"


@pytest.mark.parametrize("bad", ["n", "i", "_x", "float", "for", "2x"])
def test_kernel_refuses_names_that_cupy_reserves_or_c_cannot_take(bad):
    with pytest.raises(ValueError, match="cannot name a kernel or an argument"):
        backend.ElementwiseKernel("k", ("a", bad), ("out",), "out = a;")


def test_kernel_refuses_a_name_used_twice():
    with pytest.raises(ValueError, match="used twice"):
        backend.ElementwiseKernel("k", ("a",), ("a",), "a = a;")


def test_kernel_call_checks_the_number_of_arrays():
    with pytest.raises(TypeError, match="gru_step_backward takes 7 inputs"):
        BACKWARD(np.zeros(3))


def test_use_fused_validates_and_resets():
    with pytest.raises(TypeError, match="use_fused takes True, False or None"):
        backend.use_fused("yes")
    backend.use_fused(True)
    assert backend.fused()
    backend.use_fused(None)
    assert backend.fused() == (backend.name == "cupy")


def test_forward_kernel_equals_the_cell_equations(rng):
    b, H = 4, 5
    gi = rng.normal(size=(b, 3 * H))
    gh = rng.normal(size=(b, 3 * H))
    b_hn, h_prev = rng.normal(size=H), rng.normal(size=(b, H))
    r, z, n, hn, r_hn, z_diff, h = run_kernel(
        FORWARD, gi[:, :H], gi[:, H:2 * H], gi[:, 2 * H:], gh[:, :H], gh[:, H:2 * H],
        gh[:, 2 * H:], b_hn, h_prev, out_shape=(b, H))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731  (inputs are a/2 for r and z)
    np.testing.assert_allclose(r, sig(2 * (gi[:, :H] + gh[:, :H])), rtol=1e-12)
    np.testing.assert_allclose(z, sig(2 * (gi[:, H:2 * H] + gh[:, H:2 * H])), rtol=1e-12)
    np.testing.assert_allclose(hn, gh[:, 2 * H:] + b_hn)
    np.testing.assert_allclose(n, np.tanh(gi[:, 2 * H:] + r * hn), rtol=1e-12)
    np.testing.assert_allclose(h, (1 - z) * n + z * h_prev, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(z_diff, z * (h_prev - n), rtol=1e-12)


def test_backward_kernel_equals_the_cell_backward(rng):
    b, H = 4, 5
    r, z = rng.uniform(0.1, 0.9, size=(2, b, H))
    n = np.tanh(rng.normal(size=(b, H)))
    hn, h_prev, g = rng.normal(size=(3, b, H))
    dh_z, da_n, da_r, da_z, dhn = run_kernel(BACKWARD, g, r, z, n, hn, r * hn,
                                             z * (h_prev - n), out_shape=(b, H))
    want_da_n = g * (1 - z) * (1 - n**2)
    np.testing.assert_allclose(dh_z, g * z)
    np.testing.assert_allclose(da_n, want_da_n, rtol=1e-12)
    np.testing.assert_allclose(dhn, want_da_n * r, rtol=1e-12)
    np.testing.assert_allclose(da_r, want_da_n * hn * r * (1 - r), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(da_z, g * (h_prev - n) * z * (1 - z), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_fused_path_equals_the_in_place_path(rng, dtype, num_layers, bidirectional):
    B, T, D, H = 5, 6, 3, 4
    params = make_params(rng, num_layers, bidirectional, d_in=D, hidden=H, dtype=dtype)
    x = rng.normal(size=(B, T, D)).astype(dtype)
    mask = lengths_mask([6, 2, 4, 6, 1], T)
    dirs = 2 if bidirectional else 1
    dout = rng.normal(size=(B, T, H * dirs)).astype(dtype)
    dh_n = rng.normal(size=(num_layers * dirs, B, H)).astype(dtype)

    def run():
        out, h_n, cache = F.gru_forward(dev(x), None, dev(mask), dev(params), num_layers,
                                        bidirectional)
        return (out, h_n) + F.gru_backward(dev(dout), dev(dh_n), cache)

    backend.use_fused(False)
    try:
        plain = run()
        backend.use_fused(True)
        fused = run()
    finally:
        backend.use_fused(None)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for a, b in zip(plain[:4], fused[:4]):
        assert b.dtype == dtype
        np.testing.assert_allclose(b, a, **tol)
    for k in plain[4]:
        np.testing.assert_allclose(fused[4][k], plain[4][k], **tol, err_msg=k)


def test_gradcheck_with_fused_kernels(rng, fused_on):
    params = make_params(rng, 1, True)
    mask = lengths_mask([5, 2, 4])

    def forward(x, **p):
        return F.gru_forward(dev(x), None, dev(mask), dev(p), 1, True)

    def backward(dout, cache):
        dx, dh0, grads = F.gru_backward(*dout, cache)
        return dict(x=dx, **grads)

    report = check_function(forward, backward, dict(x=rng.normal(size=(3, 5, 3)), **params))
    assert report.passed, report
