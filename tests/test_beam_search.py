"""Beam search against brute force: on tiny float64 models with a target vocabulary of 5 ids
(3 of them generable: EOS, 3, 4; plus the row's source OOVs for the pointer-generator), every
output up to max_len tokens is enumerated and scored by the penalised score

    score(Y) = log P(Y|X) / ((5 + |Y|) / 6) ** alpha + beta · Σ_i log(min(Σ_t α_t,i, 1))

computed here independently, one row at a time, by walking the decoder along each sequence.
A beam as wide as the number of outputs must return the argmax, and ``n_best`` the top-k in
order with their scores; narrower beams must return outputs with their true scores."""

import itertools
import math

import numpy as np
import pytest

from minis2s import BOS, EOS, PAD, AttentionSeq2Seq, PointerGenerator, Seq2Seq, backend
from minis2s.decoding import beam_search, greedy_decode
from minis2s.testing import tiny_batch, tiny_model

V = 5  # PAD BOS EOS UNK(3) 4
MODELS = ["Seq2Seq", "AttentionSeq2Seq", "PointerGenerator", "PointerGenerator+coverage"]
ATTENTIVE = MODELS[1:]


def make(name, seed=0):
    kw = dict(embed_dim=4, hidden_dim=5, dtype="float64", seed=seed)
    if name == "Seq2Seq":
        m = Seq2Seq(7, V, **kw)
    elif name == "AttentionSeq2Seq":
        m = AttentionSeq2Seq(7, V, attention="additive", **kw)
    else:
        m = PointerGenerator(V, coverage=name.endswith("coverage"), **kw)
    for p in m.params.values():  # sharper distributions than the initialisation's
        p *= 2.5
    return m


def source(model):
    """Two rows of different lengths (the second padded); the pointer's hold OOV ids."""
    if isinstance(model, PointerGenerator):
        return np.array([[3, V, 4, V + 1], [4, V, 3, PAD]])
    return np.array([[4, 5, 6, 4], [6, 5, PAD, PAD]])


def tokens_of(model, row):
    """The ids a row can generate besides EOS: 3, 4 and, for the pointer, its source OOVs."""
    extra = sorted({int(i) for i in row if i >= V}) if isinstance(model, PointerGenerator) else []
    return [3, 4] + extra


def walk(model, row, seqs):
    """Per-step log p and attention of each sequence in ``seqs`` (lists of equal length L),
    decoding the row alone (unpadded): -> logp (n, L), alpha (n, L, S) or None."""
    row = row[row != PAD][None]
    n, L = len(seqs), len(seqs[0])
    src = backend.asarray(np.repeat(row, n, axis=0))
    state = model.init_decoder(model.check_src(src))
    y = np.full(n, BOS)
    logp, alpha = np.zeros((n, L)), []
    seqs = np.array(seqs)
    for t in range(L):
        lp, state = model.decode_step(state, backend.asarray(y))
        logp[:, t] = backend.to_numpy(lp)[np.arange(n), seqs[:, t]]
        if "alpha" in state:
            alpha.append(backend.to_numpy(state["alpha"]))
        y = seqs[:, t]
    return logp, (np.stack(alpha, axis=1) if alpha else None)


def repeats_an_ngram(seq, n):
    grams = [tuple(seq[j:j + n]) for j in range(len(seq) - n + 1)]
    return len(grams) != len(set(grams))


def enumerate_outputs(model, row, max_len, alpha=None, beta=0.0, min_len=0, ngram=0):
    """Every allowed output of ``row`` -> (score, log P): the key is (ids, finished), ids
    without EOS. Allowed: ends in EOS after >= min_len tokens, or has max_len tokens and no
    EOS; no repeated n-gram."""
    toks = tokens_of(model, row)
    out = {}
    for L in range(1, max_len + 1):
        seqs = [list(s) + [EOS] for s in itertools.product(toks, repeat=L - 1)]
        if L == max_len:
            seqs += [list(s) for s in itertools.product(toks, repeat=L)]
        seqs = [s for s in seqs if not (ngram and repeats_an_ngram(s, ngram))
                and not (s[-1] == EOS and L - 1 < min_len)]
        if not seqs:
            continue
        logp, att = walk(model, row, seqs)
        for k, s in enumerate(seqs):
            log_P = logp[k].sum()
            score = log_P / (L if alpha is None else ((5 + L) / 6) ** alpha)
            if beta:
                real = row[row != PAD].size
                covered = np.minimum(att[k].sum(axis=0)[:real], 1.0)
                score += beta * np.log(covered).sum()
            finished = s[-1] == EOS
            out[(tuple(s[:-1] if finished else s), finished)] = (score, log_P)
    return out


