"""The two tiers of the GRU: the fast tier (minis2s.fast.gru) equals the reference, the textbook
loop over the cell (minis2s.functional.gru), in float64, forward and backward, on padded batches,
in both directions and with 1–3 layers, with the fused kernels off and on; the reference passes
gradient checks; the GRU layer gives the same results on both tiers.
"""

import inspect

import numpy as np
import pytest

from minis2s import backend, layers
from minis2s.fast import gru as fast
from minis2s.functional import gru as ref
from minis2s.gradcheck import check_function
from tests.helpers import to_host
from tests.test_gru import lengths_mask, make_params

B, T, D, H = 5, 6, 3, 4
LENGTHS = {
    "unsorted": [4, 6, 1, 3, 6],  # ragged and unsorted, two full-length rows, a length-1 row
    "sorted": [6, 6, 4, 3, 1],  # already longest first: the fast tier does not reorder
    "no-mask": None,
}
UPSTREAM = ["both", "dout-only", "dh_n-only"]


def dev(a):
    """On the active backend (the fast tier's functions take device arrays; they are unchecked
    internals, and the layer converts and checks first)."""
    if a is None:
        return None
    if isinstance(a, dict):
        return {k: backend.asarray(v) for k, v in a.items()}
    return backend.asarray(a)


def assert_close(got, want, what, rtol=1e-12):
    """|got − want| ≤ rtol · max|want|, elementwise (relative to the array's scale)."""
    got, want = to_host(got), to_host(want)
    assert got.shape == want.shape and got.dtype == want.dtype, what
    scale = float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=0, atol=rtol * max(scale, 1e-300), err_msg=what)


def inputs(rng, num_layers, bidirectional, lengths, with_h0, upstream):
    dirs = 2 if bidirectional else 1
    x = rng.normal(size=(B, T, D))
    mask = None if lengths is None else lengths_mask(lengths, T)
    if mask is not None:
        x[~mask] = 7.0  # garbage on padded steps must not leak
    h0 = rng.normal(0, 0.5, (num_layers * dirs, B, H)) if with_h0 else None
    params = make_params(rng, num_layers, bidirectional)
    dout = rng.normal(size=(B, T, H * dirs))  # non-zero on padded steps too: ignored
    dh_n = rng.normal(size=(num_layers * dirs, B, H))
    dout = None if upstream == "dh_n-only" else dout
    dh_n = None if upstream == "dout-only" else dh_n
    return x, h0, mask, params, dout, dh_n


def run_both(x, h0, mask, params, num_layers, bidirectional, dout, dh_n):
    """(out, h_n, dx, dh0, grads) of the reference and of the fast tier."""
    results = []
    for tier, to in ((ref, lambda a: a), (fast, dev)):
        out, h_n, cache = tier.gru_forward(to(x), to(h0), to(mask), to(params), num_layers,
                                           bidirectional)
        dx, dh0, grads = tier.gru_backward(to(dout), to(dh_n), cache)
        results.append((out, h_n, dx, dh0, grads))
    return results


def assert_tiers_equal(results, params):
    (out, h_n, dx, dh0, grads), (f_out, f_h_n, f_dx, f_dh0, f_grads) = results
    assert_close(f_out, out, "out")
    assert_close(f_h_n, h_n, "h_n")
    assert_close(f_dx, dx, "dx")
    assert_close(f_dh0, dh0, "dh0")
    assert set(f_grads) == set(grads) == set(params)
    for k in params:
        assert_close(f_grads[k], grads[k], k)


