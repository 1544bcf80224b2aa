"""Inverted dropout: the op's gradient check, the three models with dropout on (fixed masks),
p = 0, padding, seeds, inference without dropout, the tiers, save/load, resume and the CLI."""

import numpy as np
import pytest

import minis2s
from minis2s import backend, optim
from minis2s.fast import gru as fast_gru
from minis2s.functional import dropout as F_drop
from minis2s.functional import gru as F_gru
from minis2s.gradcheck import check_model, numerical_gradient, rel_error
from minis2s.layers import GRU
from minis2s.train import fit, resume, validation_loss
from tests.helpers import to_host

# a padded batch: rows of different source and target lengths
SRC = np.array([[5, 6, 7, 8, 9], [9, 5, 4, 0, 0], [7, 0, 0, 0, 0]])
TGT = np.array([[1, 5, 6, 2, 0, 0], [1, 7, 8, 9, 4, 2], [1, 6, 2, 0, 0, 0]])
RATES = dict(dropout_embed=0.2, dropout_hidden=0.3, dropout_readout=0.25)


def dev(*arrays):
    """The arrays on the active backend (None stays None), for the unchecked fast functions."""
    return [None if a is None else backend.asarray(a) for a in arrays]


def make(kind, dtype="float64", **kw):
    kw = {**RATES, **kw}
    common = dict(embed_dim=4, hidden_dim=5, num_layers=2, bidirectional=True, dtype=dtype, seed=1)
    if kind == "seq2seq":
        return minis2s.Seq2Seq(12, 12, **common, **kw)
    if kind == "attention":
        return minis2s.AttentionSeq2Seq(12, 12, attention="additive", **common, **kw)
    if kind == "feeding":
        return minis2s.AttentionSeq2Seq(12, 12, input_feeding=True, **common, **kw)
    return minis2s.PointerGenerator(12, coverage=True, **common, **kw)


KINDS = ("seq2seq", "attention", "feeding", "pointer")


def loss_and_grads(model, src=SRC, tgt=TGT, **kw):
    loss = model.forward(src, tgt, **kw)
    model.backward()
    return loss, {k: backend.to_numpy(g).copy() for k, g in model.grads.items()}


# --- the op ----------------------------------------------------------------------------------
def test_op_gradient_check_with_a_fixed_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5))
    keep = rng.random(x.shape) >= 0.4
    dy = rng.normal(size=x.shape)
    y, cache = F_drop.dropout_forward(x, 0.4, mask=keep)
    dx = backend.to_numpy(F_drop.dropout_backward(dy, cache))
    xb = backend.asarray(x.copy())

    def f(_):
        return float((F_drop.dropout_forward(xb, 0.4, mask=keep)[0] * backend.asarray(dy)).sum())

    num = backend.to_numpy(numerical_gradient(f, xb))
    assert rel_error(dx, num) < 1e-8
    np.testing.assert_allclose(backend.to_numpy(y), x * keep / 0.6, rtol=1e-15)
    assert np.all(dx[~keep] == 0)


def test_op_p0_is_the_identity_and_the_mean_is_kept():
    x = np.random.default_rng(1).normal(size=(4, 6))
    y, cache = F_drop.dropout_forward(x, 0.0, rng=0)
    np.testing.assert_array_equal(backend.to_numpy(y), x)
    np.testing.assert_array_equal(backend.to_numpy(F_drop.dropout_backward(x, cache)), x)
    ones = np.ones((400, 500))
    y, _ = F_drop.dropout_forward(ones, 0.3, rng=2)
    y = backend.to_numpy(y)
    assert abs(y.mean() - 1) < 0.01 and set(np.unique(y).round(12)) == {0.0, round(1 / 0.7, 12)}