def ranked(table):
    return sorted(table.items(), key=lambda kv: -kv[1][0])


def key_of(hyp, max_len):
    """A returned Hypothesis -> the enumeration key (finished iff shorter than max_len)."""
    return tuple(hyp.ids), len(hyp.ids) < max_len


def wide_search(model, max_len, n_best=None, **kw):
    src = source(model)
    n_out = max(len(enumerate_outputs(model, r, max_len, **_names(kw))) for r in src)
    return src, beam_search(model, model.check_src(src), beam_size=n_out, max_len=max_len,
                            n_best=n_best, **kw)


def _names(kw):
    return dict(alpha=kw.get("length_penalty"), beta=kw.get("coverage_penalty", 0.0),
                min_len=kw.get("min_len", 0), ngram=kw.get("no_repeat_ngram", 0))


CASES = {
    "plain (log P / |Y|)": {},
    "length alpha 0 (log P)": dict(length_penalty=0.0),
    "length alpha 0.6": dict(length_penalty=0.6),
    "length alpha 2": dict(length_penalty=2.0),
    "min_len 2": dict(min_len=2),
    "no repeated unigram": dict(no_repeat_ngram=1),
    "no repeated bigram": dict(no_repeat_ngram=2),
}
COVERAGE_CASES = {
    "coverage beta 0.5": dict(coverage_penalty=0.5),
    "coverage beta 3": dict(coverage_penalty=3.0),
    "all combined": dict(length_penalty=1.0, coverage_penalty=1.0, min_len=1,
                         no_repeat_ngram=2),
}


def all_cases():
    for name in MODELS:
        for case, kw in CASES.items():
            yield pytest.param(name, kw, id=f"{name}-{case}")
        for case, kw in COVERAGE_CASES.items():
            if name in ATTENTIVE:
                yield pytest.param(name, kw, id=f"{name}-{case}")
    yield pytest.param("Seq2Seq", dict(length_penalty=1.0, min_len=1, no_repeat_ngram=2),
                       id="Seq2Seq-all combined")


@pytest.mark.parametrize("name, kw", list(all_cases()))
def test_a_wide_beam_finds_the_argmax_and_the_n_best_in_order(name, kw):
    model = make(name, seed=1)
    max_len = 3 if name.startswith("Pointer") else 4
    src, hyps = wide_search(model, max_len, n_best=4, **kw)
    for b, row in enumerate(src):
        want = ranked(enumerate_outputs(model, row, max_len, **_names(kw)))[:4]
        got = hyps[b]
        assert [key_of(h, max_len) for h in got] == [k for k, _ in want]
        np.testing.assert_allclose([h.score for h in got], [s for _, (s, _) in want],
                                   rtol=1e-9)
        np.testing.assert_allclose([h.log_prob for h in got], [p for _, (_, p) in want],
                                   rtol=1e-9)
    _, best = wide_search(model, max_len, **kw)  # n_best None: the best ids of each row
    assert best == [h[0].ids for h in hyps]


def test_the_penalties_change_the_winner():
    """The cases above can fail: each option changes the brute-force argmax of some row."""
    changed = {k: False for k in ("alpha 0", "alpha 2", "beta", "min_len", "ngram")}
    opts = {"alpha 0": dict(alpha=0.0), "alpha 2": dict(alpha=2.0), "beta": dict(beta=3.0),
            "min_len": dict(min_len=2), "ngram": dict(ngram=1)}
    for name in ("AttentionSeq2Seq", "PointerGenerator"):
        for seed in (1, 2):
            model = make(name, seed)
            max_len = 3 if name.startswith("Pointer") else 4
            for row in source(model):
                plain = ranked(enumerate_outputs(model, row, max_len))[0][0]
                for k, o in opts.items():
                    changed[k] |= ranked(enumerate_outputs(model, row, max_len, **o))[0][0] != plain
    assert all(changed.values()), changed


