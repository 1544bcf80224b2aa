"""Greedy and beam search over the per-step decoder interface."""

import itertools

import numpy as np
import pytest

from minis2s import BOS, EOS, PAD, backend
from minis2s.decoding import beam_search, greedy_decode
from minis2s.testing import tiny_batch, tiny_model


class TableModel:
    """A fake decoder: log p(y_t | y_<t) depends on the row and the previous token only.

    ``table[b, prev]`` is a (V,) distribution. Lets us enumerate all sequences exactly.
    """

    def __init__(self, table):
        self.table = backend.asarray(np.log(table))
        self.params = {"w": backend.xp.zeros(1)}

    def init_decoder(self, src):
        return {"row": backend.xp.arange(src.shape[0])}

    def decode_step(self, state, y_prev):
        return self.table[state["row"], y_prev], state


def random_table(B, V, seed):
    rng = np.random.default_rng(seed)
    t = rng.random((B, V, V)) ** 3 + 1e-3
    t[:, :, PAD] = 1e-9  # never predicted
    t[:, :, BOS] = 1e-9
    return t / t.sum(-1, keepdims=True)


def brute_force_best(table_b, max_len, alpha):
    """Best sequence by GNMT's length-penalised log-prob log P / ((5 + L) / 6) ** alpha (alpha
    None: log P / L, the default) among
    all sequences up to max_len tokens (EOS included) that end in EOS, plus unfinished ones of
    length max_len."""
    V = table_b.shape[0]
    best, best_score = None, -np.inf
    for L in range(1, max_len + 1):
        for seq in itertools.product(range(3, V), repeat=L - 1):
            for last in ([EOS] if L < max_len else list(range(2, V))):
                full = list(seq) + [last]
                prev, lp = BOS, 0.0
                for y in full:
                    lp += np.log(table_b[prev, y])
                    prev = y
                score = lp / (L if alpha is None else ((5 + L) / 6) ** alpha)
                if score > best_score:
                    best, best_score = full, score
    return [y for y in best if y != EOS] if best[-1] == EOS else best


def test_greedy_picks_the_argmax_path():
    table = random_table(2, 5, seed=1)
    model = TableModel(table)
    out = greedy_decode(model, backend.xp.zeros((2, 3), dtype=int), max_len=6)
    for b in range(2):
        prev, want = BOS, []
        for _ in range(6):
            y = int(np.argmax(table[b, prev]))
            if y == EOS:
                break
            want.append(y)
            prev = y
        assert out[b] == want


@pytest.mark.parametrize("alpha", [None, 0.0, 1.0, 3.0])
@pytest.mark.parametrize("seed", range(4))
def test_beam_search_with_a_wide_beam_finds_the_best_sequence(seed, alpha):
    B, V, max_len = 3, 5, 4
    table = random_table(B, V, seed)
    model = TableModel(table)
    kw = {} if alpha is None else {"length_penalty": alpha}
    out = beam_search(model, backend.xp.zeros((B, 2), dtype=int), beam_size=40, max_len=max_len,
                      **kw)
    for b in range(B):
        assert out[b] == brute_force_best(table[b], max_len, alpha)


def test_beam_of_one_equals_greedy_on_a_model():
    model = tiny_model("Seq2Seq", dtype="float64", seed=2)
    src, _ = tiny_batch(model)
    src = backend.asarray(src)
    assert beam_search(model, src, beam_size=1, max_len=7) == greedy_decode(model, src, 7)


def test_rows_are_decoded_independently():
    model = tiny_model("Seq2Seq", dtype="float64", seed=2)
    src, _ = tiny_batch(model, B=4)
    together = model.generate(src, max_len=6, beam_size=3)
    for b in range(4):
        alone = model.generate(src[b:b + 1][:, : int((src[b] != PAD).sum())], 6, 3)
        assert alone[0] == together[b]


def test_trace_records_one_entry_per_generated_token():
    table = random_table(2, 5, seed=3)

    class Traced(TableModel):
        def decode_step(self, state, y_prev):
            lp, state = super().decode_step(state, y_prev)
            return lp, dict(state, p=backend.xp.exp(lp.max(axis=1)))

    model = Traced(table)
    src = backend.xp.zeros((2, 3), dtype=int)
    for search in (lambda: greedy_decode(model, src, 6, trace=("p",)),
                   lambda: beam_search(model, src, 2, 6, trace=("p",))):
        rows, traces = search()
        for b, row in enumerate(rows):
            assert len(traces["p"][b]) in (len(row), len(row) + 1)  # + the EOS step


def test_invalid_sizes():
    model = TableModel(random_table(1, 4, 0))
    src = backend.xp.zeros((1, 2), dtype=int)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(model, src, max_len=0)


