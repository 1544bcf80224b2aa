"""PointerGenerator: what tests/test_models.py (the shared matrix) does not cover.

Gradient checks with a nonzero coverage weight w_c (so the gradient really flows through the
coverage chain c^t = Σ_{t'<t} a^{t'}), cov_loss_weight ≠ 1, a repeated source word, OOV ids in
source and target, saturated p_gen (b_ptr = ±50); the loss against a slow per-row reference;
input validation of extended ids; decoding (normalised extended log-probs, coverage carried by
beam search); the coverage switch with save/load; and a learning check: a small model copies
names it never saw in training. Text in and out (copied OOV ids back to words):
tests/test_cli_translate.py; the pictures: tests/test_plots.py.
"""

import math

import numpy as np
import pytest

import minis2s
from minis2s import BOS, EOS, PAD, UNK, backend, optim
from minis2s.data import Vocab
from minis2s.decoding import beam_search, greedy_decode
from minis2s.gradcheck import check_model
from minis2s.testing import random_batch, tiny_model

V = 11


def make(coverage=True, num_layers=1, bidirectional=True, w_c=True, seed=0, **kw):
    model = tiny_model("PointerGenerator", vocab_size=V, coverage=coverage,
                       num_layers=num_layers, bidirectional=bidirectional, seed=seed, **kw)
    if w_c:  # zero at init; make it matter so the coverage chain carries gradient
        rng = np.random.default_rng(seed + 100)
        w = model.params["attn.w_c"]
        w[...] = backend.asarray(rng.normal(0, 1.5, size=w.shape), dtype=w.dtype)
    return model


def batch():
    """Padded rows with OOV ids (>= V) in source and target, a repeated in-vocab source word
    (row 0: 5 twice) and a repeated OOV (row 1: V twice), targets that are in the vocabulary
    but not in the source, in both, and OOVs of the source."""
    src = np.array([
        [5, 7, V, 5, 9, V + 1, 4],
        [V, 6, V, 8, PAD, PAD, PAD],
        [4, V, PAD, PAD, PAD, PAD, PAD],
    ])
    tgt = np.array([
        [BOS, 5, V + 1, 10, V, EOS],
        [BOS, V, 6, EOS, PAD, PAD],
        [BOS, V, 3, 8, EOS, PAD],
    ])
    return src, tgt


def grads_of(model):
    return {k: backend.to_numpy(g).copy() for k, g in model.grads.items()}


# --- gradient checks ----------------------------------------------------------------------
@pytest.mark.parametrize("num_layers, bidirectional, weight", [(1, True, 0.37), (2, False, 2.5)])
def test_gradcheck_with_coverage_chain(num_layers, bidirectional, weight):
    model = make(True, num_layers, bidirectional, cov_loss_weight=weight)
    src, tgt = batch()
    report = check_model(model, src, tgt)
    assert report.passed, str(report)
    assert {r.name for r in report.rows} == set(model.params)
    assert abs(report["attn.w_c"].analytic) > 1e-6  # the coverage parameter is really trained


def test_coverage_off_gives_w_c_exactly_zero_gradient():
    model = make(coverage=False)  # w_c ≠ 0, but coverage off feeds c^t = 0
    src, tgt = batch()
    model.forward(src, tgt)
    model.backward()
    assert np.all(backend.to_numpy(model.grads["attn.w_c"]) == 0)
    assert np.abs(backend.to_numpy(model.grads["attn.v"])).max() > 0


@pytest.mark.parametrize("b_ptr", [50.0, -50.0])
def test_saturated_p_gen_is_finite_and_gradchecks(b_ptr):
    """p_gen = σ(±50) rounds to 1 or to about 2e-22: still finite loss and exact gradients,
    both for targets only the copy branch can make (OOVs) and only the vocabulary can (3, 10)."""
    model = make(coverage=True)
    model.params["ptr.b_ptr"][...] = b_ptr
    src, tgt = batch()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = model.forward(src, tgt)
        model.backward()
    assert math.isfinite(loss) and loss > 10  # one branch is nearly closed: a large loss
    for k, g in model.grads.items():
        assert np.all(np.isfinite(backend.to_numpy(g))), k
    report = check_model(model, src, tgt, max_elements=12)
    assert report.passed, str(report)


def test_padding_invariance_with_coverage_chain():
    model = make(coverage=True, num_layers=2)
    src, tgt = batch()
    loss = model.forward(src, tgt)
    model.backward()
    grads = grads_of(model)
    n = (tgt[:, 1:] != PAD).sum(axis=1)
    want_loss, want = 0.0, {k: np.zeros_like(g) for k, g in grads.items()}
    for b in range(src.shape[0]):
        s = src[b][src[b] != PAD][None]
        t = tgt[b][: int((tgt[b] != PAD).sum())][None]
        want_loss += n[b] * model.forward(s, t)
        model.backward()
        for k, g in grads_of(model).items():
            want[k] += n[b] * g
    assert loss == pytest.approx(want_loss / n.sum(), abs=1e-12)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k] / n.sum(), atol=1e-12, err_msg=k)


