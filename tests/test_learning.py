"""Seq2Seq really learns: ≥ 95% exact match on held-out reversals of 5–10 digits (about 30 s on
2 cores; speed is measured in benchmarks/, never asserted in a test)."""

import pytest

import minis2s
from minis2s import optim
from minis2s.data import Vocab, encode_pairs, make_batches, make_splits
from minis2s.train import evaluate, train_step


@pytest.mark.slow
def test_seq2seq_learns_to_reverse_digits():
    train, _, test = make_splits("reverse", (8000, 10, 500), seed=0)  # 5-10 digits
    vocab = Vocab.build([s for s, _ in train])
    batches = make_batches(encode_pairs(train, vocab, vocab), 32, seed=0, bucket=True)
    model = minis2s.Seq2Seq(len(vocab), len(vocab), embed_dim=16, hidden_dim=128, seed=0)
    opt = optim.Adam(model.params, model.grads)
    # Adam with a step-wise decaying learning rate: 1500 steps at 3e-3, 1000 at 1e-3, 500 at 3e-4
    for n_steps, lr in ((1500, 3e-3), (1000, 1e-3), (500, 3e-4)):
        opt.lr, done = lr, 0
        while done < n_steps:
            for batch in batches:
                train_step(model, opt, batch.src, batch.tgt, clip=5.0)
                done += 1
                if done == n_steps:
                    break
    result = evaluate(model, encode_pairs(test, vocab, vocab))
    assert result["exact_match"] >= 0.95, result["exact_match"]