def test_pointer_outputs_hold_extended_ids():
    """The pointer's enumeration includes copied OOVs; the n-best returns some of them."""
    model = make("PointerGenerator", seed=1)
    model.params["ptr.b_ptr"][...] = -3.0  # copy more often
    src, hyps = wide_search(model, 3, n_best=6)
    assert any(i >= V for h in hyps[0] for i in h.ids)
    for b, row in enumerate(src):
        own = set(tokens_of(model, row))
        assert all(set(h.ids) <= own for h in hyps[b])
        want = ranked(enumerate_outputs(model, row, 3))[:6]
        assert [key_of(h, 3) for h in hyps[b]] == [k for k, _ in want]


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("name", ATTENTIVE)
def test_a_narrow_beam_returns_true_scores_no_better_than_the_argmax(name, K):
    model = make(name, seed=2)
    kw = dict(length_penalty=0.8, coverage_penalty=0.7, no_repeat_ngram=2)
    max_len = 3 if name.startswith("Pointer") else 4
    src = source(model)
    hyps = beam_search(model, model.check_src(src), beam_size=K, max_len=max_len, n_best=K, **kw)
    for b, row in enumerate(src):
        table = enumerate_outputs(model, row, max_len, **_names(kw))
        best = ranked(table)[0][1][0]
        scores = [h.score for h in hyps[b]]
        assert scores == sorted(scores, reverse=True) and scores[0] <= best + 1e-12
        for h in hyps[b]:
            assert h.score == pytest.approx(table[key_of(h, max_len)][0], rel=1e-9)


@pytest.mark.parametrize("name", ["Seq2Seq", "AttentionSeq2Seq", "PointerGenerator"])
def test_one_beam_equals_greedy_whatever_the_length_and_coverage_penalties(name):
    """With one beam every candidate shares lp and cp, so the argmax is greedy's, also under
    min_len and n-gram blocking (which greedy applies too)."""
    model = tiny_model(name, dtype="float64", seed=3)
    src = model.check_src(tiny_batch(model, B=4)[0])
    beta = 0.0 if name == "Seq2Seq" else 2.0
    for opts in ({}, dict(min_len=3), dict(no_repeat_ngram=1), dict(min_len=2,
                                                                    no_repeat_ngram=2)):
        want = greedy_decode(model, src, max_len=7, **opts)
        for alpha in (None, 0.0, 1.0):
            got = beam_search(model, src, beam_size=1, max_len=7, length_penalty=alpha,
                              coverage_penalty=beta, **opts)
            assert got == want, (opts, alpha)
    assert model.generate(src, max_len=7, beam_size=1, length_penalty=1.0) == \
        model.generate(src, max_len=7, beam_size=1)


@pytest.mark.parametrize("name", ["Seq2Seq", "AttentionSeq2Seq", "PointerGenerator"])
def test_a_padded_batch_decodes_each_row_as_alone(name):
    model = tiny_model(name, dtype="float64", seed=4, coverage=name == "PointerGenerator")
    src = tiny_batch(model, B=4)[0]
    beta = 0.0 if name == "Seq2Seq" else 0.8
    kw = dict(max_len=7, beam_size=3, length_penalty=0.7, coverage_penalty=beta, min_len=2,
              no_repeat_ngram=2, n_best=3)
    together = model.generate(src, **kw)
    for b in range(src.shape[0]):
        alone = model.generate(src[b:b + 1][:, : int((src[b] != PAD).sum())], **kw)[0]
        assert [h.ids for h in alone] == [h.ids for h in together[b]]
        np.testing.assert_allclose([h.score for h in alone], [h.score for h in together[b]],
                                   rtol=1e-10)


def test_one_decode_step_per_time_step_for_the_whole_batch():
    """Batched over sentences and beams: the decoder runs once per step, never per row."""
    model = tiny_model("AttentionSeq2Seq", dtype="float64", seed=5)
    calls = []
    real = model.decode_step

    def counted(state, y):
        calls.append(y.shape[0])
        return real(state, y)

    model.decode_step = counted
    src = model.check_src(tiny_batch(model, B=5)[0])
    beam_search(model, src, beam_size=3, max_len=6, length_penalty=1.0, coverage_penalty=1.0,
                no_repeat_ngram=2, min_len=1)
    assert 1 <= len(calls) <= 6 and set(calls) == {15}


def test_min_len_and_ngram_blocking_hold_in_every_output():
    model = tiny_model("AttentionSeq2Seq", dtype="float64", seed=6)
    src = tiny_batch(model, B=4)[0]
    for beam in (1, 3):
        for out in model.generate(src, max_len=9, beam_size=beam, min_len=4, no_repeat_ngram=2):
            assert len(out) >= 4 and not repeats_an_ngram(out, 2)
        for out in model.generate(src, max_len=9, beam_size=beam, no_repeat_ngram=1):
            assert len(set(out)) == len(out)