# --- the loss against a slow, independent per-row computation --------------------------------
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference_loss(model, src, tgt):
    """−log P(y_t) summed over the real target tokens (+ λ Σ_i min(a_i^t, c_i^t)), per row,
    per step and per source position in plain Python/NumPy; the encoder is the model's."""
    P = {k: backend.to_numpy(v) for k, v in model.params.items()}
    E, Vv = P["src_embed.W"], model.vocab_size
    L, lam = model.num_layers, model.cov_loss_weight
    total_nll = total_cov = 0.0
    n = 0
    for b in range(src.shape[0]):
        s_row = [int(i) for i in src[b] if i != PAD]
        t_row = [int(i) for i in tgt[b] if i != PAD]
        unk = [i if i < Vv else UNK for i in s_row]
        enc_out, s0, _ = model.encode(backend.asarray(np.array([unk])))
        h = backend.to_numpy(enc_out)[0]
        s = [backend.to_numpy(s0)[k, 0].copy() for k in range(L)]
        cov = np.zeros(len(s_row))
        for t in range(len(t_row) - 1):
            x = E[t_row[t] if t_row[t] < Vv else UNK]
            inp = x
            for k in range(L):  # the GRU cell, torch.nn.GRU's equations
                Wi, Wh = P[f"decoder.weight_ih_l{k}"], P[f"decoder.weight_hh_l{k}"]
                bi, bh = P[f"decoder.bias_ih_l{k}"], P[f"decoder.bias_hh_l{k}"]
                gi, gh = Wi @ inp + bi, Wh @ s[k] + bh
                H = s[k].shape[0]
                r = _sigmoid(gi[:H] + gh[:H])
                z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])
                nn = np.tanh(gi[2 * H:] + r * gh[2 * H:])
                s[k] = (1 - z) * nn + z * s[k]
                inp = s[k]
            st = s[-1]
            c_in = cov if model.coverage else np.zeros_like(cov)
            e = np.array([P["attn.v"] @ np.tanh(h[i] @ P["attn.W_h"] + st @ P["attn.W_s"]
                                                 + c_in[i] * P["attn.w_c"] + P["attn.b_attn"])
                          for i in range(len(s_row))])
            a = np.exp(e - e.max())
            a /= a.sum()
            ctx = sum(a[i] * h[i] for i in range(len(s_row)))
            hid = np.concatenate([st, ctx]) @ P["out_hidden.W"] + P["out_hidden.b"]
            logits = hid @ P["out.W"] + P["out.b"]
            p_vocab = np.exp(logits - logits.max())
            p_vocab /= p_vocab.sum()
            p_gen = _sigmoid(P["ptr.w_h"] @ ctx + P["ptr.w_s"] @ st + P["ptr.w_x"] @ x
                             + P["ptr.b_ptr"][0])
            y = t_row[t + 1]
            prob = p_gen * p_vocab[y] if y < Vv else 0.0
            for i, w in enumerate(s_row):
                if w == y:
                    prob += (1 - p_gen) * a[i]
            total_nll -= math.log(prob)
            total_cov += np.minimum(a, cov).sum()
            cov = cov + a
            n += 1
    return total_nll / n + (lam * total_cov / n if model.coverage else 0.0)


@pytest.mark.parametrize("coverage, num_layers", [(False, 1), (True, 1), (True, 2)])
def test_loss_matches_slow_per_row_reference(coverage, num_layers):
    model = make(coverage, num_layers, cov_loss_weight=0.7, seed=3)
    src, tgt = batch()
    assert model.forward(src, tgt) == pytest.approx(reference_loss(model, src, tgt), rel=1e-12)
    src, tgt = random_batch(4, 8, 7, V, V, seed=5, n_oov=2)
    assert model.forward(src, tgt) == pytest.approx(reference_loss(model, src, tgt), rel=1e-12)


def test_coverage_loss_term_and_weight():
    src, tgt = batch()
    base = make(coverage=False, seed=1).forward(src, tgt)
    m1 = make(coverage=True, seed=1, cov_loss_weight=0.0)
    m2 = make(coverage=True, seed=1, cov_loss_weight=2.0)
    m3 = make(coverage=True, seed=1, cov_loss_weight=4.0)
    l1, l2, l3 = m1.forward(src, tgt), m2.forward(src, tgt), m3.forward(src, tgt)
    assert l1 != pytest.approx(base)  # coverage also changes the attention (w_c ≠ 0)
    assert l2 > l1 and l3 - l1 == pytest.approx(2 * (l2 - l1), rel=1e-12)  # linear in λ