def test_op_seed_reproduces_the_mask():
    x = np.ones((5, 7))
    a, b, c = (backend.to_numpy(F_drop.dropout_forward(x, 0.5, rng=s)[0]) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("p, exc", [(1.0, ValueError), (-0.1, ValueError),
                                    (float("nan"), ValueError),
                                    ("0.1", TypeError), (True, TypeError)])
def test_bad_rates_name_the_argument(p, exc):
    with pytest.raises(exc, match="p must"):
        F_drop.dropout_forward(np.ones(3), p)
    with pytest.raises(exc, match="dropout_hidden must"):
        minis2s.Seq2Seq(8, 8, dropout_hidden=p)
    with pytest.raises(exc, match="dropout must"):
        minis2s.PointerGenerator(8, dropout=p)


# --- the GRU between its layers --------------------------------------------------------------
def test_gru_dropout_masks_fast_equals_reference_with_padding():
    rng = np.random.default_rng(0)
    gru = GRU(3, 4, num_layers=3, bidirectional=True, dtype="float64", seed=0)
    x = rng.normal(size=(3, 5, 3))
    mask = np.array([[1] * 5, [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
    drops = [(rng.random((3, 5, 8)) >= 0.3) / 0.7 for _ in range(2)]
    dout = rng.normal(size=(3, 5, 8))
    dh_n = rng.normal(size=(6, 3, 4))
    ref = F_gru.gru_forward(x, None, mask, gru.params, 3, True, drops)
    lengths = mask.sum(1)
    fast = fast_gru.gru_forward(*dev(x, None, mask), gru.params, 3, True, lengths=lengths,
                                dropout_masks=dev(*drops))  # an internal: device arrays only
    for a, b in zip(ref[:2], fast[:2]):
        np.testing.assert_allclose(to_host(b), to_host(a), rtol=1e-10, atol=1e-12)
    gr = F_gru.gru_backward(dout, dh_n, ref[2])
    gf = fast_gru.gru_backward(*dev(dout, dh_n), fast[2])
    np.testing.assert_allclose(to_host(gf[0]), to_host(gr[0]), rtol=1e-10, atol=1e-12)
    for k in gr[2]:
        np.testing.assert_allclose(to_host(gf[2][k]), to_host(gr[2][k]), rtol=1e-10, atol=1e-12,
                                   err_msg=k)
    # and the dropout changed something
    plain = F_gru.gru_forward(x, None, mask, gru.params, 3, True)
    assert not np.allclose(to_host(plain[0]), to_host(ref[0]))


def test_gru_stack_step_dropout_fast_equals_reference():
    rng = np.random.default_rng(1)
    gru = GRU(3, 4, num_layers=3, dtype="float64", seed=0)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(3, 2, 4))
    drops = [(rng.random((2, 4)) >= 0.5) * 2.0 for _ in range(2)]
    dout, dh = rng.normal(size=(2, 4)), rng.normal(size=(3, 2, 4))
    ref = F_gru.gru_stack_step_forward(x, h, gru.params, 3, drops)
    fast = fast_gru.gru_stack_step_forward(*dev(x, h), gru.params, 3, dev(*drops))
    np.testing.assert_allclose(to_host(fast[1]), to_host(ref[1]), rtol=1e-12)
    gr = F_gru.gru_stack_step_backward(dout, dh, ref[2])
    gf = fast_gru.gru_stack_step_backward(*dev(dout, dh), fast[2])
    np.testing.assert_allclose(to_host(gf[0]), to_host(gr[0]), rtol=1e-10)
    np.testing.assert_allclose(to_host(gf[1]), to_host(gr[1]), rtol=1e-10)
    with pytest.raises(ValueError, match="dropout_masks must hold"):
        F_gru.gru_stack_step_forward(x, h, gru.params, 3, drops[:1])


# --- the models ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_model_gradient_check_with_dropout_and_a_fixed_mask(kind):
    model = make(kind).train().seed_dropout(3, 11)  # every forward: the masks of (3, 11)
    report = check_model(model, SRC, TGT)
    assert report.max_error < 1e-6, str(report)
    model.eval()
    assert model.forward(SRC, TGT) != model.train().forward(SRC, TGT)  # the masks mattered


@pytest.mark.parametrize("kind", KINDS)
def test_rate_zero_is_exactly_the_model_without_dropout(kind):
    plain = make(kind, dropout_embed=0.0, dropout_hidden=0.0, dropout_readout=0.0).train()
    la, ga = loss_and_grads(plain)
    lb, gb = loss_and_grads(make(kind, dropout_embed=0.0, dropout_hidden=0.0,
                                 dropout_readout=0.0))  # not training
    lc, gc = loss_and_grads(make(kind))  # rates, but eval mode
    assert la == lb == lc
    for k in ga:
        np.testing.assert_array_equal(ga[k], gb[k], err_msg=k)
        np.testing.assert_array_equal(ga[k], gc[k], err_msg=k)


@pytest.mark.parametrize("kind", KINDS)
def test_a_padded_row_equals_the_row_alone_given_the_same_mask(kind):
    model = make(kind).train()
    rng = np.random.default_rng(5)
    full = {}

    def batch_masks(name, shape):
        full[name] = rng.random(shape) >= model._rate(name)
        return full[name]

    model.dropout_mask = batch_masks
    n = (TGT[:, 1:] != 0).sum(axis=1)
    loss, grads = loss_and_grads(model)
    total_loss, total = 0.0, {k: np.zeros_like(g) for k, g in grads.items()}
    for b in range(len(SRC)):
        S, T = (SRC[b] != 0).sum(), (TGT[b] != 0).sum()
        model.dropout_mask = lambda name, shape, b=b: full[name][b:b + 1, :shape[1]]
        lb, gb = loss_and_grads(model, SRC[b:b + 1, :S], TGT[b:b + 1, :T])
        total_loss += lb * n[b]
        for k in total:
            total[k] += gb[k] * n[b]
    assert abs(total_loss - loss * n.sum()) < 1e-12 * n.sum()
    for k in grads:
        np.testing.assert_allclose(total[k], grads[k] * n.sum(), rtol=1e-9, atol=1e-13,
                                   err_msg=k)


@pytest.mark.parametrize("kind", ("seq2seq", "pointer"))
def test_the_seed_reproduces_the_masks(kind):
    a, b = make(kind).train(), make(kind).train()
    assert a.seed_dropout(4, 2).forward(SRC, TGT) == b.seed_dropout(4, 2).forward(SRC, TGT)
    assert a.forward(SRC, TGT) == a.forward(SRC, TGT)  # (seed, step) fixed: the same masks
    assert a.seed_dropout(4, 3).forward(SRC, TGT) != b.forward(SRC, TGT)
    a.seed_dropout(9)  # one generator: new masks every forward, the same sequence per seed
    b.seed_dropout(9)
    first = [a.forward(SRC, TGT) for _ in range(3)]
    assert first == [b.forward(SRC, TGT) for _ in range(3)] and len(set(first)) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_no_dropout_in_generate_beam_search_and_validation(kind):
    model = make(kind, dtype="float32", dropout_embed=0.5, dropout_hidden=0.5,
                 dropout_readout=0.5)
    greedy, beam = model.generate(SRC, max_len=6, beam_size=1), model.generate(SRC, max_len=6,
                                                                            beam_size=3)
    pairs = [(list(s[s != 0]), list(t[t != 0])) for s, t in zip(SRC, TGT)]
    val = validation_loss(model, pairs)
    model.train().seed_dropout(0)
    assert model.generate(SRC, max_len=6, beam_size=1) == greedy
    assert model.generate(SRC, max_len=6, beam_size=3) == beam
    assert validation_loss(model, pairs) == val
    assert model.training  # validation_loss restored the mode
    assert model.forward(SRC, TGT) != model.eval().forward(SRC, TGT)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_tier_equals_reference_tier_with_dropout(kind):
    out = {}
    for name in ("fast", "reference"):
        with _impl(name):
            out[name] = loss_and_grads(make(kind).train().seed_dropout(2, 5))
    (la, ga), (lb, gb) = out["fast"], out["reference"]
    assert abs(la - lb) < 1e-10 * abs(lb)
    for k in ga:
        np.testing.assert_allclose(ga[k], gb[k], rtol=1e-10, atol=1e-13, err_msg=k)


class _impl:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.before = backend.impl()
        backend.use_impl(self.name)

    def __exit__(self, *exc):
        backend.use_impl(self.before)


@pytest.mark.parametrize("kind", ("seq2seq", "attention", "pointer"))
def test_step_by_step_training_uses_the_same_masks(kind):
    """Scheduled sampling's path with all-gold inputs equals the all-at-once path."""
    model = make(kind).train().seed_dropout(1, 1)
    la, ga = loss_and_grads(model)
    lb, gb = loss_and_grads(model, use_gold=np.ones((3, 5), bool))
    assert abs(la - lb) < 1e-12
    for k in ga:
        np.testing.assert_allclose(gb[k], ga[k], rtol=1e-9, atol=1e-13, err_msg=k)


@pytest.mark.parametrize("kind", ("seq2seq", "pointer"))
def test_config_round_trips_and_old_checkpoints_load(kind, tmp_path):
    model = make(kind, dropout_embed=0.1)
    assert model.config["dropout_embed"] == 0.1 and model.config["dropout_readout"] == 0.25
    model.save(tmp_path / "m.ckpt")
    loaded = minis2s.load(tmp_path / "m.ckpt")
    assert loaded.config == model.config and loaded.dropout_rates == model.dropout_rates
    assert not loaded.training
    old = {k: v for k, v in model.config.items() if not k.startswith("dropout")}
    assert type(model)(**old).dropout_rates == {"embed": 0.0, "hidden": 0.0, "readout": 0.0}
    every = type(model)(**old, dropout=0.3, dropout_hidden=0.0)
    assert every.dropout_rates == {"embed": 0.3, "hidden": 0.0, "readout": 0.3}


def test_resume_with_dropout_is_exact(tmp_path):
    from minis2s.data import Vocab, encode_pairs, make_splits

    train, val, _ = make_splits("reverse", (120, 10, 10), seed=0)
    v = Vocab.build([s for s, _ in train])
    tr, va = encode_pairs(train, v, v), encode_pairs(val, v, v)

    def new():
        m = minis2s.AttentionSeq2Seq(len(v), len(v), embed_dim=8, hidden_dim=8, num_layers=2,
                                     dropout=0.3)
        return m, optim.Adam(m.params, m.grads, lr=0.01)

    kw = dict(batch_size=32, progress=False, log=None, vocabs={"src": v, "tgt": v}, seed=7)
    m1, o1 = new()
    fit(m1, o1, tr, va, epochs=2, out_dir=tmp_path / "a", **kw)
    assert not m1.training
    m2, o2 = new()
    fit(m2, o2, tr, va, epochs=1, out_dir=tmp_path / "b", **kw)
    m3, _, res = resume(tmp_path / "b" / "last.ckpt", tr, va, epochs=2, batch_size=32,
                        progress=False, log=None, out_dir=tmp_path / "b")
    assert m3.dropout_rates == m1.dropout_rates
    a, c = m1.state_dict(), m3.state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)
    # and dropout was on: without it the run differs
    m4, o4 = new()
    m4.set_dropout(0.0)
    fit(m4, o4, tr, va, epochs=2, **kw)
    assert not np.array_equal(m4.state_dict()["out.W"], a["out.W"])


def test_cli_dropout_flags(tmp_path, capsys):
    from minis2s.checkpoint import load_checkpoint
    from minis2s.cli import main

    run = ["train", "--task", "reverse", "--model", "attention", "--n-train", "60", "--n-val",
           "10", "--n-test", "10", "--epochs", "1", "--batch-size", "32", "--hidden-dim", "8",
           "--embed-dim", "8", "--layers", "2", "--no-progress"]
    assert main(run + ["--dropout", "1.0", "--out", str(tmp_path / "x")]) == 2
    assert "--dropout must be in [0, 1)" in capsys.readouterr().err
    assert main(run + ["--dropout-readout", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--dropout-readout must be" in capsys.readouterr().err
    assert main(run + ["--dropout", "0.2", "--dropout-hidden", "0.4", "--out",
                       str(tmp_path / "r")]) == 0
    cfg = load_checkpoint(tmp_path / "r" / "last.ckpt").model.config
    assert (cfg["dropout_embed"], cfg["dropout_hidden"], cfg["dropout_readout"]) == (0.2, 0.4,
                                                                                     0.2)
