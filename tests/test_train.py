"""The training loop: exact resume, non-finite detection, checkpoints kept, evaluation."""

import math

import numpy as np
import pytest

from minis2s import backend, optim
from minis2s.data import Vocab, encode_pairs, make_splits
from minis2s.models import Seq2Seq
from minis2s.train import NonFiniteError, evaluate, fit, resume, train_step


@pytest.fixture(scope="module")
def data():
    train, val, _ = make_splits("reverse", (200, 20, 10), seed=0)
    v = Vocab.build([s for s, _ in train])
    return encode_pairs(train, v, v), encode_pairs(val, v, v), v


def new_model(v, seed=0):
    m = Seq2Seq(len(v), len(v), embed_dim=8, hidden_dim=12, seed=seed)
    return m, optim.Adam(m.params, m.grads, lr=0.01)


def params_of(m):
    return {k: backend.to_numpy(p).copy() for k, p in m.params.items()}


def test_resume_reproduces_an_uninterrupted_run_exactly(data, tmp_path):
    tr, va, v = data
    kw = dict(batch_size=32, progress=False, log=None, vocabs={"src": v, "tgt": v}, seed=7)
    m1, o1 = new_model(v)
    fit(m1, o1, tr, va, epochs=3, out_dir=tmp_path / "a", **kw)
    m2, o2 = new_model(v)
    fit(m2, o2, tr, va, epochs=1, out_dir=tmp_path / "b", **kw)  # "interrupted" after epoch 1
    m3, o3, res = resume(tmp_path / "b" / "last.ckpt", tr, va, epochs=3, batch_size=32,
                         progress=False, log=None, out_dir=tmp_path / "b")
    a, c = params_of(m1), params_of(m3)
    for k in a:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)
    assert o3.t == o1.t
    assert len(res.history["val_exact"]) == 3


def test_nonfinite_loss_stops_with_step_batch_and_parameter(data):
    tr, va, v = data
    m, o = new_model(v)
    m.params["out.W"][0, 0] = np.nan
    with pytest.raises(NonFiniteError) as e:
        fit(m, o, tr, epochs=1, batch_size=32, progress=False, log=None)
    msg = str(e.value)
    assert "step 1" in msg and "batch 0" in msg and "'out.W'" in msg


def test_nonfinite_gradient_names_the_parameter(data):
    tr, _, v = data
    m, o = new_model(v)
    src, tgt = tr[0]
    from minis2s.data import pad_sequences

    S, T = pad_sequences([src]), pad_sequences([tgt])
    before = params_of(m)
    orig = m._backward

    def poisoned():
        orig()
        m.grads["decoder.weight_hh_l0"][0, 0] = np.inf

    m._backward = poisoned
    with pytest.raises(NonFiniteError, match="decoder.weight_hh_l0"):
        train_step(m, o, S, T)
    after = params_of(m)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # no update happened


def test_skip_mode_skips_bad_batches_and_keeps_going(data):
    tr, _, v = data
    m, o = new_model(v)
    calls = {"n": 0}
    orig = m._backward

    def sometimes_bad():
        orig()
        calls["n"] += 1
        if calls["n"] == 2:
            m.grads["out.b"][0] = np.nan

    m._backward = sometimes_bad
    res = fit(m, o, tr, epochs=1, batch_size=32, progress=False, log=None, on_nonfinite="skip")
    assert res.history["skipped"] == [2]
    assert all(math.isfinite(x) for x in res.history["step_loss"])
    assert all(np.isfinite(backend.to_numpy(p)).all() for p in m.params.values())


def test_last_good_checkpoint_survives_a_failed_epoch(data, tmp_path):
    tr, va, v = data
    m, o = new_model(v)
    fit(m, o, tr, va, epochs=1, batch_size=32, progress=False, log=None, out_dir=tmp_path,
        vocabs={"src": v, "tgt": v})
    good = (tmp_path / "last.ckpt").read_bytes()
    m.params["out.W"][...] = np.nan
    with pytest.raises(NonFiniteError):
        fit(m, o, tr, va, epochs=2, start_epoch=1, batch_size=32, progress=False, log=None,
            out_dir=tmp_path, vocabs={"src": v, "tgt": v})
    assert (tmp_path / "last.ckpt").read_bytes() == good


def test_evaluate_counts_exact_and_token_accuracy(data):
    tr, _, v = data
    m, _ = new_model(v)
    ev = evaluate(m, tr[:10])
    assert ev["n"] == 10 and 0 <= ev["exact_match"] <= ev["token_accuracy"] + 1e-12 <= 1.0001
    with pytest.raises(ValueError, match="pairs"):
        evaluate(m, [])


def test_bad_fit_arguments(data):
    tr, _, v = data
    m, o = new_model(v)
    with pytest.raises(ValueError, match="on_nonfinite"):
        fit(m, o, tr, on_nonfinite="ignore")
    with pytest.raises(ValueError, match="train_pairs"):
        fit(m, o, [])