# --- input validation -----------------------------------------------------------------------
def test_extended_ids_are_validated():
    model = make()
    src, tgt = batch()
    model.forward(src, tgt)  # ids up to V + (number of the row's OOVs) are fine
    bad_tgt = tgt.copy()
    bad_tgt[1, 2] = V + 1  # row 1's source has only one OOV (V)
    with pytest.raises(ValueError, match=r"tgt row 1 .*not in that row's source.*UNK"):
        model.forward(src, bad_tgt)
    gap = src.copy()
    gap[2, 1] = V + 1  # row 2's first (and only) OOV must be V
    with pytest.raises(ValueError, match=r"src row 2 .*OOV ids must be 11\.\.11"):
        model.forward(gap, tgt.copy() * (tgt < V) + UNK * (tgt >= V))
    with pytest.raises(ValueError, match="src row 2"):
        model.generate(gap)
    with pytest.raises(ValueError, match="src.*outside"):
        model.forward(np.where(src == PAD, PAD, V + 7), tgt)
    with pytest.raises(TypeError, match="trace must be a bool"):
        model.generate(src, trace="yes")
    for kw, exc, match in [(dict(coverage="on"), TypeError, "coverage"),
                           (dict(cov_loss_weight=-1.0), ValueError, "cov_loss_weight"),
                           (dict(attention_dim=0), ValueError, "attention_dim"),
                           (dict(vocab_size=0), ValueError, "vocab_size")]:
        args = dict(vocab_size=V, **kw) if "vocab_size" not in kw else kw
        with pytest.raises(exc, match=match):
            minis2s.PointerGenerator(**args)
    with pytest.raises(TypeError, match="on must be a bool"):
        model.set_coverage(1)


# --- decoding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("b_ptr", [0.0, 50.0, -50.0])
def test_decode_step_gives_normalised_extended_log_probs(b_ptr):
    model = make()
    model.params["ptr.b_ptr"][...] = b_ptr
    src, _ = batch()
    state = model.init_decoder(model.check_src(src))
    y = np.full(3, BOS)
    for y_next in ([5, V, 4], [V + 1, 6, V]):  # OOV inputs are read as UNK
        log_probs, state = model.decode_step(state, backend.asarray(np.array(y)))
        lp = backend.to_numpy(log_probs)
        assert lp.shape == (3, V + src.shape[1])
        assert np.all(np.isfinite(lp[:, :V]))
        used = [{int(i) for i in row if i >= V} for row in src]
        for b in range(3):
            slots = set(range(V, V + src.shape[1]))
            assert np.all(np.isfinite(lp[b, sorted(used[b])]))
            assert np.all(lp[b, sorted(slots - used[b])] == -np.inf)  # no word there
            m = lp[b].max()
            assert m + math.log(np.exp(lp[b] - m).sum()) == pytest.approx(0.0, abs=1e-12)
        y = y_next


@pytest.mark.parametrize("beam", [1, 3])
def test_decoding_equals_teacher_forcing_and_carries_coverage(beam):
    """The traced alpha, p_gen and coverage of the returned hypothesis equal what the training
    forward computes for that same sequence: decode_step and training share the step, and beam
    search reorders the coverage with the hypotheses (c^t = Σ_{t'<t} a^{t'} of the path)."""
    model = make(coverage=True, seed=2)
    src, _ = batch()
    max_len = 6
    decode = greedy_decode if beam == 1 else beam_search
    kw = {} if beam == 1 else {"beam_size": beam}
    ids, traces = decode(model, model.check_src(src), max_len=max_len,
                         trace=("alpha", "coverage", "p_gen"), **kw)
    for b, row in enumerate(ids):
        alpha, cov, p_gen = (traces[k][b] for k in ("alpha", "coverage", "p_gen"))
        steps = alpha.shape[0]
        np.testing.assert_allclose(cov[0], 0.0)
        np.testing.assert_allclose(cov, np.cumsum(alpha, axis=0) - alpha, atol=1e-12)
        s = src[b][src[b] != PAD][None]
        t = np.array([[BOS, *row, EOS]])
        model.forward(s, t)
        out = model._cache.output
        np.testing.assert_allclose(backend.to_numpy(out.alpha)[0, :steps], alpha[:, :s.shape[1]],
                                   atol=1e-10)
        np.testing.assert_allclose(backend.to_numpy(out.p_gen.p_gen)[0, :steps], p_gen,
                                   atol=1e-10)


