"""Sampling (``generate(sample=True)`` / ``minis2s.decoding.sample_decode``): reproducible
under a seed, batched, greedy in its limits (top_k=1, temperature → 0), and drawing from the
right distribution: the empirical support and frequencies of the first token on a tiny model
match softmax(log p / T) cut to its top-k / nucleus, computed here independently."""

import numpy as np
import pytest

from minis2s import BOS, EOS, PAD, AttentionSeq2Seq, backend
from minis2s.decoding import greedy_decode, sample_decode, top_k_top_p_filter
from minis2s.testing import tiny_batch, tiny_model

NAMES = ["Seq2Seq", "AttentionSeq2Seq", "PointerGenerator"]


def first_step_probs(model, row):
    """The model's distribution of the first token of ``row`` over the generable ids (PAD and
    BOS excluded, renormalised), host-side."""
    state = model.init_decoder(model.check_src(row[None]))
    lp, _ = model.decode_step(state, backend.asarray(np.array([BOS])))
    lp = backend.to_numpy(lp)[0]
    p = np.exp(lp)
    p[[PAD, BOS]] = 0.0
    return p / p.sum()


def first_tokens(model, row, n, **kw):
    """The first generated token of n samples of ``row`` (EOS where the output is empty)."""
    out = model.generate(np.repeat(row[None], n, axis=0), max_len=1, sample=True, **kw)
    return np.array([r[0] if r else EOS for r in out])


def close_in_frequency(freq, q, n):
    """Every empirical frequency within 4 standard deviations of its probability."""
    return bool(np.all(np.abs(freq - q) <= 4 * np.sqrt(q * (1 - q) / n) + 1e-12))


@pytest.fixture(scope="module")
def model():
    m = AttentionSeq2Seq(9, 12, embed_dim=4, hidden_dim=6, dtype="float64", seed=3)
    m.params["out.W"] *= 2.0  # an uneven distribution, each token above 1%
    return m


ROW = np.array([4, 6, 5, 7])


@pytest.mark.parametrize("name", NAMES)
def test_a_seed_reproduces_the_samples(name):
    model = tiny_model(name, dtype="float64", seed=1)
    src = tiny_batch(model, B=4)[0]
    kw = dict(max_len=8, sample=True, temperature=1.5, top_p=0.95)
    a = model.generate(src, seed=7, **kw)
    assert a == model.generate(src, seed=7, **kw)
    assert a == model.generate(src, seed=np.random.default_rng(7), **kw)
    draws = [model.generate(src, seed=s, **kw) for s in range(4)]
    assert any(d != a for d in draws)  # the seed matters
    for row in a:
        assert not {PAD, BOS, EOS} & set(row)


def test_a_generator_continues_its_stream():
    model = tiny_model("AttentionSeq2Seq", dtype="float64", seed=1)
    src = tiny_batch(model, B=3)[0]
    rng = np.random.default_rng(0)
    first = model.generate(src, max_len=6, sample=True, temperature=2.0, seed=rng)
    second = model.generate(src, max_len=6, sample=True, temperature=2.0, seed=rng)
    rng2 = np.random.default_rng(0)
    assert model.generate(src, max_len=6, sample=True, temperature=2.0, seed=rng2) == first
    assert model.generate(src, max_len=6, sample=True, temperature=2.0, seed=rng2) == second


@pytest.mark.parametrize("name", NAMES)
def test_top_k_1_and_a_tiny_temperature_are_greedy(name):
    model = tiny_model(name, dtype="float64", seed=2)
    src = tiny_batch(model, B=4)[0]
    greedy = greedy_decode(model, model.check_src(src), max_len=7)
    for seed in range(3):
        assert model.generate(src, max_len=7, sample=True, top_k=1, seed=seed) == greedy
        assert model.generate(src, max_len=7, sample=True, temperature=1e-4, seed=seed) == greedy
        assert model.generate(src, max_len=7, sample=True, top_p=1e-9, seed=seed) == greedy


def test_top_p_keeps_exactly_the_nucleus(model):
    p = first_step_probs(model, ROW)
    order = np.argsort(-p)
    for top_p in (0.3, 0.6, 0.9):
        above = np.cumsum(p[order]) - p[order]
        nucleus = set(order[above < top_p].tolist())
        assert 1 < len(nucleus) < int((p > 0).sum())  # the test can tell
        got = first_tokens(model, ROW, 4000, top_p=top_p, seed=1)
        assert set(got.tolist()) == nucleus  # all of it, nothing else
        q = np.zeros_like(p)
        q[list(nucleus)] = p[list(nucleus)]
        q /= q.sum()
        freq = np.bincount(got, minlength=p.size) / got.size
        assert close_in_frequency(freq, q, got.size)


def test_top_k_keeps_the_k_most_probable(model):
    p = first_step_probs(model, ROW)
    got = first_tokens(model, ROW, 3000, top_k=3, seed=2)
    assert set(got.tolist()) == set(np.argsort(-p)[:3].tolist())


