"""Property-based tests (hypothesis) for the three models over random shapes and paddings.

Every example draws the vocabulary sizes, D, H, the layer count (1-2), the direction, the
model's options (attention score, input feeding, attention size; coverage and its weight) and a
right-padded batch: the batch size, each row's source and target length (a target may be just
BOS EOS) and sometimes trailing columns that are PAD in every row. For the pointer-generator each
row gets its own out-of-vocabulary words, numbered V, V + 1, ... in order of first appearance
(as ``Vocab.encode_extended`` does), and targets that copy them.

Each example checks three properties of the float64 model:

(a) the hand-written gradients agree with centred finite differences (``check_model``, a few
    sampled elements per parameter, tolerance 1e-6);
(b) padding invariance: the padded batch's loss and gradients equal the token-weighted
    combination of each row run alone (1e-10); a pointer row keeps its OOV ids, which stay
    valid because they are numbered per row;
(c) nothing is NaN: the loss and every gradient are finite, and ``generate`` (greedy and beam)
    returns clean lists of valid ids (for the pointer: an id >= V only if the row's source
    holds it);
(d) forward, backward and generate leave the parameters exactly as they were.

The attention model runs every score with and without input feeding, the pointer-generator
with and without coverage (a drawn coverage-loss weight, 0 included).

The example counts are small so the file stays fast. ``MINIS2S_PROPERTY_EXAMPLES=200`` explores
more (and draws new examples on every run instead of the fixed, derandomised set).
"""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minis2s import BOS, EOS, PAD, backend
from minis2s.functional.attention import SCORES
from minis2s.gradcheck import check_model
from minis2s.models import AttentionSeq2Seq, PointerGenerator, Seq2Seq

_N = os.environ.get("MINIS2S_PROPERTY_EXAMPLES")


def examples(n):
    """Settings for ``n`` examples (a fixed, derandomised set unless the variable is set)."""
    return settings(max_examples=int(_N) if _N else n, deadline=None, derandomize=_N is None,
                    suppress_health_check=[HealthCheck.too_slow], database=None)


GRAD_TOL = 1e-6
# The finite-difference step, with check_model's fourth-order stencil. Random tiny models can be
# very curved (a cosine score, scale 10, of short GRU outputs: 1e-5 relative error at h = 1e-4
# with the classic O(h²) stencil); O(h⁴) makes truncation negligible. The rounding error,
# ~3e-11 at h = 3e-5, is what the floored denominator in check_gradients absorbs.
STEP = 3e-5
PAD_TOL = 1e-10
SAMPLE = 4  # elements per parameter in the gradient check


# --- strategies -------------------------------------------------------------------------------
@st.composite
def shapes(draw):
    """Batch size, each row's source length and target length (real tokens between BOS and
    EOS, possibly 0), and the padded widths S and T (sometimes with all-PAD columns)."""
    B = draw(st.integers(1, 4))
    src_len = draw(st.lists(st.integers(1, 6), min_size=B, max_size=B))
    tgt_len = draw(st.lists(st.integers(0, 4), min_size=B, max_size=B))
    S = max(src_len) + draw(st.integers(0, 2))
    T = max(tgt_len) + 2 + draw(st.integers(0, 1))
    return src_len, tgt_len, S, T, draw(st.integers(0, 2**16))


def make_batch(shape, src_vocab, tgt_vocab):
    """Right-padded src (B, S) with ids in [3, src_vocab) (UNK included) and tgt (B, T) =
    BOS ids EOS PAD..., ids in [3, tgt_vocab)."""
    src_len, tgt_len, S, T, seed = shape
    rng = np.random.default_rng(seed)
    B = len(src_len)
    src = np.full((B, S), PAD, dtype=np.int64)
    tgt = np.full((B, T), PAD, dtype=np.int64)
    for b in range(B):  # host-side test data
        src[b, :src_len[b]] = rng.integers(3, src_vocab, size=src_len[b])
        m = tgt_len[b]
        tgt[b, 0], tgt[b, m + 1] = BOS, EOS
        tgt[b, 1:m + 1] = rng.integers(3, tgt_vocab, size=m)
    return src, tgt