def test_n_best_trace_gives_each_hypothesis_its_own_steps():
    model = tiny_model("PointerGenerator", dtype="float64", seed=7, coverage=True)
    src = tiny_batch(model)[0]
    hyps, traces = model.generate(src, max_len=5, beam_size=3, n_best=3, trace=True)
    for row_hyps, row_traces in zip(hyps, traces):
        assert len(row_hyps) == len(row_traces) == 3
        for h, tr in zip(row_hyps, row_traces):
            steps = tr["alpha"].shape[0]
            assert steps in (len(h.ids), len(h.ids) + 1)
            np.testing.assert_allclose(tr["coverage"], np.cumsum(tr["alpha"], 0) - tr["alpha"],
                                       atol=1e-12)
    best, best_traces = model.generate(src, max_len=5, beam_size=3, trace=True)
    assert best == [h[0].ids for h in hyps]
    for b in range(len(best)):
        np.testing.assert_array_equal(best_traces[b]["alpha"], traces[b][0]["alpha"])


def test_lp_and_cp_follow_their_formulas():
    from minis2s.decoding import cp, lp

    assert lp(1, 0.0) == 1.0 and lp(7, 1.0) == 2.0 and lp(3, 0.5) == pytest.approx(
        math.sqrt(8 / 6))
    assert lp(4, None) == 4.0  # the default: log P / |Y|, the mean per token
    a = backend.asarray(np.array([[0.5, 1.5, 0.0], [0.25, 0.25, 0.7]]))
    mask = backend.asarray(np.array([[True, True, False], [True, True, True]]))
    got = backend.to_numpy(cp(a, mask, 2.0))
    np.testing.assert_allclose(got, [2 * math.log(0.5), 2 * (2 * math.log(0.25) + math.log(0.7))])
    zero = backend.to_numpy(cp(backend.asarray(np.zeros((1, 2))), mask[:1, :2], 1.0))
    assert np.isfinite(zero).all() and zero[0] < -1000  # no attention: large, finite


@pytest.mark.parametrize("kw, match", [
    (dict(length_penalty=-1.0), "length_penalty must be a finite number >= 0"),
    (dict(coverage_penalty=float("nan")), "coverage_penalty must be a finite number >= 0"),
    (dict(min_len=-1), "min_len must be an int >= 0"),
    (dict(min_len=6), "min_len must be less than max_len"),
    (dict(no_repeat_ngram=-2), "no_repeat_ngram must be an int >= 0"),
    (dict(n_best=0), "n_best must be a positive int"),
    (dict(n_best=4), r"n_best must be at most beam_size \(3\)"),
])
def test_bad_options_name_the_argument(kw, match):
    model = tiny_model("AttentionSeq2Seq", seed=0)
    src = tiny_batch(model)[0]
    with pytest.raises(ValueError, match=match):
        model.generate(src, max_len=6, beam_size=3, **kw)
    with pytest.raises(TypeError, match="no_repeat_ngram must be an int"):
        model.generate(src, beam_size=3, no_repeat_ngram=1.5)


def test_coverage_penalty_needs_attention():
    model = tiny_model("Seq2Seq", seed=0)
    src = tiny_batch(model)[0]
    with pytest.raises(ValueError, match="coverage_penalty=0.5 needs attention weights, and "
                                         "Seq2Seq has no attention"):
        model.generate(src, beam_size=3, coverage_penalty=0.5)
    with pytest.raises(ValueError, match="Seq2Seq has no attention"):
        beam_search(model, model.check_src(src), beam_size=2, coverage_penalty=0.5)


def test_the_same_beams_on_the_cupy_stand_in():
    """Beam search with every option on the stand-in of tests/fake_cupy (CuPy's rules: no
    NumPy array in device math) gives what it gives on NumPy."""
    import json
    import textwrap

    from tests.test_fake_cupy import run_on_fake_cupy

    decode_all = textwrap.dedent("""
        from minis2s.testing import tiny_batch, tiny_model
        out = []
        for name in ("Seq2Seq", "AttentionSeq2Seq", "PointerGenerator"):
            m = tiny_model(name, dtype="float64", seed=6)
            src = tiny_batch(m, B=3)[0]
            beta = 0.0 if name == "Seq2Seq" else 0.5
            h = m.generate(src, max_len=6, beam_size=3, n_best=2, length_penalty=0.6,
                           coverage_penalty=beta, min_len=2, no_repeat_ngram=2)
            out.append([[x.ids for x in row] for row in h])
            out.append(m.generate(src, max_len=6, beam_size=1, min_len=1, no_repeat_ngram=1))
    """)
    r = run_on_fake_cupy("import json\n" + decode_all + "print(json.dumps(out))\n", timeout=120)
    assert r.returncode == 0, r.stderr
    here = {}
    exec(decode_all, here)  # the same decoding on NumPy
    want = here["out"]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == want