def test_temperature_scales_the_distribution(model):
    p = first_step_probs(model, ROW)
    for T in (0.5, 2.0):
        q = p ** (1 / T)
        q /= q.sum()
        got = first_tokens(model, ROW, 4000, temperature=T, seed=3)
        freq = np.bincount(got, minlength=p.size) / got.size
        assert close_in_frequency(freq, q, got.size)
    flat = first_tokens(model, ROW, 4000, temperature=50.0, seed=4)
    assert set(flat.tolist()) == set(np.flatnonzero(p > 0).tolist())  # nearly uniform


def test_the_filter_is_vectorised_and_keeps_the_top_token():
    lp = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5], [0.97, 0.01, 0.01,
                                                                           0.01]]))
    out = backend.to_numpy(top_k_top_p_filter(backend.asarray(lp), top_k=0, top_p=0.7))
    assert (np.isfinite(out) == [[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]]).all()
    out = backend.to_numpy(top_k_top_p_filter(backend.asarray(lp), top_k=1, top_p=1.0))
    assert (np.isfinite(out).sum(1) == 1).all() and (out.argmax(1) == [0, 3, 0]).all()
    np.testing.assert_array_equal(backend.to_numpy(top_k_top_p_filter(backend.asarray(lp))), lp)


def test_min_len_and_ngram_blocking_hold_while_sampling():
    model = tiny_model("PointerGenerator", dtype="float64", seed=4)
    src = tiny_batch(model, B=4)[0]
    for seed in range(3):
        out = model.generate(src, max_len=9, sample=True, temperature=2.0, min_len=5,
                             no_repeat_ngram=1, seed=seed)
        for row in out:
            assert len(row) >= 5 and len(set(row)) == len(row)
            own = set(src[src >= model.vocab_size].tolist())
            assert all(i < model.vocab_size or i in own for i in row)


def test_one_decode_step_per_time_step_for_the_whole_batch():
    model = tiny_model("Seq2Seq", dtype="float64", seed=5)
    calls = []
    real = model.decode_step
    model.decode_step = lambda state, y: (calls.append(y.shape[0]), real(state, y))[1]
    src = model.check_src(tiny_batch(model, B=6)[0])
    sample_decode(model, src, max_len=5, temperature=3.0, seed=0)
    assert 1 <= len(calls) <= 5 and set(calls) == {6}


def test_the_same_draws_on_the_cupy_stand_in():
    """The uniforms come from the host, so a seed gives the same samples on CuPy (here the
    stand-in of tests/fake_cupy, which refuses NumPy arrays in device math)."""
    from tests.test_fake_cupy import run_on_fake_cupy

    code = """
        import json
        from minis2s.testing import tiny_batch, tiny_model
        m = tiny_model("PointerGenerator", dtype="float64", seed=6)
        src = tiny_batch(m, B=3)[0]
        print(json.dumps(m.generate(src, max_len=6, sample=True, temperature=1.3, top_k=5,
                                    top_p=0.9, seed=11, no_repeat_ngram=2)))
    """
    r = run_on_fake_cupy(code, timeout=120)
    assert r.returncode == 0, r.stderr
    m = tiny_model("PointerGenerator", dtype="float64", seed=6)
    src = tiny_batch(m, B=3)[0]
    want = m.generate(src, max_len=6, sample=True, temperature=1.3, top_k=5, top_p=0.9, seed=11,
                      no_repeat_ngram=2)
    import json

    assert json.loads(r.stdout.strip().splitlines()[-1]) == want


@pytest.mark.parametrize("kw, err, match", [
    (dict(temperature=0.0), ValueError, "temperature must be a finite number > 0"),
    (dict(temperature="hot"), TypeError, "temperature must be a number > 0"),
    (dict(top_k=-1), ValueError, "top_k must be an int >= 0"),
    (dict(top_p=0.0), ValueError, r"top_p must be a number in \(0, 1\]"),
    (dict(top_p=1.5), ValueError, r"top_p must be a number in \(0, 1\]"),
    (dict(seed="x"), TypeError, "seed must be an int >= 0, a numpy.random.Generator or None"),
    (dict(seed=-1), TypeError, "seed must be an int >= 0"),
    (dict(beam_size=3), ValueError, "beam_size applies only to beam search, and sample=True"),
    (dict(length_penalty=1.0), ValueError, "length_penalty applies only to beam search"),
])
def test_bad_sampling_options_name_the_argument(kw, err, match):
    model = tiny_model("AttentionSeq2Seq", seed=0)
    src = tiny_batch(model)[0]
    with pytest.raises(err, match=match):
        model.generate(src, max_len=4, sample=True, **kw)


def test_sampling_options_without_sample_are_refused():
    model = tiny_model("AttentionSeq2Seq", seed=0)
    src = tiny_batch(model)[0]
    with pytest.raises(ValueError, match="temperature and seed apply only to sampling: give "
                                         "sample=True"):
        model.generate(src, temperature=0.5, seed=1)