def make_pointer_batch(shape, V, n_words):
    """Like :func:`make_batch` for one shared vocabulary V, with per-row OOV words: source
    tokens are drawn from V + n_words "words" and the ones >= V renumbered V, V + 1, ... in
    order of first appearance; target tokens come from [3, V) and the row's OOV ids."""
    src_len, tgt_len, S, T, seed = shape
    rng = np.random.default_rng(seed)
    B = len(src_len)
    src = np.full((B, S), PAD, dtype=np.int64)
    tgt = np.full((B, T), PAD, dtype=np.int64)
    for b in range(B):
        words = rng.integers(3, V + n_words, size=src_len[b])
        order = {}
        for i, w in enumerate(words):  # encode_extended's numbering, per row
            if w >= V:
                words[i] = order.setdefault(int(w), V + len(order))
        src[b, :src_len[b]] = words
        choices = np.concatenate([np.arange(3, V), np.unique(words[words >= V])])
        m = tgt_len[b]
        tgt[b, 0], tgt[b, m + 1] = BOS, EOS
        tgt[b, 1:m + 1] = rng.choice(choices, size=m)
    return src, tgt


common = dict(embed_dim=st.integers(1, 5), hidden_dim=st.integers(1, 5),
              num_layers=st.integers(1, 2), bidirectional=st.booleans(),
              seed=st.integers(0, 1000))


@st.composite
def seq2seq_cases(draw):
    Vs, Vt = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    kw = {k: draw(v) for k, v in common.items()}
    model = Seq2Seq(Vs, Vt, dtype="float64", **kw)
    return model, make_batch(draw(shapes()), Vs, Vt)


@st.composite
def attention_cases(draw, score, input_feeding):
    Vs, Vt = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    kw = {k: draw(v) for k, v in common.items()}
    A = draw(st.none() | st.integers(1, 4)) if score == "additive" else None
    model = AttentionSeq2Seq(Vs, Vt, attention=score, input_feeding=input_feeding,
                             attention_dim=A, dtype="float64", **kw)
    return model, make_batch(draw(shapes()), Vs, Vt)


@st.composite
def pointer_cases(draw, coverage):
    V = draw(st.integers(4, 12))
    kw = {k: draw(v) for k, v in common.items()}
    model = PointerGenerator(V, coverage=coverage,
                             cov_loss_weight=draw(st.sampled_from([0.0, 0.5, 1.0, 2.5])),
                             attention_dim=draw(st.none() | st.integers(1, 4)),
                             dtype="float64", **kw)
    # w_c starts at 0; make it matter so the coverage chain carries gradient
    w = model.params["attn.w_c"]
    w[...] = np.random.default_rng(kw["seed"]).normal(0, 1.5, size=w.shape)
    return model, make_pointer_batch(draw(shapes()), V, draw(st.integers(0, 3)))


# --- the three properties ----------------------------------------------------------------------
def grads_of(model):
    return {k: backend.to_numpy(g).copy() for k, g in model.grads.items()}


def row_alone(src, tgt, b):
    return (src[b][src[b] != PAD][None], tgt[b][: int((tgt[b] != PAD).sum())][None])


def check_gradients(model, src, tgt):
    """check_model's relative error per parameter, max|a − n| / max(|a|, |n|), must be below
    1e-6, except that its denominator is floored at the largest gradient element of the whole
    model: random tiny models often have a parameter whose every gradient element is ~1e-7
    (a GRU's W_hh at the first step of a one-token source), where the centred difference's
    rounding noise (~3e-11) is a large part of the gradient and the plain relative error fails
    on noise alone. A wrong backward still fails: its error is a fair fraction of the
    gradient."""
    report = check_model(model, src, tgt, h=STEP, max_elements=SAMPLE, tol=GRAD_TOL)
    assert {r.name for r in report.rows} == set(model.params)
    model.forward(src, tgt)
    model.backward()
    G = max(float(np.abs(backend.to_numpy(g)).max()) for g in model.grads.values())
    assert G > 0
    bad = [r for r in report.rows
           if not (r.passed or abs(r.analytic - r.numeric) < GRAD_TOL * G)]
    assert not bad, (f"{model!r}\nsrc={src.tolist()}\ntgt={tgt.tolist()}\nlargest gradient "
                     f"element {G:.3e}\n{report}")


