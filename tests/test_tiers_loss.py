"""The fast tier's output layer and losses equal the reference tier's (float64, padded batches),
and the float32 floor of the shifted logits keeps its stated bound and its promise: no
subnormal number in what the output layer's matrix products read.

- minis2s.fast.output.readout_loss_forward/_backward against the textbook pair
  minis2s.functional.linear._linear_forward + minis2s.functional.loss (loss, dr, dW, db);
- minis2s.fast.output.pointer_readout_nll_forward/_backward against the textbook Linear +
  minis2s.functional.pointer's NLL (the pointer-generator's vocabulary projection and loss);
- minis2s.fast.loss.softmax_cross_entropy_* and pointer_nll_* against their references;
- the floor c = ln(tiny) + 37 of minis2s.fast.loss: the error bounds of its docstring.
"""

import math

import numpy as np
import pytest

from minis2s import backend
from minis2s.fast import loss as fast_loss
from minis2s.fast import output as fast_output
from minis2s.functional import linear as F_lin
from minis2s.functional import loss as F_loss
from minis2s.functional import pointer as F_ptr
from tests.helpers import pointer_case

TOL = 1e-12


def dev(*arrays):
    return tuple(backend.asarray(a) for a in arrays)


def host(a):
    return backend.to_numpy(a)


def rel(a, b):
    a, b = host(a), host(b)
    scale = max(np.abs(a).max(), np.abs(b).max())
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def lengths_mask(lengths, T):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


# the batches: (B, T) target masks of real tokens, right-padded
MASKS = {
    "padded": lengths_mask([6, 3, 1, 5], 6),  # rows with few real tokens, one with a single one
    "full": lengths_mask([5, 5, 5], 5),  # every row full: nothing to skip
    "one_token": lengths_mask([1, 1], 4),
    "empty_row": lengths_mask([4, 0, 2], 4),  # a row without a target (the loss's N counts it)
    "no_token": lengths_mask([0, 0], 3),  # N = 0: loss 0, every gradient 0, as the reference
}


def reference_readout(r, W, b, y, mask, dloss):
    """The textbook pair: (L, dr, dW, db)."""
    o, lin_cache = F_lin._linear_forward(r, W, b)
    loss, ce_cache = F_loss._softmax_cross_entropy_forward(o, y, mask)
    dr, dW, db = F_lin._linear_backward(F_loss._softmax_cross_entropy_backward(ce_cache, dloss),
                                        lin_cache)
    return loss, dr, dW, db


def readout_case(mask, D=5, V=11, seed=0, spread=3.0):
    rng = np.random.default_rng(seed)
    B, T = mask.shape
    r = rng.standard_normal((B, T, D)) * mask[..., None]  # r is 0 at PAD, as [c; s] is
    r[~mask] = rng.standard_normal((int((~mask).sum()), D))  # ... or not: it must not matter
    W = rng.standard_normal((D, V)) * spread
    b = rng.standard_normal(V)
    y = np.where(mask, rng.integers(0, V, (B, T)), 0)
    return r, W, b, y


@pytest.mark.parametrize("dloss", [1.0, 0.3])
@pytest.mark.parametrize("name", sorted(MASKS))
def test_readout_loss_equals_linear_then_cross_entropy(name, dloss):
    mask = MASKS[name]
    r, W, b, y = readout_case(mask)
    loss_r, dr_r, dW_r, db_r = reference_readout(*dev(r, W, b, y, mask), dloss)
    loss, cache = fast_output.readout_loss_forward(*dev(r, W, b, y, mask))
    dr, dW, db = fast_output.readout_loss_backward(cache, dloss)
    assert float(loss) == pytest.approx(float(loss_r), rel=TOL, abs=1e-15)
    assert dr.shape == r.shape and dW.shape == W.shape and db.shape == b.shape
    for got, want in ((dr, dr_r), (dW, dW_r), (db, db_r)):
        assert rel(got, want) <= TOL
    assert not host(dr)[~mask].any()  # exactly 0 at PAD (the scatter writes the real rows only)
    if mask.any():
        assert np.abs(host(dW)).max() > 0
    # the logits were computed for the real positions only
    assert cache.r_real.shape == (int(mask.sum()), r.shape[-1])
    assert cache.ce.softmax.buffer.shape == (int(mask.sum()), W.shape[1])


def test_readout_loss_without_bias_and_with_float_weights():
    """mask may be float weights (the reference's m); no bias gives db None."""
    mask = MASKS["padded"]
    weights = np.where(mask, np.linspace(0.5, 2.0, mask.size).reshape(mask.shape), 0.0)
    r, W, _, y = readout_case(mask, seed=1)
    loss_r, dr_r, dW_r, _ = reference_readout(*dev(r, W), None, *dev(y, weights), 1.0)
    loss, cache = fast_output.readout_loss_forward(*dev(r, W), None, *dev(y, weights))
    dr, dW, db = fast_output.readout_loss_backward(cache)
    assert db is None
    assert float(loss) == pytest.approx(float(loss_r), rel=TOL)
    assert rel(dr, dr_r) <= TOL and rel(dW, dW_r) <= TOL


