"""Numerical safety at the extremes, model by model (the ops' own extreme-value tests live in
test_functional_basic.py, test_attention_ops.py and test_pointer_ops.py).

- The log-sum-exp inside the cross-entropy gives the *exact* loss at logits of ±1e4.
- Whole models with weights scaled so that the logits, the attention scores and the GRU inputs
  reach ±1e4, and the pointer-generator with p_gen exactly 0 or 1 (b_ptr = ±1e4): the loss,
  every gradient and the decoder's log-probabilities stay finite, with no overflow, invalid or
  divide warning (NumPy's errstate set to raise), in float32 and float64.
- Long sequences: S = 400 (and T = 400) train one step of every model in float32 without
  overflow.
"""

import math

import numpy as np
import pytest

from minis2s import BOS, EOS, PAD, backend, optim
from minis2s.data import pad_sequences
from minis2s.functional.loss import (
    log_softmax,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from minis2s.models import AttentionSeq2Seq, PointerGenerator, Seq2Seq
from minis2s.testing import random_batch

RAISE = dict(over="raise", invalid="raise", divide="raise")  # underflow to 0 is fine
DTYPES = ["float32", "float64"]


def arr(a, dtype=None):
    return backend.asarray(np.asarray(a), dtype=dtype)


def host(a):
    return backend.to_numpy(a)


def finite(model):
    bad = [k for k, g in model.grads.items() if not np.isfinite(host(g)).all()]
    assert not bad, f"non-finite gradients: {bad}"


# --- the log-sum-exp of the loss ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_exact_at_logits_of_1e4(dtype):
    """o = [1e4, −1e4, 0]: −log p = 0, 2e4 and 1e4 exactly (a naive exp would overflow)."""
    o = arr([[[1e4, -1e4, 0.0]] * 3, [[1e4] * 3] * 3], dtype)  # (2, 3, 3); row 1 all +1e4
    y = arr([[0, 1, 2], [0, 1, 2]])
    mask = arr(np.ones((2, 3), bool))
    with np.errstate(**RAISE):
        loss, cache = softmax_cross_entropy_forward(o, y, mask)
        d = host(softmax_cross_entropy_backward(cache))
        lp = host(log_softmax(o))
        p = host(softmax(o))
    assert float(loss) == pytest.approx((0 + 2e4 + 1e4 + 3 * math.log(3)) / 6, rel=1e-6)
    np.testing.assert_allclose(lp[0, 0], [0, -2e4, -1e4], rtol=1e-6)
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-6)  # equal huge logits: uniform
    assert np.isfinite(d).all() and d.dtype == np.dtype(dtype)
    want = (host(p) - np.eye(3)[None]) / 6  # (softmax − onehot) / N
    np.testing.assert_allclose(d, want, atol=1e-7)


# --- whole models with extreme weights ------------------------------------------------------------
V = 9


def model_of(name, dtype, **kw):
    common = dict(embed_dim=4, hidden_dim=5, num_layers=2, bidirectional=True, dtype=dtype,
                  seed=1)
    if name == "PointerGenerator":
        return PointerGenerator(V, coverage=True, **common, **kw)
    return (AttentionSeq2Seq if name == "AttentionSeq2Seq" else Seq2Seq)(V, V + 2, **common, **kw)


def batch_of(model):
    if isinstance(model, PointerGenerator):
        return random_batch(3, 7, 6, V, V, seed=2, n_oov=2)
    return random_batch(3, 7, 6, V, V + 2, seed=2)


def scale(model, names, factor):
    for k in names:
        model.params[k][...] *= factor