def check_padding_invariance_and_finite(model, src, tgt):
    loss = model.forward(src, tgt)
    model.backward()
    grads = grads_of(model)
    assert math.isfinite(loss) and loss >= 0
    for k, g in grads.items():
        assert np.isfinite(g).all(), k
    n = (tgt[:, 1:] != PAD).sum(axis=1)
    want_loss, want = 0.0, {k: np.zeros_like(g) for k, g in grads.items()}
    for b in range(src.shape[0]):
        s, t = row_alone(src, tgt, b)
        want_loss += n[b] * model.forward(s, t)  # a pointer row's OOV ids stay valid alone
        model.backward()
        for k, g in grads_of(model).items():
            want[k] += n[b] * g
    assert abs(loss - want_loss / n.sum()) <= PAD_TOL, (loss, want_loss / n.sum())
    for k in want:
        np.testing.assert_allclose(grads[k], want[k] / n.sum(), rtol=0, atol=PAD_TOL, err_msg=k)


def check_generate(model, src, max_len=5):
    V_out = model.tgt_vocab_size
    for beam in (1, 2):
        out = model.generate(src, max_len=max_len, beam_size=beam)
        assert isinstance(out, list) and len(out) == src.shape[0]
        for b, row in enumerate(out):
            assert len(row) <= max_len
            assert all(isinstance(i, int) for i in row)
            assert not {PAD, BOS, EOS} & set(row), row
            if isinstance(model, PointerGenerator):
                own = set(src[b][src[b] >= V_out].tolist())
                assert all(0 <= i < V_out or i in own for i in row), (row, own)
            else:
                assert all(0 <= i < V_out for i in row), row


def check_all(model, batch):
    src, tgt = batch
    params = {k: backend.to_numpy(p).copy() for k, p in model.params.items()}
    check_gradients(model, src, tgt)
    check_padding_invariance_and_finite(model, src, tgt)
    check_generate(model, src)
    for k, p in params.items():  # (d) forward, backward and generate never write to a param
        np.testing.assert_array_equal(backend.to_numpy(model.params[k]), p, err_msg=k)


@examples(8)
@given(seq2seq_cases())
def test_seq2seq_properties(case):
    check_all(*case)


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("score", SCORES)
@examples(3)
@given(data=st.data())
def test_attention_properties(score, input_feeding, data):
    check_all(*data.draw(attention_cases(score, input_feeding)))


@pytest.mark.parametrize("coverage", [False, True])
@examples(6)
@given(data=st.data())
def test_pointer_generator_properties(coverage, data):
    check_all(*data.draw(pointer_cases(coverage)))


def test_forward_leaves_params_alone_with_hidden_dim_1():
    """Regression: with H = 1, W_hh.T is already contiguous, and the forward used to scale the
    r/z rows of a *view* of W_hh in place, changing the parameter on every call."""
    model = Seq2Seq(4, 4, embed_dim=2, hidden_dim=1, dtype="float64")
    before = {k: backend.to_numpy(p).copy() for k, p in model.params.items()}
    model.forward(np.array([[3, 3]]), np.array([[BOS, 3, EOS]]))
    for k, p in before.items():
        np.testing.assert_array_equal(backend.to_numpy(model.params[k]), p, err_msg=k)


def test_strategies_cover_the_edge_cases():
    """The generators really produce what the properties are about: trailing all-PAD columns,
    BOS-EOS-only targets, and pointer rows whose OOV ids are numbered from V per row."""
    src, tgt = make_batch(([3, 1], [0, 2], 5, 5, 1), 6, 7)
    assert (src[:, 3:] == PAD).all() and (tgt[:, 4:] == PAD).all()
    assert tgt[0, :2].tolist() == [BOS, EOS] and (tgt[0, 2:] == PAD).all()
    src, tgt = make_pointer_batch(([6, 4], [4, 3], 6, 6, 0), 5, 3)
    for b in range(2):
        oov = [int(i) for i in src[b] if i >= 5]
        firsts = list(dict.fromkeys(oov))
        assert firsts == list(range(5, 5 + len(firsts)))
    assert (src >= 5).any()
    m = PointerGenerator(5, embed_dim=2, hidden_dim=2, dtype="float64")
    m.forward(src, tgt)  # a valid batch