def test_generate_trace():
    model = make(coverage=True)
    src, _ = batch()
    ids, details = model.generate(src, max_len=5, beam_size=2, trace=True)
    assert ids == model.generate(src, max_len=5, beam_size=2)
    for row, d, s in zip(ids, details, src):
        T_out = d["alpha"].shape[0]
        assert T_out in (len(row), len(row) + 1)
        assert d["alpha"].shape == d["coverage"].shape == (T_out, src.shape[1])
        assert d["p_gen"].shape == (T_out,) and np.all((d["p_gen"] >= 0) & (d["p_gen"] <= 1))
        np.testing.assert_allclose(d["alpha"].sum(axis=1), 1.0)
        assert np.all(d["alpha"][:, s == PAD] == 0)


def test_runs_its_parents_constructor(monkeypatch):
    """PointerGenerator is a Seq2Seq built by Seq2Seq's constructor (its encoder, sizes and
    checks), with its own decoder; generate is the base model's, with no override."""
    from minis2s.models.base import Model
    from minis2s.models.seq2seq import Seq2Seq

    calls = []
    real = Seq2Seq.__init__

    def spy(self, *args, **kw):
        calls.append(type(self).__name__)
        real(self, *args, **kw)

    monkeypatch.setattr(Seq2Seq, "__init__", spy)
    model = minis2s.PointerGenerator(V, embed_dim=4, hidden_dim=5, dtype="float64")
    assert calls == ["PointerGenerator"]
    assert model.src_vocab_size == model.tgt_vocab_size == V
    assert "src_embed.W" in model.params and "tgt_embed.W" not in model.params
    assert minis2s.PointerGenerator.generate is Model.generate
    assert minis2s.AttentionSeq2Seq.generate is Model.generate


# --- the coverage switch, saving ---------------------------------------------------------------
def test_switch_coverage_on_after_training_and_save_load(tmp_path):
    model = make(coverage=False, w_c=False, seed=4)
    src, tgt = batch()
    opt = optim.Adam(model.params, model.grads, lr=0.01)
    for _ in range(3):
        model.forward(src, tgt)
        model.backward()
        assert np.all(backend.to_numpy(model.grads["attn.w_c"]) == 0)
        opt.step()
    assert np.all(backend.to_numpy(model.params["attn.w_c"]) == 0)
    before = model.forward(src, tgt)
    assert model.set_coverage(True, cov_loss_weight=0.5) is model
    assert model.config["coverage"] is True and model.config["cov_loss_weight"] == 0.5
    after = model.forward(src, tgt)
    assert after > before  # + 0.5 · coverage loss (w_c = 0: same attention, same NLL)
    for _ in range(3):  # the second training phase trains w_c
        model.forward(src, tgt)
        model.backward()
        opt.step()
    assert np.abs(backend.to_numpy(model.params["attn.w_c"])).max() > 0
    path = tmp_path / "pg.ckpt"
    model.save(path)
    loaded = minis2s.load(path)
    assert isinstance(loaded, minis2s.PointerGenerator)
    assert loaded.coverage is True and loaded.config == model.config
    assert loaded.forward(src, tgt) == model.forward(src, tgt)
    assert loaded.generate(src, max_len=5) == model.generate(src, max_len=5)
    model.set_coverage(False)
    assert minis2s.PointerGenerator(**model.config).coverage is False


# --- learning -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_learns_to_copy_unseen_names():
    """On the entities task, whose test names never occur in training, a small model trained
    for a few seconds reproduces most records exactly: it copies words it has no embedding for.
    The vocabulary keeps words seen at least 3 times, so most training names are OOVs too."""
    from minis2s.data import encode_pairs, make_batches, make_splits
    from minis2s.data.translate import translate

    train, _, test = make_splits("entities", (1500, 0, 60), seed=0)
    vocab = Vocab.build([s for s, _ in train] + [t for _, t in train], level="word", min_freq=3)
    test_words = {w for _, t in test for w in t.split()}
    train_words = {w for s, t in train for w in (s + " " + t).split()}
    unseen = test_words - train_words
    assert len(unseen) > 50  # the test names really are new
    examples = encode_pairs(train, vocab, vocab, extend_oov=True)
    model = minis2s.PointerGenerator(len(vocab), embed_dim=32, hidden_dim=48, seed=0)
    opt = optim.Adam(model.params, model.grads, lr=0.01)
    for _ in range(4):
        for b in make_batches(examples, 32, seed=0, bucket=True):
            model.forward(b.src, b.tgt)
            model.backward()
            optim.clip_grad_norm(model.grads, 5.0)
            opt.step()
    out = translate(model, [s for s, _ in test], vocab, max_len=20, beam_size=1)
    exact = np.mean([o == t for o, (_, t) in zip(out, test)])
    copied = {w for o in out for w in o.split()} & unseen
    assert exact >= 0.6, (exact, out[:3])
    assert len(copied) >= 0.6 * len(unseen)