EXTREME = [  # (class, options, params scaled by 1e4: logits, attention scores, GRU inputs)
    ("Seq2Seq", {}, ["out.W", "src_embed.W", "tgt_embed.W"]),
    ("AttentionSeq2Seq", dict(attention="dot"), ["out.W", "enc_proj.W", "src_embed.W"]),
    ("AttentionSeq2Seq", dict(attention="general", input_feeding=True), ["out.W", "attn.W"]),
    ("AttentionSeq2Seq", dict(attention="additive"), ["out.W", "attn.v", "tgt_embed.W"]),
    ("AttentionSeq2Seq", dict(attention="cosine"), ["out.W", "attn.scale"]),
    ("PointerGenerator", {}, ["out.W", "attn.v", "src_embed.W"]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kw, names", EXTREME,
                         ids=[f"{n}-{kw.get('attention', '')}" for n, kw, _ in EXTREME])
def test_models_stay_finite_with_weights_scaled_by_1e4(name, kw, names, dtype):
    model = model_of(name, dtype, **kw)
    src, tgt = batch_of(model)
    base = model.forward(src, tgt)
    scale(model, names, 1e4)
    with np.errstate(**RAISE):
        loss = model.forward(src, tgt)
        model.backward()
        out = model.generate(src, max_len=4, beam_size=2)
    assert math.isfinite(loss) and loss != base
    finite(model)
    assert len(out) == src.shape[0] and all(not {PAD, BOS, EOS} & set(r) for r in out)
    if isinstance(model, AttentionSeq2Seq):  # the masked softmax at scores of ~1e4
        alpha = model.attention_weights(src, tgt)
        assert np.isfinite(alpha).all()
        np.testing.assert_allclose(alpha.sum(-1), 1, rtol=1e-5)
        assert np.all(alpha[np.broadcast_to((src == PAD)[:, None, :], alpha.shape)] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b_ptr, p_gen", [(1e4, 1.0), (-1e4, 0.0)])
def test_pointer_with_p_gen_exactly_0_or_1(b_ptr, p_gen, dtype):
    """σ(±1e4) rounds to exactly 1 or 0: one branch of the mixture is closed. The loss is huge
    for targets only that branch could make, but finite, and so is every gradient; the
    decoder's log-probabilities are finite on the vocabulary and on the row's OOV slots, and
    still normalised."""
    model = model_of("PointerGenerator", dtype)
    model.params["attn.w_c"][...] = 0.7  # coverage in the scores
    model.params["ptr.b_ptr"][...] = b_ptr
    src, tgt = batch_of(model)
    assert (tgt >= V).any() and ((tgt > 3) & (tgt < V)).any()  # targets for both branches
    with np.errstate(**RAISE):
        loss = model.forward(src, tgt)
        model.backward()
        state = model.init_decoder(model.check_src(src))
        logp, state = model.decode_step(state, arr(np.full(src.shape[0], BOS), src.dtype))
        ids, details = model.generate(src, max_len=4, beam_size=1, trace=True)
    assert math.isfinite(loss) and loss > 100  # a closed branch costs about 1e4 / token
    finite(model)
    logp = host(logp)
    assert np.isfinite(logp[:, :V]).all()
    for b in range(src.shape[0]):
        slots = np.unique(src[b][src[b] >= V])
        assert np.isfinite(logp[b, slots]).all()  # the row's OOVs can be copied
        real = logp[b][np.isfinite(logp[b])]
        top = real.max()
        assert top + math.log(np.exp(real - top).sum()) == pytest.approx(0, abs=1e-4)
    assert all(np.all(d["p_gen"] == p_gen) for d in details)
    for b, row in enumerate(ids):
        assert all(i < V or i in set(src[b].tolist()) for i in row)
    if p_gen == 1.0:  # copying closed: only vocabulary words come out
        assert all(i < V for row in ids for i in row)


# --- long sequences ------------------------------------------------------------------------------
LONG = [
    ("Seq2Seq", {}),
    ("AttentionSeq2Seq", dict(attention="additive")),
    ("AttentionSeq2Seq", dict(attention="dot", input_feeding=True)),
    ("PointerGenerator", dict(coverage=True)),
]


@pytest.mark.parametrize("name, kw", LONG, ids=[n + "-" + "-".join(map(str, kw.values()))
                                                 for n, kw in LONG])
def test_one_float32_training_step_on_400_tokens(name, kw):
    """S = T = 400 (and shorter rows padded to it): no overflow in the GRU recurrences, the
    attention over 400 positions, the coverage sum over 400 steps, or the loss."""
    rng = np.random.default_rng(0)
    lengths = [400, 250, 3]
    src = pad_sequences([rng.integers(4, V, size=n).tolist() for n in lengths])
    tgt = pad_sequences([[BOS, *rng.integers(4, V, size=n - 2).tolist(), EOS]
                         for n in lengths[::-1]])
    if name == "PointerGenerator":
        model = PointerGenerator(V, embed_dim=4, hidden_dim=6, seed=0, **kw)
        src[0, ::7] = V  # an OOV word repeated through the 400-token row
        src[2, 0] = V  # the short row's OOV, which its 400-token target copies 60 times
        tgt[2, 1:300:5] = V
    else:
        model = (AttentionSeq2Seq if name == "AttentionSeq2Seq" else Seq2Seq)(
            V, V, embed_dim=4, hidden_dim=6, seed=0, **kw)
    assert src.shape[1] == 400 and tgt.shape[1] == 400
    opt = optim.Adam(model.params, model.grads, lr=1e-3)
    before = {k: host(p).copy() for k, p in model.params.items()}
    with np.errstate(**RAISE):
        loss = model.forward(src, tgt)
        model.backward()
        norm = optim.clip_grad_norm(model.grads, 5.0)
        opt.step()
        loss2 = model.forward(src, tgt)
        out = model.generate(src, max_len=3)
    assert math.isfinite(loss) and math.isfinite(norm) and math.isfinite(loss2)
    assert loss2 < loss  # the step went downhill
    for k, p in model.params.items():
        assert p.dtype == np.float32, k
        assert np.isfinite(host(p)).all(), k
    assert any(not np.array_equal(before[k], host(p)) for k, p in model.params.items())
    assert len(out) == 3
