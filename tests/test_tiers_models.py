"""Whole models on both tiers: the same loss and gradients to 1e-10 in float64.

``minis2s.backend.use_impl("fast" | "reference")`` switches every layer and loss of the three
models: the GRU layers between minis2s.fast.gru (sorted batch, in-place buffers) and the textbook
loop of minis2s.functional.gru, and the losses between minis2s.fast.loss (subnormals flushed)
and the textbook of minis2s.functional. Each configuration below is run on both, on a padded
batch (rows of different lengths, in source and target), and every parameter's gradient is
compared. The tier is always restored, whatever happens.
"""


import numpy as np
import pytest

from minis2s import backend
from minis2s.fast import gru as fast_gru
from minis2s.functional import gru as F_gru
from minis2s.functional.attention import SCORES
from minis2s.testing import tiny_batch, tiny_model
from tests.helpers import tier

TOL = 1e-10

CONFIGS = (
    [("Seq2Seq", dict(num_layers=2, bidirectional=True)),
     ("Seq2Seq", dict(num_layers=1, bidirectional=False))]
    + [("AttentionSeq2Seq", dict(attention=score, num_layers=2, bidirectional=True))
       for score in SCORES]
    + [("AttentionSeq2Seq", dict(attention=score, num_layers=2, bidirectional=False,
                                 input_feeding=True)) for score in ("general", "additive")]
    + [("PointerGenerator", dict(coverage=True, num_layers=2, bidirectional=True)),
       ("PointerGenerator", dict(coverage=True, num_layers=1, bidirectional=False)),
       ("PointerGenerator", dict(coverage=False, num_layers=2, bidirectional=True))]
)
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]



def make(name, kw):
    model = tiny_model(name, seed=7, **kw)
    if name == "PointerGenerator":  # zero at init: make the coverage term matter
        w = model.params["attn.w_c"]
        w[...] = backend.asarray(np.random.default_rng(8).normal(0, 1.5, w.shape), dtype=w.dtype)
    return model


def loss_and_grads(model, src, tgt, impl):
    with tier(impl):
        loss = model.forward(src, tgt)
        model.backward()
        encoder_cache = model.encoder.cache
    return loss, {k: backend.to_numpy(g).copy() for k, g in model.grads.items()}, encoder_cache


def rel(a, b):
    scale = max(np.abs(a).max(), np.abs(b).max())
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_whole_model_same_loss_and_gradients_on_both_tiers(name, kw):
    model = make(name, kw)
    src, tgt = tiny_batch(model, B=4, S=7, T=6)
    assert (src == 0).any() and (tgt == 0).any()  # padded, in source and target
    loss_f, grads_f, cache_f = loss_and_grads(model, src, tgt, "fast")
    loss_r, grads_r, cache_r = loss_and_grads(model, src, tgt, "reference")
    # the switch really ran two different GRUs
    assert isinstance(cache_f, fast_gru.GRUCache) and isinstance(cache_r, F_gru.GRUCache)
    assert loss_f == pytest.approx(loss_r, rel=TOL, abs=0)
    assert grads_f.keys() == grads_r.keys() == set(model.params)
    for k in grads_f:
        assert np.abs(grads_r[k]).max() > 0 or k == "attn.w_c", k  # every parameter trained
        assert rel(grads_f[k], grads_r[k]) <= TOL, (k, rel(grads_f[k], grads_r[k]))


@pytest.mark.parametrize("name, kw", [CONFIGS[1], CONFIGS[3], CONFIGS[-2]],
                         ids=[IDS[1], IDS[3], IDS[-2]])
def test_decoding_is_the_same_on_both_tiers(name, kw):
    model = make(name, kw)
    src, _ = tiny_batch(model, B=4, S=7, T=6)
    out = {}
    for impl in ("fast", "reference"):
        with tier(impl):
            state = model.init_decoder(model.check_src(src))
            y = backend.xp.full((src.shape[0],), 1, dtype=np.int64)
            logp = []
            for _ in range(3):
                lp, state = model.decode_step(state, y)
                logp.append(backend.to_numpy(lp))
                y = lp.argmax(axis=1)
            out[impl] = (np.stack(logp), model.generate(src, max_len=5, beam_size=2))
    fin = np.isfinite(out["fast"][0])
    np.testing.assert_array_equal(fin, np.isfinite(out["reference"][0]))
    np.testing.assert_allclose(out["fast"][0][fin], out["reference"][0][fin], rtol=TOL, atol=TOL)
    assert out["fast"][1] == out["reference"][1]


def test_fast_losses_equal_the_reference_ops():
    """minis2s.fast.loss equals the textbook losses to rounding in float64, forward and
    backward, on padded targets (tests/test_tiers_loss.py checks it in more cases)."""
    from minis2s.fast import loss as fast_loss
    from minis2s.functional import loss as F_loss
    from minis2s.functional import pointer as F_ptr

    rng = np.random.default_rng(0)
    B, T, V, S = 3, 4, 7, 5
    logits = rng.standard_normal((B, T, V))
    y = rng.integers(0, V, (B, T))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    ref = F_loss.softmax_cross_entropy_forward(logits, y, mask)
    fast = fast_loss.softmax_cross_entropy_forward(*(backend.asarray(a) for a in (logits, y,
                                                                                  mask)))
    assert float(fast[0]) == pytest.approx(float(ref[0]), rel=1e-13)
    np.testing.assert_allclose(backend.to_numpy(fast_loss.softmax_cross_entropy_backward(
        fast[1], 0.5)), backend.to_numpy(F_loss.softmax_cross_entropy_backward(ref[1], 0.5)),
        rtol=1e-12, atol=1e-15)

    src = np.array([[4, 8, 5, 7, 4], [5, 7, 6, 0, 0], [7, 4, 0, 0, 0]])
    e = np.where(src[:, None, :] != 0, rng.standard_normal((B, T, S)), -np.inf)
    alpha = np.exp(e - e.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    target = np.array([[4, 8, 3, 2], [7, 5, 0, 0], [7, 0, 0, 0]])
    args = (logits, rng.standard_normal((B, T)), alpha, src, target, mask.astype(float))
    nll_r, cache_r = F_ptr.pointer_nll_forward(*args)
    nll_f, cache_f = fast_loss.pointer_nll_forward(*(backend.asarray(a) for a in args))
    np.testing.assert_allclose(backend.to_numpy(nll_f), backend.to_numpy(nll_r), rtol=1e-13)
    dnll = backend.asarray(rng.standard_normal((B, T)))
    for g_f, g_r in zip(fast_loss.pointer_nll_backward(dnll, cache_f),
                        F_ptr.pointer_nll_backward(dnll, cache_r)):
        np.testing.assert_allclose(backend.to_numpy(g_f), backend.to_numpy(g_r), rtol=1e-12,
                                   atol=1e-15)


def test_the_tier_is_restored_after_an_error():
    before = backend.impl()
    with pytest.raises(RuntimeError), tier("reference"):
        assert backend.impl() == "reference"
        raise RuntimeError("boom")
    assert backend.impl() == before