# ------------------------------------------------------------------------------------------
# fast == reference
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("upstream", UPSTREAM)
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "no-h0"])
@pytest.mark.parametrize("lengths", list(LENGTHS.values()), ids=list(LENGTHS))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_fast_sequence_equals_reference(rng, num_layers, bidirectional, lengths, with_h0,
                                        upstream):
    x, h0, mask, params, dout, dh_n = inputs(rng, num_layers, bidirectional, lengths, with_h0,
                                             upstream)
    results = run_both(x, h0, mask, params, num_layers, bidirectional, dout, dh_n)
    assert_tiers_equal(results, params)
    out = to_host(results[0][0])
    if mask is not None:  # and both are the packed-sequence GRU: 0 exactly on padding
        assert not out[~mask].any() and not to_host(results[1][0])[~mask].any()


@pytest.fixture
def fused_on():
    backend.use_fused(True)
    try:
        yield
    finally:
        backend.use_fused(None)


@pytest.mark.parametrize("upstream", UPSTREAM)
@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "no-h0"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_fast_sequence_with_fused_kernels_equals_reference(rng, fused_on, num_layers,
                                                           bidirectional, with_h0, upstream):
    assert backend.fused()
    x, h0, mask, params, dout, dh_n = inputs(rng, num_layers, bidirectional,
                                             LENGTHS["unsorted"], with_h0, upstream)
    assert_tiers_equal(run_both(x, h0, mask, params, num_layers, bidirectional, dout, dh_n),
                       params)