def test_a_second_backward_gives_the_same_gradients():
    """The backward forms G = softmax − onehot in place, once: a second backward of the same
    forward (Model.backward() called twice) reuses it."""
    mask = MASKS["padded"]
    r, W, b, y = readout_case(mask, seed=2)
    _, cache = fast_output.readout_loss_forward(*dev(r, W, b, y, mask))
    first = [host(g).copy() for g in fast_output.readout_loss_backward(cache, 0.5)]
    second = [host(g) for g in fast_output.readout_loss_backward(cache, 0.5)]
    for a, b_ in zip(first, second):
        np.testing.assert_array_equal(a, b_)


def test_readout_cache_probs_are_the_softmax_at_every_position():
    mask = MASKS["padded"]
    r, W, b, y = readout_case(mask, seed=3)
    _, cache = fast_output.readout_loss_forward(*dev(r, W, b, y, mask))
    o, _ = F_lin._linear_forward(*dev(r, W, b))
    _, ref = F_loss._softmax_cross_entropy_forward(o, *dev(y, mask))
    assert rel(cache.probs, ref.probs) <= TOL
    # the real rows' softmax from the loss's own buffer, before and after the backward
    real = host(ref.probs)[mask]
    assert rel(cache.ce.softmax.probs(), real) <= TOL
    fast_output.readout_loss_backward(cache)
    assert rel(cache.ce.softmax.probs(), real) <= TOL


@pytest.mark.parametrize("name", ["padded", "full", "empty_row"])
def test_fast_cross_entropy_equals_the_reference(name):
    mask = MASKS[name]
    rng = np.random.default_rng(4)
    logits = rng.standard_normal(mask.shape + (9,)) * 4
    y = rng.integers(0, 9, mask.shape)
    args = dev(logits, y, mask)
    before = host(args[0]).copy()
    loss_r, cache_r = F_loss.softmax_cross_entropy_forward(*args)
    loss, cache = fast_loss.softmax_cross_entropy_forward(*args)
    np.testing.assert_array_equal(host(args[0]), before)  # the logits are left as they were
    assert float(loss) == pytest.approx(float(loss_r), rel=TOL)
    for dloss in (1.0, 0.5):
        d = fast_loss.softmax_cross_entropy_backward(cache, dloss)
        d_r = F_loss.softmax_cross_entropy_backward(cache_r, dloss)
        assert rel(d, d_r) <= TOL
        assert not host(d)[~mask].any()



def test_fast_pointer_nll_equals_the_reference():
    args = dev(*pointer_case(seed=5, saturated=True))
    before = host(args[0]).copy()
    nll_r, cache_r = F_ptr.pointer_nll_forward(*args)
    nll, cache = fast_loss.pointer_nll_forward(*args)
    np.testing.assert_array_equal(host(args[0]), before)
    assert rel(nll, nll_r) <= TOL
    assert host(cache.floored).any()  # the floored OOV target is among the rows
    dnll = backend.asarray(np.random.default_rng(6).standard_normal(nll.shape))
    weight = host(args[-1])
    for got, want in zip(fast_loss.pointer_nll_backward(dnll, cache),
                         F_ptr.pointer_nll_backward(dnll, cache_r)):
        assert got.shape == want.shape
        assert rel(got, want) <= TOL
        assert not host(got)[weight == 0].any()


@pytest.mark.parametrize("bias", [True, False])
def test_pointer_readout_nll_equals_linear_then_the_pointer_nll(bias):
    """The pointer-generator's vocabulary projection on the rows of nonzero weight, then the
    mixture's NLL: the same nll and gradients (dhidden, dW, db, dp_gen_logit, dalpha) as the
    textbook Linear on every position followed by the textbook NLL."""
    _, l, alpha, src, target, weight = pointer_case(seed=9, saturated=True)
    rng = np.random.default_rng(10)
    H, V = 6, 7
    hidden = rng.standard_normal(target.shape + (H,))
    W, b = rng.standard_normal((H, V)) * 2, (rng.standard_normal(V) if bias else None)
    o, lin_cache = F_lin._linear_forward(*dev(hidden, W), None if b is None else dev(b)[0])
    args = dev(l, alpha, src, target, weight)
    nll_r, ptr_cache = F_ptr._pointer_nll_forward(o, *args)
    nll, cache = fast_output.pointer_readout_nll_forward(*dev(hidden, W),
                                                         None if b is None else dev(b)[0], *args)
    assert rel(nll, nll_r) <= TOL
    assert cache.lead == target.shape and cache.hidden_real.shape == (int(weight.sum()), H)
    dnll = backend.asarray(rng.standard_normal(target.shape))
    do, dl_r, da_r = F_ptr._pointer_nll_backward(dnll, ptr_cache)
    dh_r, dW_r, db_r = F_lin._linear_backward(do, lin_cache)
    dh, dW, db, dl, da = fast_output.pointer_readout_nll_backward(dnll, cache)
    assert (db is None) == (b is None)
    pairs = [(dh, dh_r), (dW, dW_r), (dl, dl_r), (da, da_r)] + ([(db, db_r)] if bias else [])
    for got, want in pairs:
        assert got.shape == want.shape
        assert rel(got, want) <= TOL
    assert not host(dh)[weight == 0].any() and not host(da)[weight == 0].any()