def test_pad_and_bos_are_never_generated():
    """Even where the model would pick them: the decoders mask PAD and BOS, so every output
    is a sequence whose log-probability the model gave (no hidden PAD/BOS steps)."""
    table = random_table(2, 6, seed=4)
    table[:, :, PAD] = table[:, :, BOS] = 10.0  # most probable everywhere
    table /= table.sum(-1, keepdims=True)
    model = TableModel(table)
    src = backend.xp.zeros((2, 3), dtype=int)
    max_len = 5
    want = greedy_decode(TableModel(random_table(2, 6, seed=4)), src, max_len)
    assert greedy_decode(model, src, max_len) == want  # the same argmax among the others
    for b, hyps in enumerate(beam_search(model, src, 3, max_len, n_best=3)):
        for h in hyps:
            path = [BOS, *h.ids] + ([EOS] if len(h.ids) < max_len else [])
            log_P = sum(np.log(table[b, p, y]) for p, y in zip(path, path[1:]))
            assert h.log_prob == pytest.approx(log_P, rel=1e-12)


def test_greedy_min_len_masks_eos():
    table = random_table(2, 5, seed=5)
    table[:, :, EOS] = 5.0  # EOS first, unless masked
    table /= table.sum(-1, keepdims=True)
    model = TableModel(table)
    src = backend.xp.zeros((2, 3), dtype=int)
    assert greedy_decode(model, src, 6) == [[], []]
    out = greedy_decode(model, src, 6, min_len=3)
    assert [len(r) for r in out] == [3, 3]


def test_greedy_no_repeat_ngram_blocks_the_repeat():
    V = 6
    table = np.full((1, V, V), 1e-3)
    table[0, :, 4] = 1.0  # always 4 ...
    table[0, 4, 5] = 2.0  # ... except after a 4, then 5
    table /= table.sum(-1, keepdims=True)
    model = TableModel(table)
    src = backend.xp.zeros((1, 2), dtype=int)
    assert greedy_decode(model, src, 6) == [[4, 5, 4, 5, 4, 5]]
    # (4, 5) and (5, 4) once each; then after 4 the next best is 4; then only ties at 1e-3,
    # of which the first allowed is EOS
    assert greedy_decode(model, src, 6, no_repeat_ngram=2) == [[4, 5, 4, 4]]
    assert greedy_decode(model, src, 6, no_repeat_ngram=1) == [[4, 5]]
    assert beam_search(model, src, 1, 6, no_repeat_ngram=2) == [[4, 5, 4, 4]]


def test_ngram_ban_is_vectorised_over_rows():
    from minis2s.decoding import _ngram_ban

    history = backend.asarray(np.array([[4, 5, 4, 6, 4], [7, 7, 7, 7, 7], [4, 5, 6, 7, 8]]))
    ban = backend.to_numpy(_ngram_ban(history, 2, 10))
    assert sorted(np.flatnonzero(ban[0])) == [5, 6]  # after 4: (4, 5) and (4, 6) exist
    assert sorted(np.flatnonzero(ban[1])) == [7]
    assert not ban[2].any()
    ban3 = backend.to_numpy(_ngram_ban(history, 3, 10))
    assert sorted(np.flatnonzero(ban3[1])) == [7] and not ban3[0].any()
    ban1 = backend.to_numpy(_ngram_ban(history, 1, 10))
    assert sorted(np.flatnonzero(ban1[2])) == [4, 5, 6, 7, 8]
    assert not _ngram_ban(history[:, :1], 2, 10).any()  # no bigram yet


def test_generate_routes_the_options():
    """beam_size 1 without n_best is greedy; n_best and the penalties go to beam search;
    sampling refuses the beam options and the other way round."""
    model = tiny_model("AttentionSeq2Seq", dtype="float64", seed=2)
    src, _ = tiny_batch(model)
    greedy = model.generate(src, max_len=6)
    assert greedy == greedy_decode(model, model.check_src(src), 6)
    hyps = model.generate(src, max_len=6, n_best=1)
    assert [h[0].ids for h in hyps] == greedy and all(len(h) == 1 for h in hyps)
    assert all(h[0].score == pytest.approx(h[0].log_prob / (len(h[0].ids) + 1)) for h in hyps
               if len(h[0].ids) < 6)  # finished: log P / |Y|, EOS counted
    with pytest.raises(ValueError, match="beam_size and n_best apply only to beam search"):
        model.generate(src, sample=True, beam_size=3, n_best=2)
    with pytest.raises(ValueError, match="top_p applies only to sampling: give sample=True"):
        model.generate(src, top_p=0.5)
    with pytest.raises(TypeError, match="sample must be a bool"):
        model.generate(src, sample="yes")
