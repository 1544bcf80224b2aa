"""Tests of minis2s/functional/gru.py (the reference tier) and the GRU layer: gradient checks
(float64, padded batches), steps vs sequences, an independent NumPy evaluation of torch.nn.GRU's
equations, torch.nn.GRU itself (when installed), padding invariance and dtypes. The fast tier
(minis2s.fast.gru) is proven equal to the reference in tests/test_tiers_gru.py."""

import warnings

import numpy as np
import pytest

from minis2s import backend, layers
from minis2s.coursework.oracle import gru_rowwise as reference_gru  # the one NumPy reference
from minis2s.functional import gru as _gru
from minis2s.functional.activations import sigmoid
from minis2s.gradcheck import check_function
from tests.helpers import OnHost

F = OnHost(_gru)  # results on the host, under NumPy or CuPy

B, T, D, H = 3, 5, 3, 4
LENGTHS = np.array([5, 2, 4])  # one row full length, the others padded


def to_np(a):
    return backend.to_numpy(a)


def lengths_mask(lengths, T=T):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def make_params(rng, num_layers, bidirectional, d_in=D, hidden=H, dtype=np.float64):
    """Random weights and (non-zero) biases under PyTorch's names."""
    dirs = 2 if bidirectional else 1
    params = {}
    for layer in range(num_layers):
        k_in = d_in if layer == 0 else hidden * dirs
        for suffix in ("", "_reverse")[:dirs]:
            k = f"l{layer}{suffix}"
            params[f"weight_ih_{k}"] = rng.normal(0, 0.6, (3 * hidden, k_in)).astype(dtype)
            params[f"weight_hh_{k}"] = rng.normal(0, 0.6, (3 * hidden, hidden)).astype(dtype)
            params[f"bias_ih_{k}"] = rng.normal(0, 0.3, (3 * hidden,)).astype(dtype)
            params[f"bias_hh_{k}"] = rng.normal(0, 0.3, (3 * hidden,)).astype(dtype)
    return params


CONFIGS = [(1, False), (2, False), (1, True), (2, True)]
CONFIG_IDS = ["1layer", "2layers", "bidir", "2layers-bidir"]


def seq_inputs(rng, num_layers, bidirectional, dtype=np.float64):
    dirs = 2 if bidirectional else 1
    x = rng.normal(size=(B, T, D)).astype(dtype)
    h0 = rng.normal(0, 0.5, (num_layers * dirs, B, H)).astype(dtype)
    return x, h0, make_params(rng, num_layers, bidirectional, dtype=dtype)


# ------------------------------------------------------------------------------------------
# Gradient checks
# ------------------------------------------------------------------------------------------
def test_cell_gradcheck(rng):
    x = rng.normal(size=(B, D))
    h_prev = rng.normal(size=(B, H))
    p = make_params(rng, 1, False)
    inputs = dict(x=x, h_prev=h_prev, W_ih=p["weight_ih_l0"], W_hh=p["weight_hh_l0"],
                  b_ih=p["bias_ih_l0"], b_hh=p["bias_hh_l0"])

    def backward(dh, cache):
        names = ("x", "h_prev", "W_ih", "W_hh", "b_ih", "b_hh")
        return dict(zip(names, F.gru_cell_backward(dh, cache)))

    report = check_function(F.gru_cell_forward, backward, inputs)
    assert [r.name for r in report.rows] == list(inputs)
    assert report.passed, str(report)


