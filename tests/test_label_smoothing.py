"""Label smoothing (issue 13): the masked cross-entropy and the pointer mixture's NLL against
q = (1 − ε) onehot(y) + ε/V, forward and backward, in both tiers.

- the reference cross-entropy against a direct NumPy formula and against PyTorch's
  ``cross_entropy(label_smoothing=ε, ignore_index=PAD)`` (when torch is importable);
- float64 gradient checks of the ops and of the three models on padded batches;
- the fast tier equal to the reference (float64, padded batches);
- ε = 0 gives exactly the loss and gradients of the code without it;
- a bad ε raises, naming ``label_smoothing``; the config round-trips through save/load and an
  older checkpoint without the key still loads; ``validation_loss`` reports the plain NLL.
"""

import numpy as np
import pytest

import minis2s
from minis2s import backend, gradcheck
from minis2s.fast import loss as fast_loss
from minis2s.fast import output as fast_output
from minis2s.functional import linear as F_lin
from minis2s.functional import loss as F_loss
from minis2s.functional import pointer as F_ptr
from minis2s.train import validation_loss
from tests.helpers import pointer_case

TOL = 1e-10
EPS = (0.1, 0.3)


def host(a):
    return backend.to_numpy(a)


def dev(*arrays):
    return tuple(backend.asarray(a) for a in arrays)


def rel(a, b):
    a, b = host(a), host(b)
    scale = max(np.abs(a).max(), np.abs(b).max())
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def numerical(f, x, h=1e-6):
    """The public centred difference (minis2s.gradcheck) of the scalar f() that reads x."""
    return gradcheck.numerical_gradient(lambda _: f(), x, h)


def ce_case(seed=0, V=9):
    rng = np.random.default_rng(seed)
    mask = np.arange(5)[None, :] < np.array([5, 3, 1, 4])[:, None]  # padded rows
    logits = rng.standard_normal(mask.shape + (V,)) * 3
    y = np.where(mask, rng.integers(1, V, mask.shape), 0)
    return logits, y, mask



# --- the cross-entropy ----------------------------------------------------------------------
@pytest.mark.parametrize("eps", EPS)
def test_reference_cross_entropy_equals_the_direct_formula(eps):
    logits, y, mask = ce_case()
    V = logits.shape[-1]
    loss, cache = F_loss.softmax_cross_entropy_forward(*dev(logits, y, mask), label_smoothing=eps)
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    q = np.full(logits.shape, eps / V)
    np.put_along_axis(q, y[..., None], 1 - eps + eps / V, axis=-1)
    per_token = -(q * logp).sum(-1)
    want = (per_token * mask).sum() / mask.sum()
    assert float(loss) == pytest.approx(want, rel=1e-13)
    d = F_loss.softmax_cross_entropy_backward(cache, 0.7)
    want_d = 0.7 * (np.exp(logp) - q) * mask[..., None] / mask.sum()
    assert rel(d, want_d) <= 1e-13