# --- the floor of the shifted logits -------------------------------------------------------
def test_the_floor_and_its_bound_per_dtype():
    for dtype, c in ((np.float32, -50.336), (np.float64, -671.40)):
        floor = fast_loss.shift_floor(np.dtype(dtype))
        assert floor == pytest.approx(c, abs=1e-2)
        tiny = float(np.finfo(dtype).tiny)
        assert math.exp(floor) / 1.1e16 >= tiny  # e^c / V normal for V below 1.1e16
    assert 1e4 * math.exp(fast_loss.shift_floor(np.dtype(np.float32))) < 1.5e-18  # V e^c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clamped_rows_keep_the_stated_bound_and_no_subnormal_numbers(dtype):
    """Logits spread far beyond the floor (probabilities down to e^-2000): the loss and the
    gradient stay within the docstring's bounds of the exact values (computed in float64 from
    the same logits, with log-sum-exp, where no underflow changes them by more than 1e-300),
    and G = softmax − onehot holds no subnormal number."""
    V = 64
    rng = np.random.default_rng(7)
    o = np.zeros((6, V))
    o[:, 1:] = -rng.uniform(0, 2000, (6, V - 1))  # the largest logit 0, many below the floor
    o[:, 1:4] = [-0.5, -3.0, -20.0]  # a few near the top
    y = np.array([0, 1, 3, 10, 40, 63])  # targets near and far below the floor
    c = fast_loss.shift_floor(np.dtype(dtype))
    bound = V * math.exp(c)
    exact_lse = np.log(np.exp(o).sum(1))  # float64; the e^-2000 terms are 0 and negligible
    exact_nll = exact_lse - o[np.arange(6), y]
    exact_p = np.exp(o - exact_lse[:, None])
    exact_G = exact_p.copy()
    exact_G[np.arange(6), y] -= 1
    buf = backend.asarray(o.astype(dtype))
    logp_y, sm = fast_loss.softmax_rows_forward(buf, backend.asarray(y))
    nll = -host(logp_y).astype(np.float64)
    G = host(sm.gradient()).astype(np.float64)
    eps = float(np.finfo(dtype).eps)
    # the clamp's own error is below the bound; float rounding adds a few units of eps
    np.testing.assert_allclose(nll, exact_nll, rtol=4 * eps, atol=bound)
    assert np.abs(G - exact_G).max() <= (V + 1) * math.exp(c) + 4 * eps
    tiny = float(np.finfo(dtype).tiny)
    assert not ((G != 0) & (np.abs(G) < tiny)).any()
    assert (np.abs(G) >= math.exp(c) / V * (1 - 4 * eps)).all()  # every entry at least e^c / V
    assert np.isfinite(nll).all() and (nll > 1000).any()  # far targets keep their true loss


def test_float32_gradients_of_the_output_layer_hold_no_subnormal_numbers():
    """A class that the model rules out (probability e^-95 ≈ 5e-42, subnormal in float32): the
    fast tier's readout gradients hold no subnormal number and equal the textbook's computed in
    float64 to float32 rounding."""
    mask = MASKS["padded"]
    r, W, b, y = readout_case(mask, D=4, V=6, seed=8, spread=0.1)
    b[1:] = -95.0  # every other class ~e^-95 below class 0
    y = np.where(mask, 0, 0)
    r32, W32, b32 = (a.astype(np.float32) for a in (r, W, b))
    loss, cache = fast_output.readout_loss_forward(*dev(r32, W32, b32, y, mask))
    G = host(cache.ce.softmax.gradient())
    tiny = np.finfo(np.float32).tiny
    assert not ((G != 0) & (np.abs(G) < tiny)).any()
    dr, dW, db = fast_output.readout_loss_backward(cache)
    loss_r, dr_r, dW_r, db_r = reference_readout(*dev(r32.astype(float), W32.astype(float),
                                                      b32.astype(float), y, mask), 1.0)
    assert float(loss) == pytest.approx(float(loss_r), rel=1e-5, abs=1e-6)
    for got, want in ((dr, dr_r), (dW, dW_r), (db, db_r)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(host(got), host(want), rtol=1e-4, atol=1e-6)