@pytest.mark.parametrize("num_layers,bidirectional", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
def test_sequence_gradcheck(rng, num_layers, bidirectional, padded):
    x, h0, params = seq_inputs(rng, num_layers, bidirectional)
    mask = lengths_mask(LENGTHS) if padded else None

    def forward(x, h0, **weights):
        out, h_n, cache = F.gru_forward(x, h0, mask, weights, num_layers, bidirectional)
        return (out, h_n), cache

    def backward(douts, cache):
        dout, dh_n = douts
        dx, dh0, grads = F.gru_backward(dout, dh_n, cache)
        assert set(grads) == set(params)
        return dict(x=dx, h0=dh0, **grads)

    report = check_function(forward, backward, dict(x=x, h0=h0, **params))
    assert len(report.rows) == 2 + len(params)
    assert report.passed, str(report)


def test_gradcheck_catches_a_wrong_gradient(rng):
    """The check above can fail: a backward that drops the dh_n path is caught."""
    x, h0, params = seq_inputs(rng, 1, False)

    def forward(x, h0):
        out, h_n, cache = F.gru_forward(x, h0, None, params, 1, False)
        return (out, h_n), cache

    def backward(douts, cache):
        dx, dh0, _ = F.gru_backward(douts[0], None, cache)
        return dict(x=dx, h0=dh0)

    assert not check_function(forward, backward, dict(x=x, h0=h0)).passed


@pytest.mark.parametrize("which", ["dout", "dh_n", "none"])
def test_backward_with_one_upstream_gradient_none(rng, which):
    x, h0, params = seq_inputs(rng, 2, True)
    mask = lengths_mask(LENGTHS)
    out, h_n, cache = F.gru_forward(x, h0, mask, params, 2, True)
    dout = rng.normal(size=out.shape)
    dh_n = rng.normal(size=h_n.shape)
    full = F.gru_backward(dout if which == "dout" else None,
                          dh_n if which == "dh_n" else None, cache)
    zero_out, zero_hn = np.zeros_like(out), np.zeros_like(h_n)
    explicit = F.gru_backward(dout if which == "dout" else zero_out,
                              dh_n if which == "dh_n" else zero_hn, cache)
    np.testing.assert_array_equal(full[0], explicit[0])
    np.testing.assert_array_equal(full[1], explicit[1])
    for k in params:
        np.testing.assert_array_equal(full[2][k], explicit[2][k])
    if which == "none":
        assert not full[0].any() and not full[1].any()


# ------------------------------------------------------------------------------------------
# The sequence vs the cell; steps vs sequences
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_layers", [1, 2])
def test_stack_steps_equal_sequence(rng, num_layers):
    x, h0, params = seq_inputs(rng, num_layers, False)
    out, h_n, cache = F.gru_forward(x, h0, None, params, num_layers, False)
    h = h0
    step_caches = []
    for t in range(T):
        out_t, h, c = F.gru_stack_step_forward(x[:, t], h, params, num_layers)
        np.testing.assert_allclose(out_t, out[:, t], rtol=1e-12, atol=1e-13)
        step_caches.append(c)
    np.testing.assert_allclose(h, h_n, rtol=1e-12, atol=1e-13)

    dout = rng.normal(size=out.shape)
    dh_n = rng.normal(size=h_n.shape)
    dx, dh0, grads = F.gru_backward(dout, dh_n, cache)
    dh = dh_n
    step_grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx_steps = np.zeros_like(x)
    for t in range(T - 1, -1, -1):
        dx_steps[:, t], dh, g = F.gru_stack_step_backward(dout[:, t], dh, step_caches[t])
        for k, v in g.items():
            step_grads[k] += v
    np.testing.assert_allclose(dx_steps, dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh, dh0, rtol=1e-10, atol=1e-12)
    assert set(grads) == set(params)
    for k in params:
        np.testing.assert_allclose(step_grads[k], grads[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_stack_step_gradcheck(rng):
    num_layers = 2
    x_t = rng.normal(size=(B, D))
    h = rng.normal(size=(num_layers, B, H))
    params = make_params(rng, num_layers, False)

    def forward(x_t, h, **weights):
        out_t, h_new, cache = F.gru_stack_step_forward(x_t, h, weights, num_layers)
        return (out_t, h_new), cache

    def backward(douts, cache):
        dx_t, dh, grads = F.gru_stack_step_backward(douts[0], douts[1], cache)
        return dict(x_t=dx_t, h=dh, **grads)

    report = check_function(forward, backward, dict(x_t=x_t, h=h, **params))
    assert report.passed, str(report)


def test_cell_loop_equals_gru_forward_padded(rng):
    """The sequence (a masked loop over the cell) equals the cell run row by row over each
    row's real steps."""
    x, h0, params = seq_inputs(rng, 1, False)
    out, h_n, _ = F.gru_forward(x, h0, lengths_mask(LENGTHS), params, 1, False)
    w = [params[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    for b, L in enumerate(LENGTHS):
        h = h0[0, b:b + 1]
        for t in range(L):
            h, _ = F.gru_cell_forward(x[b:b + 1, t], h, *w)
            np.testing.assert_allclose(out[b, t], h[0], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(h_n[0, b], h[0], rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------------------------------
# Against torch.nn.GRU's equations (independent NumPy) and torch itself
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_layers,bidirectional", CONFIGS, ids=CONFIG_IDS)
def test_matches_reference_equations(rng, num_layers, bidirectional):
    x, h0, params = seq_inputs(rng, num_layers, bidirectional)
    x[~lengths_mask(LENGTHS)] = 7.0  # garbage on padded steps must not leak
    out, h_n, _ = F.gru_forward(x, h0, lengths_mask(LENGTHS), params, num_layers, bidirectional)
    ref_out, ref_hn = reference_gru(x, h0, LENGTHS, params, num_layers, bidirectional)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_n, ref_hn, rtol=1e-12, atol=1e-13)


def test_matches_reference_equations_without_mask_or_h0(rng):
    x, _, params = seq_inputs(rng, 2, True)
    out, h_n, _ = F.gru_forward(x, None, None, params, 2, True)
    ref_out, ref_hn = reference_gru(x, np.zeros((4, B, H)), [T] * B, params, 2, True)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_n, ref_hn, rtol=1e-12, atol=1e-13)


@pytest.mark.torch
@pytest.mark.parametrize("num_layers,bidirectional", [(2, True), (1, False)],
                         ids=["2layers-bidir", "1layer"])
def test_matches_torch_gru_packed(rng, num_layers, bidirectional):
    torch = pytest.importorskip("torch")
    lengths = np.array([5, 2, 4, 1])  # unsorted: enforce_sorted=False
    nb, dirs = len(lengths), 2 if bidirectional else 1
    torch.manual_seed(0)
    ref = torch.nn.GRU(D, H, num_layers=num_layers, bidirectional=bidirectional,
                       batch_first=True).double()
    with torch.no_grad():  # non-zero biases too
        for p in ref.parameters():
            p.normal_(0, 0.5)
    state = {k: v.detach().numpy().copy() for k, v in ref.state_dict().items()}
    gru = layers.GRU(D, H, num_layers, bidirectional, dtype="float64")
    gru.load_torch_weights(state)

    x = rng.normal(size=(nb, T, D))
    h0 = rng.normal(size=(num_layers * dirs, nb, H))
    out, h_n = gru.forward(x, h0, lengths_mask(lengths))
    dout = rng.normal(size=out.shape) * lengths_mask(lengths)[:, :, None]
    dh_n = rng.normal(size=h_n.shape)
    gru.zero_grad()
    dx, dh0 = gru.backward(dout, dh_n)

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths),
                                                     batch_first=True, enforce_sorted=False)
    out_p, h_nt = ref(packed, h0t)
    out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=T)
    ((out_t * torch.tensor(dout)).sum() + (h_nt * torch.tensor(dh_n)).sum()).backward()

    np.testing.assert_allclose(to_np(out), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(h_n), h_nt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(dx), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(dh0), h0t.grad.numpy(), rtol=1e-10, atol=1e-12)
    names = dict(ref.named_parameters())
    assert set(names) == set(gru.grads)
    for k, p in names.items():
        np.testing.assert_allclose(to_np(gru.grads[k]), p.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=k)


# ------------------------------------------------------------------------------------------
# Padding
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_layers,bidirectional", [(2, True), (1, False)],
                         ids=["2layers-bidir", "1layer"])
@pytest.mark.parametrize("lengths", [LENGTHS, [5, 4, 2], [3, 1, 4]],
                         ids=["unsorted", "sorted", "none-full-length"])
def test_padding_invariance(rng, num_layers, bidirectional, lengths):
    x, h0, params = seq_inputs(rng, num_layers, bidirectional)
    mask = lengths_mask(lengths)
    out, h_n, cache = F.gru_forward(x, h0, mask, params, num_layers, bidirectional)
    dout = rng.normal(size=out.shape)  # non-zero on padded steps too: must be ignored
    dh_n = rng.normal(size=h_n.shape)
    dx, dh0, grads = F.gru_backward(dout, dh_n, cache)

    summed = {k: np.zeros_like(v) for k, v in params.items()}
    for b, L in enumerate(lengths):
        o1, hn1, c1 = F.gru_forward(x[b:b + 1, :L], h0[:, b:b + 1], None, params, num_layers,
                                    bidirectional)
        np.testing.assert_allclose(out[b, :L], o1[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h_n[:, b], hn1[:, 0], rtol=1e-10, atol=1e-12)
        dx1, dh01, g1 = F.gru_backward(dout[b:b + 1, :L], dh_n[:, b:b + 1], c1)
        np.testing.assert_allclose(dx[b, :L], dx1[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dh0[:, b], dh01[:, 0], rtol=1e-10, atol=1e-12)
        assert not dx[b, L:].any()
        for k in params:
            summed[k] += g1[k]
    for k in params:
        np.testing.assert_allclose(grads[k], summed[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_out_is_exactly_zero_on_padded_steps(rng, bidirectional):
    x, h0, params = seq_inputs(rng, 2, bidirectional)
    mask = lengths_mask(LENGTHS)
    out, _, _ = F.gru_forward(x, h0, mask.astype(np.int64), params, 2, bidirectional)
    assert np.all(out[~mask] == 0.0)
    assert np.all(out[mask] != 0.0)


def test_zero_length_row_keeps_h0(rng):
    x, h0, params = seq_inputs(rng, 1, True)
    lengths = np.array([5, 0, 3])
    out, h_n, cache = F.gru_forward(x, h0, lengths_mask(lengths), params, 1, True)
    assert not out[1].any()
    np.testing.assert_array_equal(h_n[:, 1], h0[:, 1])
    dh_n = rng.normal(size=h_n.shape)
    dx, dh0, _ = F.gru_backward(rng.normal(size=out.shape), dh_n, cache)
    np.testing.assert_array_equal(dh0[:, 1], dh_n[:, 1])
    assert not dx[1].any()


# ------------------------------------------------------------------------------------------
# dtypes, numerics and validation
# ------------------------------------------------------------------------------------------
def test_float32_stays_float32(rng):
    x, h0, params = seq_inputs(rng, 2, True, dtype=np.float32)
    out, h_n, cache = F.gru_forward(x, h0, lengths_mask(LENGTHS), params, 2, True)
    assert out.dtype == h_n.dtype == np.float32
    dx, dh0, grads = F.gru_backward(np.ones_like(out), np.ones_like(h_n), cache)
    assert dx.dtype == dh0.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    ref_out, _ = reference_gru(x.astype(np.float64), h0.astype(np.float64), LENGTHS,
                               {k: v.astype(np.float64) for k, v in params.items()}, 2, True)
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)

    uni = make_params(rng, 2, False, dtype=np.float32)
    out_t, h_new, c = F.gru_stack_step_forward(x[:, 0], h0[:2], uni, 2)
    assert out_t.dtype == h_new.dtype == np.float32
    dx_t, dh, g = F.gru_stack_step_backward(np.ones_like(out_t), None, c)
    assert dx_t.dtype == dh.dtype == np.float32
    assert all(v.dtype == np.float32 for v in g.values())


def test_the_sigmoid_of_the_gru_is_stable_and_exact_enough():
    assert _gru.sigmoid is sigmoid  # the one σ, of functional/activations.py
    a = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            s = backend.to_numpy(sigmoid(backend.asarray(a)))
    assert s.dtype == np.float32
    np.testing.assert_allclose(s, np.exp(-np.logaddexp(0, -a.astype(np.float64))), atol=1e-7)
    assert s[0] == 0.0 and s[-1] == 1.0


def test_extreme_inputs_give_no_warnings(rng):
    x, h0, params = seq_inputs(rng, 1, True, dtype=np.float32)
    x *= 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out, h_n, cache = F.gru_forward(x, h0, lengths_mask(LENGTHS), params, 1, True)
            F.gru_backward(np.ones_like(out), None, cache)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0


def test_params_may_hold_other_keys(rng):
    x, h0, params = seq_inputs(rng, 1, False)
    out, _, cache = F.gru_forward(x, h0, None, dict(params, other=np.zeros(3)), 1, False)
    _, _, grads = F.gru_backward(out, None, cache)
    assert set(grads) == set(params)


def test_validation_errors(rng):
    x, h0, params = seq_inputs(rng, 1, False)
    with pytest.raises(ValueError, match="mask"):
        F.gru_forward(x, h0, np.array([[0, 1, 1, 1, 1]] * B), params, 1, False)
    with pytest.raises(ValueError, match="mask"):
        F.gru_forward(x, h0, np.ones((B, T + 1), bool), params, 1, False)
    with pytest.raises(TypeError, match="mask"):
        F.gru_forward(x, h0, np.ones((B, T)), params, 1, False)
    with pytest.raises(ValueError, match="weight_ih_l0_reverse"):
        F.gru_forward(x, None, None, params, 1, True)
    with pytest.raises(ValueError, match="h0"):
        F.gru_forward(x, h0[:, :2], None, params, 1, False)
    with pytest.raises(ValueError, match=r"weight_ih_l0.*\(3H, D\)"):
        F.gru_forward(x[:, :, :2], h0, None, params, 1, False)
    with pytest.raises(TypeError, match="dtype float32"):
        F.gru_forward(x.astype(np.float32), None, None, params, 1, False)
    with pytest.raises(TypeError, match="num_layers"):
        F.gru_forward(x, h0, None, params, 1.0, False)
    with pytest.raises(ValueError, match="x"):
        F.gru_forward(x[0], None, None, params, 1, False)
    out, h_n, cache = F.gru_forward(x, h0, None, params, 1, False)
    with pytest.raises(ValueError, match="dout"):
        F.gru_backward(out[:, :2], None, cache)
    with pytest.raises(ValueError, match="dh_n"):
        F.gru_backward(None, h_n[:, :1], cache)
    with pytest.raises(TypeError, match="cache"):
        F.gru_backward(out, None, (1, 2))
    with pytest.raises(ValueError, match="h"):
        F.gru_stack_step_forward(x[:, 0], h0[:, :1], params, 1)


# ------------------------------------------------------------------------------------------
# The layer
# ------------------------------------------------------------------------------------------
def test_layer_forward_backward_accumulates(rng):
    gru = layers.GRU(D, H, num_layers=2, bidirectional=True, dtype="float64", seed=3)
    assert set(gru.params) == set(gru.grads)
    x = rng.normal(size=(B, T, D))
    mask = lengths_mask(LENGTHS)
    out, h_n = gru.forward(x, None, mask)
    assert out.shape == (B, T, 2 * H) and h_n.shape == (4, B, H)
    dout = rng.normal(size=out.shape)
    dx, dh0 = gru.backward(dout)
    assert dx.shape == x.shape and dh0.shape == (4, B, H)
    first = {k: g.copy() for k, g in gru.grads.items()}
    for k, g in first.items():
        assert g.shape == gru.params[k].shape and np.abs(g).sum() > 0, k
    gru.backward(dout)  # a second backward adds
    for k in first:
        np.testing.assert_allclose(to_np(gru.grads[k]), 2 * to_np(first[k]), rtol=1e-14,
                                   err_msg=k)
    gru.zero_grad()
    assert all(not g.any() for g in gru.grads.values())


def test_layer_steps_accumulate(rng):
    gru = layers.GRU(D, H, num_layers=2, dtype="float64", seed=1)
    x = rng.normal(size=(B, T, D))
    out, h_n = gru.forward(x)
    dout = rng.normal(size=out.shape)
    gru.backward(dout)
    seq_grads = {k: g.copy() for k, g in gru.grads.items()}
    gru.zero_grad()
    h = np.zeros((2, B, H))
    caches = []
    for t in range(T):
        _, h, c = gru.step_forward(x[:, t], h)
        caches.append(c)
    np.testing.assert_allclose(to_np(h), to_np(h_n), rtol=1e-12, atol=1e-13)
    dh = None
    for t in range(T - 1, -1, -1):
        dx_t, dh = gru.step_backward(dout[:, t], dh, caches[t])
        assert dx_t.shape == (B, D) and dh.shape == (2, B, H)
    for k in seq_grads:
        np.testing.assert_allclose(to_np(gru.grads[k]), to_np(seq_grads[k]), rtol=1e-10,
                                   atol=1e-12, err_msg=k)
    bidir = layers.GRU(D, H, bidirectional=True, dtype="float64")
    with pytest.raises(ValueError, match="unidirectional"):
        bidir.step_forward(x[:, 0], np.zeros((2, B, H)))