@pytest.mark.parametrize("eps", EPS)
def test_reference_cross_entropy_equals_torch(eps):
    torch = pytest.importorskip("torch")
    logits, y, mask = ce_case(seed=2)
    V = logits.shape[-1]
    loss, cache = F_loss.softmax_cross_entropy_forward(*dev(logits, y, mask), label_smoothing=eps)
    o = torch.tensor(logits.reshape(-1, V), requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(o, torch.tensor(y.reshape(-1)),
                                               ignore_index=minis2s.PAD, label_smoothing=eps)
    t_loss.backward()
    assert float(loss) == pytest.approx(t_loss.item(), rel=1e-12)
    d = F_loss.softmax_cross_entropy_backward(cache)
    assert rel(d, o.grad.numpy().reshape(logits.shape)) <= 1e-12


@pytest.mark.parametrize("eps", EPS)
def test_cross_entropy_gradient_check(eps):
    logits, y, mask = ce_case(seed=3)
    _, cache = F_loss.softmax_cross_entropy_forward(logits, y, mask, eps)
    d = host(F_loss.softmax_cross_entropy_backward(cache, 1.0))
    num = numerical(lambda: float(F_loss.softmax_cross_entropy_forward(logits, y, mask, eps)[0]),
                    logits)
    assert gradcheck.rel_error(d, num) < 1e-7
    assert not d[~mask].any()  # PAD positions: exactly 0


@pytest.mark.parametrize("eps", (0.0,) + EPS)
@pytest.mark.parametrize("dloss", [1.0, 0.3])
def test_fast_cross_entropy_equals_the_reference(eps, dloss):
    logits, y, mask = ce_case(seed=4)
    args = dev(logits, y, mask)
    loss_r, cache_r = F_loss.softmax_cross_entropy_forward(*args, label_smoothing=eps)
    loss, cache = fast_loss.softmax_cross_entropy_forward(*args, label_smoothing=eps)
    assert float(loss) == pytest.approx(float(loss_r), rel=TOL)
    d = fast_loss.softmax_cross_entropy_backward(cache, dloss)
    assert rel(d, F_loss.softmax_cross_entropy_backward(cache_r, dloss)) <= TOL
    assert not host(d)[~mask].any()
    # the softmax can still be read back from the formed gradient
    assert rel(cache.softmax.probs(), host(cache_r.probs)[mask]) <= TOL


@pytest.mark.parametrize("eps", EPS)
def test_fast_readout_loss_equals_linear_then_cross_entropy(eps):
    logits, y, mask = ce_case(seed=5)
    rng = np.random.default_rng(5)
    r = rng.standard_normal(mask.shape + (4,))
    W, b = rng.standard_normal((4, 9)), rng.standard_normal(9)
    o, lin_cache = F_lin._linear_forward(*dev(r, W, b))
    loss_r, ce_cache = F_loss._softmax_cross_entropy_forward(o, *dev(y, mask), eps)
    dr_r, dW_r, db_r = F_lin._linear_backward(
        F_loss._softmax_cross_entropy_backward(ce_cache, 0.5), lin_cache)
    loss, cache = fast_output.readout_loss_forward(*dev(r, W, b, y, mask), eps)
    dr, dW, db = fast_output.readout_loss_backward(cache, 0.5)
    assert float(loss) == pytest.approx(float(loss_r), rel=TOL)
    for got, want in ((dr, dr_r), (dW, dW_r), (db, db_r)):
        assert rel(got, want) <= TOL


def test_epsilon_zero_is_exactly_the_plain_loss():
    logits, y, mask = ce_case(seed=6)
    for fwd, bwd in ((F_loss.softmax_cross_entropy_forward, F_loss.softmax_cross_entropy_backward),
                     (fast_loss.softmax_cross_entropy_forward,
                      fast_loss.softmax_cross_entropy_backward)):
        a, ca = fwd(*dev(logits, y, mask))
        b, cb = fwd(*dev(logits, y, mask), label_smoothing=0.0)
        assert float(a) == float(b)
        np.testing.assert_array_equal(host(bwd(ca)), host(bwd(cb)))
    args = dev(*pointer_case(saturated=True))
    for fwd, bwd in ((F_ptr.pointer_nll_forward, F_ptr.pointer_nll_backward),
                     (fast_loss.pointer_nll_forward, fast_loss.pointer_nll_backward)):
        a, ca = fwd(*args)
        b, cb = fwd(*args, label_smoothing=0.0)
        np.testing.assert_array_equal(host(a), host(b))
        dn = backend.asarray(np.ones(a.shape))
        for ga, gb in zip(bwd(dn, ca), bwd(dn, cb)):
            np.testing.assert_array_equal(host(ga), host(gb))


# --- the pointer mixture --------------------------------------------------------------------
def pointer_reference_formula(o, l, alpha, src, target, weight, eps):
    """nll from the dense final distribution P (final_distribution_forward) and q."""
    V = o.shape[-1]
    n_ext = int(max(src.max(), target.max())) + 1
    P, _ = F_ptr.final_distribution_forward(o, l, alpha, src, n_ext)
    P = host(P)
    with np.errstate(divide="ignore"):
        logP = np.log(P)
    tiny = np.finfo(P.dtype).tiny
    P_y = np.take_along_axis(P, target[..., None], -1)[..., 0]
    # an OOV target the source lacks: its copy mass floored at tiny (pointer_nll_forward)
    log_floor = -np.logaddexp(0, l) + np.log(tiny)  # log σ(−l) + log tiny
    with np.errstate(divide="ignore"):
        log_y = np.where(P_y < tiny, log_floor, np.log(P_y))
    uniform = -logP[..., :V].mean(-1)
    return ((1 - eps) * -log_y + eps * uniform) * weight


@pytest.mark.parametrize("eps", EPS)
def test_reference_pointer_nll_equals_the_dense_formula(eps):
    args = pointer_case()
    nll, _ = F_ptr.pointer_nll_forward(*dev(*args), label_smoothing=eps)
    np.testing.assert_allclose(host(nll), pointer_reference_formula(*args, eps), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("eps", EPS)
def test_pointer_nll_gradient_check(eps):
    o, l, alpha, src, target, weight = pointer_case(seed=3)
    dn = np.random.default_rng(4).standard_normal(l.shape)

    def f():
        return float((host(F_ptr.pointer_nll_forward(o, l, alpha, src, target, weight,
                                                     eps)[0]) * dn).sum())

    _, cache = F_ptr.pointer_nll_forward(o, l, alpha, src, target, weight, eps)
    do, dl, da = (host(g) for g in F_ptr.pointer_nll_backward(dn, cache))
    assert gradcheck.rel_error(do, numerical(f, o)) < 1e-7
    assert gradcheck.rel_error(dl, numerical(f, l)) < 1e-7
    real = np.broadcast_to((src != 0)[:, None], da.shape)  # alpha = 0 on the PAD positions
    assert gradcheck.rel_error(da[real], numerical(f, alpha)[real]) < 1e-7


@pytest.mark.parametrize("eps", (0.0,) + EPS)
@pytest.mark.parametrize("saturated", [False, True])
def test_fast_pointer_nll_equals_the_reference(eps, saturated):
    args = dev(*pointer_case(seed=5, saturated=saturated))
    nll_r, cache_r = F_ptr.pointer_nll_forward(*args, label_smoothing=eps)
    nll, cache = fast_loss.pointer_nll_forward(*args, label_smoothing=eps)
    assert np.isfinite(host(nll)).all() and np.isfinite(host(nll_r)).all()
    assert rel(nll, nll_r) <= TOL
    dnll = backend.asarray(np.random.default_rng(6).standard_normal(nll.shape))
    weight = host(args[-1])
    for got, want in zip(fast_loss.pointer_nll_backward(dnll, cache),
                         F_ptr.pointer_nll_backward(dnll, cache_r)):
        assert np.isfinite(host(got)).all()
        assert rel(got, want) <= TOL
        assert not host(got)[weight == 0].any()


@pytest.mark.parametrize("eps", EPS)
def test_fast_pointer_readout_equals_linear_then_the_reference(eps):
    _, l, alpha, src, target, weight = pointer_case(seed=9)
    rng = np.random.default_rng(10)
    hidden = rng.standard_normal(target.shape + (6,))
    W, b = rng.standard_normal((6, 7)) * 2, rng.standard_normal(7)
    o, lin_cache = F_lin._linear_forward(*dev(hidden, W, b))
    args = dev(l, alpha, src, target, weight)
    nll_r, ptr_cache = F_ptr._pointer_nll_forward(o, *args, eps)
    nll, cache = fast_output.pointer_readout_nll_forward(*dev(hidden, W, b), *args, eps)
    assert rel(nll, nll_r) <= TOL
    dnll = backend.asarray(rng.standard_normal(target.shape))
    do, dl_r, da_r = F_ptr._pointer_nll_backward(dnll, ptr_cache)
    dh_r, dW_r, db_r = F_lin._linear_backward(do, lin_cache)
    dh, dW, db, dl, da = fast_output.pointer_readout_nll_backward(dnll, cache)
    for got, want in ((dh, dh_r), (dW, dW_r), (db, db_r), (dl, dl_r), (da, da_r)):
        assert rel(got, want) <= TOL


# --- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_epsilon_raises_naming_the_argument(bad):
    logits, y, mask = ce_case()
    with pytest.raises(ValueError, match="label_smoothing"):
        F_loss.softmax_cross_entropy_forward(logits, y, mask, label_smoothing=bad)
    with pytest.raises(ValueError, match="label_smoothing"):
        F_ptr.pointer_nll_forward(*pointer_case(), label_smoothing=bad)
    with pytest.raises(ValueError, match="label_smoothing"):
        minis2s.Seq2Seq(10, 10, label_smoothing=bad)
    with pytest.raises(ValueError, match="label_smoothing"):
        minis2s.PointerGenerator(10, label_smoothing=bad)
    with pytest.raises(TypeError, match="label_smoothing"):
        minis2s.AttentionSeq2Seq(10, 10, label_smoothing="0.1")


# --- the models -------------------------------------------------------------------------------
SRC = np.array([[5, 6, 7, 2], [8, 9, 0, 0], [4, 0, 0, 0]])
TGT = np.array([[1, 5, 6, 2, 0], [1, 7, 8, 9, 2], [1, 2, 0, 0, 0]])
PG_SRC = np.array([[5, 12, 7, 5], [8, 9, 0, 0], [4, 12, 13, 0]])  # OOVs 12, 13 (V = 12)
PG_TGT = np.array([[1, 12, 6, 2, 0], [1, 7, 8, 9, 2], [1, 13, 14, 2, 0]])  # 14: not in its source


def make(name, eps, **kw):
    small = dict(embed_dim=4, hidden_dim=5, dtype="float64", label_smoothing=eps, **kw)
    if name == "seq2seq":
        return minis2s.Seq2Seq(12, 12, **small), SRC, TGT
    if name == "attention":
        return minis2s.AttentionSeq2Seq(12, 12, attention="general", **small), SRC, TGT
    tgt = np.where(PG_TGT == 14, minis2s.UNK, PG_TGT)  # an OOV absent from the source is UNK
    return minis2s.PointerGenerator(12, coverage=True, **small), PG_SRC, tgt


MODELS = ["seq2seq", "attention", "pointer"]


@pytest.fixture
def impl():
    before = backend.impl()
    yield backend.use_impl
    backend.use_impl(before)


@pytest.mark.parametrize("name", MODELS)
def test_model_gradient_check_with_label_smoothing(name, impl):
    impl("reference")
    model, src, tgt = make(name, 0.2)
    report = gradcheck.check_model(model, src, tgt)
    assert report.passed, str(report)


@pytest.mark.parametrize("name", MODELS)
def test_model_fast_tier_equals_the_reference(name, impl):
    results = {}
    for tier in ("reference", "fast"):
        impl(tier)
        model, src, tgt = make(name, 0.2)
        loss = model.forward(src, tgt)
        model.backward()
        results[tier] = loss, {k: host(g).copy() for k, g in model.grads.items()}
    (loss_r, g_r), (loss_f, g_f) = results["reference"], results["fast"]
    assert loss_f == pytest.approx(loss_r, rel=TOL)
    for k in g_r:
        assert rel(g_f[k], g_r[k]) <= TOL, k


@pytest.mark.parametrize("name", MODELS)
def test_model_epsilon_zero_is_exactly_today(name):
    plain, src, tgt = make(name, 0.0)
    smooth, _, _ = make(name, 0.0)
    del plain._config["label_smoothing"]  # the loss does not depend on the config entry
    a = plain.forward(src, tgt)
    plain.backward()
    b = smooth.forward(src, tgt)
    smooth.backward()
    assert a == b
    for k in plain.grads:
        np.testing.assert_array_equal(host(plain.grads[k]), host(smooth.grads[k]))


@pytest.mark.parametrize("name", MODELS)
def test_model_loss_is_the_smoothed_one_and_plain_loss_is_the_nll(name):
    smooth, src, tgt = make(name, 0.3)
    plain, _, _ = make(name, 0.0)
    nll = plain.forward(src, tgt)
    # the smoothed loss differs (it is higher where the model favours the gold tokens, and can
    # be lower for an untrained model that gives them less than the mean log-probability)
    assert smooth.forward(src, tgt) != pytest.approx(nll, rel=1e-6)
    with smooth.plain_loss():
        assert smooth.forward(src, tgt) == pytest.approx(nll, rel=1e-13)
    assert smooth.label_smoothing == 0.3 and smooth.config["label_smoothing"] == 0.3
    pairs = [(s[s != 0].tolist(), t[t != 0].tolist()) for s, t in zip(src, tgt)]
    assert validation_loss(smooth, pairs) == pytest.approx(validation_loss(plain, pairs),
                                                           rel=1e-12)


@pytest.mark.parametrize("name", MODELS)
def test_label_smoothing_round_trips_and_old_checkpoints_load(name, tmp_path):
    model, _, _ = make(name, 0.15)
    model.save(tmp_path / "m.ckpt")
    loaded = minis2s.load(tmp_path / "m.ckpt")
    assert loaded.label_smoothing == 0.15 and loaded.config == model.config
    del model._config["label_smoothing"]  # a checkpoint written before label smoothing
    model.save(tmp_path / "old.ckpt")
    assert minis2s.load(tmp_path / "old.ckpt").label_smoothing == 0.0
