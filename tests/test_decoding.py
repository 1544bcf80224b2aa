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


def brute_force_best(table_b, max_len):
    """Best sequence by length-normalised log-prob among all sequences up to max_len tokens
    (EOS included) that end in EOS, plus unfinished ones of length max_len."""
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
                if lp / L > best_score:
                    best, best_score = full, lp / L
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


@pytest.mark.parametrize("seed", range(4))
def test_beam_search_with_a_wide_beam_finds_the_best_sequence(seed):
    B, V, max_len = 3, 5, 4
    table = random_table(B, V, seed)
    model = TableModel(table)
    out = beam_search(model, backend.xp.zeros((B, 2), dtype=int), beam_size=40, max_len=max_len)
    for b in range(B):
        assert out[b] == brute_force_best(table[b], max_len)


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