@pytest.mark.parametrize("shape", [(0, 4), (3, 0)], ids=["no-rows", "no-steps"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_fast_sequence_equals_reference_on_empty_batches(rng, shape, bidirectional):
    """No rows, or no steps: the same (empty) out and dx on both tiers, and h_n = h0."""
    Bn, Tn = shape
    dirs = 2 if bidirectional else 1
    x = rng.normal(size=(Bn, Tn, D))
    h0 = rng.normal(size=(dirs, Bn, H))
    dh_n = rng.normal(size=(dirs, Bn, H))
    params = make_params(rng, 1, bidirectional)
    dout = rng.normal(size=(Bn, Tn, H * dirs))
    results = run_both(x, h0, None, params, 1, bidirectional, dout, dh_n)
    assert_tiers_equal(results, params)
    assert_close(results[1][1], h0, "h_n = h0")


def test_fast_tier_keeps_only_the_real_positions(rng):
    """The fast tier's caches are packed: one row per real (step, row) position, so padding
    costs neither memory nor the products before and after the time loops. A row of length 0
    (nothing real) is allowed and has no rows."""
    lengths = [4, 0, 6, 1, 3]
    x, h0, _, params, dout, dh_n = inputs(rng, 2, True, None, True, "both")
    mask = lengths_mask(lengths, T)
    x[~mask] = 7.0
    results = run_both(x, h0, mask, params, 2, True, dout, dh_n)
    assert_tiers_equal(results, params)
    _, _, cache = fast.gru_forward(dev(x), dev(h0), dev(mask), dev(params), 2, True)
    N = sum(lengths)
    assert cache.batch.n_real == N
    assert all(x_p.shape[0] == N for x_p in cache.inputs)
    for layer in cache.directions:
        for c in layer:
            assert c.r.shape == c.z.shape == c.n.shape == c.z_diff.shape == (N, H)


@pytest.mark.parametrize("lengths", [[4, 0, 6, 1, 3], [6, 5, 5, 2, 0], [1, 6, 6, 6, 6],
                                     [0, 0, 3, 0, 1]], ids=["mixed", "sorted", "one-short",
                                                            "zeros"])
def test_packed_index_lists_the_real_positions_step_by_step(lengths):
    """The packed index, built from the host's counts, is the flat (T·B) position of every real
    (step, row) of the sorted batch, step after step: the nonzero entries of the sorted mask."""
    mask = dev(lengths_mask(lengths, T))
    batch = fast._batch_order(mask, len(lengths), T, "float64")
    real = to_host(batch.real)
    assert np.array_equal(real, np.flatnonzero(to_host(batch.m).reshape(-1)))
    assert batch.n_real == sum(lengths) == len(real)
    for t, (a, o) in enumerate(zip(batch.active, batch.offsets)):  # step t: rows 0 .. a − 1
        assert list(real[o:o + a]) == [t * len(lengths) + b for b in range(a)]


def test_the_comparison_can_fail(rng):
    """assert_tiers_equal catches a fast-tier gradient that is off by one part in 1e9."""
    x, h0, mask, params, dout, dh_n = inputs(rng, 2, True, LENGTHS["unsorted"], True, "both")
    results = run_both(x, h0, mask, params, 2, True, dout, dh_n)
    bad = dict(results[1][4])
    bad["weight_hh_l1_reverse"] = bad["weight_hh_l1_reverse"] * (1 + 1e-9)
    with pytest.raises(AssertionError, match="weight_hh_l1_reverse"):
        assert_tiers_equal([results[0], results[1][:4] + (bad,)], params)


@pytest.mark.parametrize("fused", [False, True], ids=["in-place", "fused"])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_fast_stack_step_equals_reference(rng, num_layers, fused):
    x_t = rng.normal(size=(B, D))
    h = rng.normal(0, 0.5, (num_layers, B, H))
    params = make_params(rng, num_layers, False)
    dout_t, dh_new = rng.normal(size=(B, H)), rng.normal(size=(num_layers, B, H))
    backend.use_fused(fused)
    try:
        out_t, h_new, cache = ref.gru_stack_step_forward(x_t, h, params, num_layers)
        f_out_t, f_h_new, f_cache = fast.gru_stack_step_forward(dev(x_t), dev(h), dev(params),
                                                                num_layers)
        for douts in [(dout_t, dh_new), (None, dh_new), (dout_t, None)]:
            dx, dh, grads = ref.gru_stack_step_backward(*douts, cache)
            f_dx, f_dh, f_grads = fast.gru_stack_step_backward(*map(dev, douts), f_cache)
            assert_close(f_dx, dx, "dx_t")
            assert_close(f_dh, dh, "dh")
            assert set(f_grads) == set(grads) == set(params)
            for k in params:
                assert_close(f_grads[k], grads[k], k)
    finally:
        backend.use_fused(None)
    assert_close(f_out_t, out_t, "out_t")
    assert_close(f_h_new, h_new, "h_new")


def test_fast_cell_equals_reference(rng):
    x, h_prev, dh = rng.normal(size=(B, D)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    w = [make_params(rng, 1, False)[k] for k in ref.param_names(0)]
    h, cache = ref.gru_cell_forward(x, h_prev, *w)
    f_h, f_cache = fast.gru_cell_forward(dev(x), dev(h_prev), *map(dev, w))
    assert_close(f_h, h, "h")
    names = ("dx", "dh_prev", "dW_ih", "dW_hh", "db_ih", "db_hh")
    for name, a, b in zip(names, fast.gru_cell_backward(dev(dh), f_cache),
                          ref.gru_cell_backward(dh, cache)):
        assert_close(a, b, name)


def test_every_fast_function_names_the_reference_it_equals():
    names = [n for n in fast.__all__ if inspect.isfunction(getattr(fast, n))]
    assert "gru_forward" in names and "gru_backward" in names
    for name in names:
        if name == "step_kernels":  # the fused kernels' text, not a function of the math
            continue
        doc = inspect.getdoc(getattr(fast, name))
        assert f"Equals: minis2s.functional.gru.{name}" in doc, name
        assert callable(getattr(ref, name)), name


# ------------------------------------------------------------------------------------------
# The reference: gradient checks and padding invariance
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_layers,bidirectional", [(3, True), (2, False)],
                         ids=["3layers-bidir", "2layers"])
def test_reference_gradcheck_padded(rng, num_layers, bidirectional):
    """Centred finite differences (rel. error < 1e-6) w.r.t. x, h0 and every weight, on a
    padded batch with unsorted lengths, a full-length row and a length-1 row."""
    Bs, Ts = 3, 4
    dirs = 2 if bidirectional else 1
    mask = lengths_mask([2, 4, 1], Ts)
    params = make_params(rng, num_layers, bidirectional)
    x = rng.normal(size=(Bs, Ts, D))
    h0 = rng.normal(0, 0.5, (num_layers * dirs, Bs, H))

    def forward(x, h0, **weights):
        out, h_n, cache = ref.gru_forward(x, h0, mask, weights, num_layers, bidirectional)
        return (out, h_n), cache

    def backward(douts, cache):
        dx, dh0, grads = ref.gru_backward(douts[0], douts[1], cache)
        return dict(x=dx, h0=dh0, **grads)

    report = check_function(forward, backward, dict(x=x, h0=h0, **params))
    assert len(report.rows) == 2 + len(params)
    assert report.passed, str(report)


def test_reference_padding_invariance_three_layers(rng):
    lengths = LENGTHS["unsorted"]
    x, h0, mask, params, dout, dh_n = inputs(rng, 3, True, lengths, True, "both")
    out, h_n, cache = ref.gru_forward(x, h0, mask, params, 3, True)
    dx, dh0, grads = to_host(ref.gru_backward(dout, dh_n, cache))
    out, h_n = to_host(out), to_host(h_n)
    summed = {k: np.zeros_like(v) for k, v in params.items()}
    for b, L in enumerate(lengths):
        o1, hn1, c1 = ref.gru_forward(x[b:b + 1, :L], h0[:, b:b + 1], None, params, 3, True)
        dx1, dh01, g1 = to_host(ref.gru_backward(dout[b:b + 1, :L], dh_n[:, b:b + 1], c1))
        np.testing.assert_allclose(out[b, :L], to_host(o1)[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h_n[:, b], to_host(hn1)[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx[b, :L], dx1[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dh0[:, b], dh01[:, 0], rtol=1e-10, atol=1e-12)
        assert not out[b, L:].any() and not dx[b, L:].any()
        for k in params:
            summed[k] += g1[k]
    for k in params:
        np.testing.assert_allclose(grads[k], summed[k], rtol=1e-10, atol=1e-12, err_msg=k)


# ------------------------------------------------------------------------------------------
# The layer on both tiers
# ------------------------------------------------------------------------------------------
@pytest.fixture
def restore_impl():
    before = backend.impl()
    try:
        yield
    finally:
        backend.use_impl(before)


def layer_run(gru, x, h0, mask, dout, dh_n):
    gru.zero_grad()
    out, h_n = gru.forward(x, h0, mask)
    dx, dh0 = gru.backward(dout, dh_n)
    return to_host((out, h_n, dx, dh0)) + ({k: to_host(g).copy() for k, g in gru.grads.items()},)


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)],
                         ids=["1layer", "2layers-bidir"])
def test_layer_gives_the_same_results_on_both_tiers(rng, restore_impl, num_layers,
                                                    bidirectional):
    gru = layers.GRU(D, H, num_layers, bidirectional, dtype="float64", seed=2)
    for p in gru.params.values():  # non-zero biases too
        p[...] = backend.asarray(rng.normal(0, 0.5, p.shape))
    x, h0, mask, _, dout, dh_n = inputs(rng, num_layers, bidirectional, LENGTHS["unsorted"],
                                        True, "both")
    runs = {}
    for impl, cache_type in (("reference", ref.GRUCache), ("fast", fast.GRUCache)):
        backend.use_impl(impl)
        runs[impl] = layer_run(gru, x, h0, mask, dout, dh_n)
        assert type(gru.cache) is cache_type, impl  # the layer ran the tier asked for
    assert_tiers_equal([runs["reference"], runs["fast"]], gru.params)

    # a backward runs on the tier of the forward that made the cache
    gru.zero_grad()
    backend.use_impl("fast")
    gru.forward(x, h0, mask)
    backend.use_impl("reference")
    dx, dh0 = to_host(gru.backward(dout, dh_n))
    np.testing.assert_array_equal(dx, runs["fast"][2])
    np.testing.assert_array_equal(dh0, runs["fast"][3])


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_layer_runs_zero_steps_on_both_tiers(rng, restore_impl, bidirectional):
    """A (B, 0, D) batch through the layer: an empty out and dx, h_n = h0 and dh0 = dh_n, on
    both tiers (the fast tier used to fail inside NumPy with "cannot reshape array of size
    0")."""
    dirs = 2 if bidirectional else 1
    gru = layers.GRU(D, H, 1, bidirectional, dtype="float64", seed=2)
    x = np.zeros((B, 0, D))
    h0, dh_n = rng.normal(size=(dirs, B, H)), rng.normal(size=(dirs, B, H))
    for impl in ("reference", "fast"):
        backend.use_impl(impl)
        out, h_n, dx, dh0, _ = layer_run(gru, x, h0, None, np.zeros((B, 0, H * dirs)), dh_n)
        assert out.shape == (B, 0, H * dirs) and dx.shape == (B, 0, D), impl
        np.testing.assert_array_equal(h_n, h0, err_msg=impl)
        np.testing.assert_array_equal(dh0, dh_n, err_msg=impl)


def test_layer_steps_give_the_same_results_on_both_tiers(rng, restore_impl):
    gru = layers.GRU(D, H, num_layers=2, dtype="float64", seed=4)
    xs = rng.normal(size=(B, T, D))
    douts = rng.normal(size=(B, T, H))
    runs = {}
    for impl in ("reference", "fast"):
        backend.use_impl(impl)
        gru.zero_grad()
        h, caches, outs = np.zeros((2, B, H)), [], []
        for t in range(T):
            out_t, h, c = gru.step_forward(xs[:, t], h)
            outs.append(to_host(out_t))
            caches.append(c)
        dh, dxs = None, []
        for t in range(T - 1, -1, -1):
            dx_t, dh = gru.step_backward(douts[:, t], dh, caches[t])
            dxs.append(to_host(dx_t))
        runs[impl] = (np.stack(outs), to_host(h), np.stack(dxs), to_host(dh),
                      {k: to_host(g).copy() for k, g in gru.grads.items()})
    assert_tiers_equal([runs["reference"], runs["fast"]], gru.params)


BAD_CALLS = [
    ("x of the wrong width", lambda x, m: (x[:, :, :2], None, m), ValueError),
    ("h0 of the wrong batch", lambda x, m: (x, np.zeros((1, 2, H)), m), ValueError),
    ("mask with a gap", lambda x, m: (x, None, np.array([[1, 0, 1, 1, 1, 1]] * B)), ValueError),
    ("float mask", lambda x, m: (x, None, m.astype(float)), TypeError),
    ("float32 x", lambda x, m: (x.astype(np.float32), None, m), TypeError),
]


@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_layer_errors_are_the_same_on_both_tiers(rng, restore_impl, case):
    _, make_args, exc = case
    gru = layers.GRU(D, H, dtype="float64")
    x, mask = rng.normal(size=(B, T, D)), lengths_mask(LENGTHS["unsorted"], T)
    messages = []
    for impl in ("reference", "fast"):
        backend.use_impl(impl)
        with pytest.raises(exc) as info:
            gru.forward(*make_args(x, mask))
        messages.append(str(info.value))
    assert messages[0] == messages[1]

    for impl in ("reference", "fast"):  # and in the backward, from either tier's cache
        backend.use_impl(impl)
        out, h_n = gru.forward(x, None, mask)
        with pytest.raises(ValueError, match=r"dout must have shape \(B, T, H·dirs\)"):
            gru.backward(np.zeros((B, T + 1, H)))
        with pytest.raises(ValueError, match="dh_n"):
            gru.backward(None, np.zeros((2, B, H)))
