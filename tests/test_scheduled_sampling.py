"""Teacher-forcing ratio and scheduled sampling (Bengio et al. 2015; issue 13): with a fixed
sampling pattern every model's hand-written gradient passes a float64 check on padded batches;
an all-gold pattern is today's teacher forcing; an all-own-prediction pattern feeds what greedy
decoding feeds; the two tiers agree; the schedules take their documented values; the patterns
are a function of (seed, step), and a resumed run equals an uninterrupted one.
(docs/derivations/scheduled_sampling.md)"""

import math
import textwrap

import numpy as np
import pytest

from minis2s import backend, optim
from minis2s.checkpoint import load_checkpoint
from minis2s.constants import EOS, UNK
from minis2s.data import Vocab, encode_pairs, make_splits
from minis2s.gradcheck import check_model
from minis2s.models import Seq2Seq
from minis2s.optim import TeacherForcing, teacher_forcing_ratio
from minis2s.testing import tiny_batch, tiny_model
from minis2s.train import fit, resume
from tests.helpers import tier

CONFIGS = [
    ("Seq2Seq", dict()),
    ("AttentionSeq2Seq", dict(attention="additive")),
    ("AttentionSeq2Seq", dict(attention="dot", input_feeding=True)),
    ("PointerGenerator", dict(coverage=True)),
]
IDS = ["seq2seq", "attention", "attention-input-feeding", "pointer-coverage"]


def make(name, kw, seed=0):
    model = tiny_model(name, seed=seed, **kw)
    if name == "PointerGenerator":  # zero at init: make the coverage term matter
        w = model.params["attn.w_c"]
        w[...] = backend.asarray(np.random.default_rng(8).normal(0, 1.5, w.shape), dtype=w.dtype)
    return model


def pattern(B, T, p=0.5, seed=1):
    gold = np.random.default_rng(seed).random((B, T - 1)) < p
    gold[:, 0] = True
    return gold


def host_grads(model):
    return {k: backend.to_numpy(g).copy() for k, g in model.grads.items()}


class WithPattern:
    """The model, with forward fixed to one sampling pattern (for check_model)."""

    def __init__(self, model, use_gold):
        self.model, self.use_gold = model, use_gold
        self.params, self.grads = model.params, model.grads

    def forward(self, src, tgt):
        return self.model.forward(src, tgt, use_gold=self.use_gold)

    def backward(self):
        self.model.backward()



# --- the models ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_gradient_check_with_a_fixed_sampling_pattern(name, kw):
    model = make(name, kw)
    src, tgt = tiny_batch(model, B=4, S=7, T=7)
    assert (src == 0).any() and (tgt == 0).any()  # padded
    gold = pattern(*tgt.shape)
    assert not gold.all() and gold[:, 1:].any()
    model.forward(src, tgt, use_gold=gold)
    report = check_model(WithPattern(model, gold), src, tgt, max_elements=25)
    assert report.passed, str(report)


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_all_gold_is_todays_teacher_forcing(name, kw):
    model = make(name, kw)
    src, tgt = tiny_batch(model, B=4, S=7, T=6)
    loss = model.forward(src, tgt)
    model.backward()
    grads = host_grads(model)
    loss_steps = model.forward(src, tgt, use_gold=np.ones((4, 5), dtype=bool))
    model.backward()
    assert loss_steps == pytest.approx(loss, rel=1e-12)
    for k, g in host_grads(model).items():
        np.testing.assert_allclose(g, grads[k], rtol=1e-9, atol=1e-13, err_msg=k)
    # a ratio of 1 draws no mask at all: fit then runs today's path, unchanged
    assert TeacherForcing().use_gold((4, 6)) is None
    assert TeacherForcing("linear", c=0.5).use_gold((4, 6)) is None  # ε_0 = 1
    assert TeacherForcing("linear", c=0.5).use_gold((4, 6), step=1) is not None


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_own_predictions_are_what_greedy_decoding_feeds(name, kw):
    model = make(name, kw, seed=3)
    src, tgt = tiny_batch(model, B=4, S=7, T=7)
    B, T = tgt.shape
    gold = np.zeros((B, T - 1), dtype=bool)
    gold[:, 0] = True
    model.forward(src, tgt, use_gold=gold)
    fed = backend.to_numpy(model._cache.emb.ids)  # the ids the decoder read, (B, T − 1)
    hyps = model.generate(src, max_len=T, beam_size=1)
    pointer = name == "PointerGenerator"
    compared = 0
    for b, hyp in enumerate(hyps):
        choices = list(hyp) + [EOS]  # greedy's tokens, its EOS included
        n = min(len(choices), T - 2)
        want = [UNK if pointer and i >= model.vocab_size else i for i in choices[:n]]
        assert fed[b, 1:1 + n].tolist() == want, (b, fed[b], hyp)
        compared += n
    assert compared >= B  # the comparison covered real steps


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_fast_tier_equals_reference_tier(name, kw):
    model = make(name, kw)
    src, tgt = tiny_batch(model, B=4, S=7, T=7)
    gold = pattern(*tgt.shape, seed=5)
    out = {}
    for impl in ("fast", "reference"):
        with tier(impl):
            loss = model.forward(src, tgt, use_gold=gold)
            model.backward()
        out[impl] = loss, host_grads(model)
    assert out["fast"][0] == pytest.approx(out["reference"][0], rel=1e-10)
    for k, g in out["fast"][1].items():
        r = out["reference"][1][k]
        scale = max(np.abs(g).max(), np.abs(r).max(), 1e-300)
        assert np.abs(g - r).max() / scale <= 1e-10, k


def test_every_model_on_the_cupy_stand_in():
    """Host masks meet device arrays (tests/fake_cupy refuses any mix of NumPy and CuPy): the
    fed ids equal those of NumPy, and the losses equal them to float64 rounding."""
    from tests.test_fake_cupy import run_on_fake_cupy

    code = """
        import numpy as np
        from minis2s import backend
        from minis2s.optim import TeacherForcing
        from minis2s.testing import tiny_batch, tiny_model
        out = []
        for cls, kw in [("Seq2Seq", {}), ("AttentionSeq2Seq", dict(input_feeding=True)),
                        ("PointerGenerator", dict(coverage=True))]:
            m = tiny_model(cls, **kw)
            src, tgt = tiny_batch(m, B=4, S=7, T=7)
            gold = TeacherForcing(ratio=0.4, seed=2).use_gold(tgt.shape)
            out.append(repr(m.forward(src, tgt, use_gold=gold)))
            m.backward()
            out.append(str(backend.to_numpy(m._cache.emb.ids).tolist()))
        print(backend.name, "|".join(out))
    """
    r = run_on_fake_cupy(code)
    assert r.returncode == 0, r.stdout + r.stderr
    name, cupy_out = r.stdout.strip().split(" ", 1)
    assert name == "cupy"
    local = {}  # the same code on NumPy, here
    exec(textwrap.dedent(code).replace('print(backend.name, "|".join(out))',
                                       'result = "|".join(out)'), local)
    # The fed ids must match exactly; the losses to float64 rounding (the subprocess may sum in
    # another order, e.g. with another BLAS thread count, which changes the last digit).
    theirs, ours = cupy_out.split("|"), local["result"].split("|")
    assert len(theirs) == len(ours) == 6
    assert theirs[1::2] == ours[1::2]
    for a, b in zip(theirs[0::2], ours[0::2]):
        assert float(a) == pytest.approx(float(b), rel=1e-12, abs=0)


def test_a_padded_row_equals_that_row_alone():
    model = make("AttentionSeq2Seq", dict(attention="general"))
    src, tgt = tiny_batch(model, B=3, S=7, T=7)
    gold = pattern(*tgt.shape, seed=2)
    b = 2  # the shortest source
    n_src, n_tgt = int((src[b] != 0).sum()), int((tgt[b] != 0).sum())
    model.forward(src, tgt, use_gold=gold)
    fed = backend.to_numpy(model._cache.emb.ids)[b, :n_tgt - 1]
    model.forward(src[b:b + 1, :n_src], tgt[b:b + 1, :n_tgt], use_gold=gold[b:b + 1, :n_tgt - 1])
    assert backend.to_numpy(model._cache.emb.ids)[0].tolist() == fed.tolist()


def test_bad_masks_are_refused():
    model = make("Seq2Seq", {})
    src, tgt = tiny_batch(model, B=3, S=7, T=6)
    with pytest.raises(ValueError, match=r"use_gold must have shape \(B, T - 1\)"):
        model.forward(src, tgt, use_gold=np.ones((3, 6), dtype=bool))
    with pytest.raises(TypeError, match="use_gold must be a boolean array"):
        model.forward(src, tgt, use_gold=np.ones((3, 5)))
    with pytest.raises(TypeError, match="use_gold must be a boolean array"):
        model.forward(src, tgt, use_gold=[[True] * 5] * 3)
    with pytest.raises(ValueError, match=r"use_gold\[:, 0\] must be all True"):
        model.forward(src, tgt, use_gold=np.zeros((3, 5), dtype=bool))


# --- the schedules ---------------------------------------------------------------------------
def test_schedule_values():
    assert TeacherForcing(ratio=0.75).ratio_at(10_000) == 0.75
    lin = TeacherForcing("linear", k=0.9, c=0.01, min_ratio=0.2)
    assert [lin.ratio_at(i) for i in (0, 10, 70, 1000)] == pytest.approx([0.9, 0.8, 0.2, 0.2])
    exp = TeacherForcing("exponential", k=0.99)
    assert exp.ratio_at(0) == 1 and exp.ratio_at(100) == pytest.approx(0.99 ** 100)
    assert TeacherForcing("exponential", k=0.5, min_ratio=0.1).ratio_at(10) == 0.1
    sig = TeacherForcing("inverse-sigmoid", k=100)
    for i in (0, 100, 460, 1000):
        assert sig.ratio_at(i) == pytest.approx(100 / (100 + math.exp(i / 100)))
    assert sig.ratio_at(10 ** 9) < 1e-300  # no overflow
    assert teacher_forcing_ratio(5, "linear", k=1.0, c=0.1) == pytest.approx(0.5)
    tf = TeacherForcing("linear", c=0.25)
    assert tf.current == 1.0 and tf.step() == 0.75 and tf.t == 1


@pytest.mark.parametrize("kw, err, match", [
    (dict(schedule="cosine"), ValueError, "schedule must be one of"),
    (dict(ratio=1.5), ValueError, "ratio must be a probability"),
    (dict(ratio=-0.1), ValueError, "ratio must be a finite number >= 0"),
    (dict(ratio="0.5"), TypeError, "ratio must be a number"),
    (dict(schedule="linear"), ValueError, "needs c > 0"),
    (dict(schedule="linear", c=0), ValueError, "c must be > 0"),
    (dict(schedule="linear", c=0.1, ratio=0.5), ValueError, "takes k"),
    (dict(schedule="exponential"), ValueError, "needs k in"),
    (dict(schedule="exponential", k=1.0), ValueError, r"k must be in \(0, 1\)"),
    (dict(schedule="inverse-sigmoid", k=0.5), ValueError, "k must be >= 1"),
    (dict(schedule="exponential", k=0.9, c=1.0), ValueError, "c is the linear"),
    (dict(k=0.9), ValueError, "the constant schedule takes ratio"),
    (dict(ratio=0.5, min_ratio=0.1), ValueError, "the constant schedule has none"),
    (dict(schedule="linear", c=0.1, min_ratio=2), ValueError, "min_ratio must be a probability"),
    (dict(seed=-1), ValueError, "seed must be an int >= 0"),
    (dict(seed=1.5), TypeError, "seed must be an int >= 0"),
])
def test_bad_schedule_arguments(kw, err, match):
    with pytest.raises(err, match=match):
        TeacherForcing(**kw)


def test_masks_are_a_function_of_seed_and_step():
    a, b = TeacherForcing(ratio=0.5, seed=4), TeacherForcing(ratio=0.5, seed=4)
    for _ in range(3):
        b.step()
    np.testing.assert_array_equal(a.use_gold((8, 9), step=3), b.use_gold((8, 9)))
    assert not np.array_equal(a.use_gold((8, 9), step=3), a.use_gold((8, 9), step=4))
    assert not np.array_equal(a.use_gold((8, 9)), TeacherForcing(ratio=0.5, seed=5).use_gold(
        (8, 9)))
    m = TeacherForcing(ratio=0.3, seed=0).use_gold((2000, 11))
    assert m[:, 0].all() and abs(m[:, 1:].mean() - 0.3) < 0.01
    assert not TeacherForcing(ratio=0.0).use_gold((5, 6))[:, 1:].any()
    state = b.state_dict()
    c = TeacherForcing.from_state_dict(state)
    assert c.state_dict() == state and c.t == 3
    with pytest.raises(ValueError, match="not a TeacherForcing"):
        c.load_state_dict({"class": "WarmupSchedule"})


# --- fit and resume --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    train, val, _ = make_splits("reverse", (96, 12, 4), seed=0)
    v = Vocab.build([s for s, _ in train])
    return encode_pairs(train, v, v), encode_pairs(val, v, v), v


KW = dict(batch_size=32, progress=False, log=None, seed=3)  # 3 steps per epoch


def new_run(v):
    m = Seq2Seq(len(v), len(v), embed_dim=6, hidden_dim=8, seed=0)
    return m, optim.Adam(m.params, m.grads, lr=0.02)


def params_of(m):
    return {k: backend.to_numpy(p).copy() for k, p in m.params.items()}


def test_fit_is_reproducible_and_logs_the_ratio(data):
    tr, va, v = data
    logs, runs = [], []
    for _ in range(2):
        m, o = new_run(v)
        tf = TeacherForcing("linear", c=0.1, min_ratio=0.3, seed=1)
        res = fit(m, o, tr, va, epochs=2, teacher_forcing=tf, **dict(KW, log=logs.append))
        runs.append((params_of(m), res.history["step_loss"]))
        assert tf.t == 6 and res.history["tf_ratio"] == pytest.approx([0.8, 0.5])
    assert runs[0][1] == runs[1][1]
    for k in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][k], runs[1][0][k], err_msg=k)
    assert "teacher forcing 0.8" in logs[0] and "teacher forcing 0.5" in logs[1]
    m, o = new_run(v)  # teacher forcing throughout: a different run
    plain = fit(m, o, tr, va, epochs=2, **KW)
    assert plain.history["step_loss"][0] == runs[0][1][0]  # step 0 has ε = 1
    assert plain.history["step_loss"][1:] != runs[0][1][1:]
    with pytest.raises(TypeError, match="teacher_forcing must be a minis2s.optim"):
        fit(m, o, tr, va, epochs=1, teacher_forcing=0.5, **KW)


class Interrupt(Exception):
    pass


def test_resume_with_scheduled_sampling_is_exact(data, tmp_path):
    tr, va, v = data
    kw = dict(KW, vocabs={"src": v, "tgt": v})
    make_tf = lambda: TeacherForcing("inverse-sigmoid", k=2.0, seed=7)  # noqa: E731
    m1, o1 = new_run(v)
    whole = fit(m1, o1, tr, va, epochs=3, teacher_forcing=make_tf(),
                out_dir=tmp_path / "whole", **kw)

    def log(msg):  # a kill while epoch 2 logs: last.ckpt holds epoch 1
        if msg.startswith("epoch 2/"):
            raise Interrupt

    m2, o2 = new_run(v)
    with pytest.raises(Interrupt):
        fit(m2, o2, tr, va, epochs=3, teacher_forcing=make_tf(), out_dir=tmp_path / "cut",
            **dict(kw, log=log))
    assert load_checkpoint(tmp_path / "cut" / "last.ckpt").extra["teacher_forcing"]["t"] == 3
    m3, _, res = resume(tmp_path / "cut" / "last.ckpt", tr, va, epochs=3,
                        out_dir=tmp_path / "cut", **{k: x for k, x in KW.items() if k != "seed"})
    a, c = params_of(m1), params_of(m3)
    for k in a:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)
    for key in ("step_loss", "tf_ratio", "val_exact"):
        assert whole.history[key] == res.history[key], key
    cut, full = (load_checkpoint(tmp_path / d / "last.ckpt").extra for d in ("cut", "whole"))
    assert cut["teacher_forcing"] == full["teacher_forcing"]
    assert full["teacher_forcing"]["t"] == 9


# --- the command line --------------------------------------------------------------------------
RUN = ["train", "--task", "reverse", "--model", "attention", "--n-train", "96", "--n-val", "12",
       "--batch-size", "32", "--hidden-dim", "8", "--embed-dim", "6", "--no-progress"]


def test_cli_flags_train_log_and_checkpoint_the_schedule(tmp_path, capsys):
    import json

    from minis2s.cli import TF_SCHEDULES, main

    assert TF_SCHEDULES == optim.TF_SCHEDULES
    out = tmp_path / "run"
    assert main(RUN + ["--epochs", "2", "--out", str(out), "--ss-schedule", "exponential",
                       "--ss-k", "0.9", "--ss-min", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "scheduled sampling: TeacherForcing('exponential'" in printed
    assert "teacher forcing 0.81;" in printed and "teacher forcing 0.59;" in printed
    assert json.loads((out / "metrics.json").read_text())["tf_ratio"] == pytest.approx(
        [0.9 ** 2, 0.9 ** 5])
    state = load_checkpoint(out / "last.ckpt").extra["teacher_forcing"]
    assert (state["schedule"], state["k"], state["min_ratio"], state["t"]) == (
        "exponential", 0.9, 0.5, 6)
    out2 = tmp_path / "plain"  # the default: no scheduled sampling recorded
    assert main(RUN + ["--epochs", "1", "--out", str(out2), "--teacher-forcing", "1"]) == 0
    assert "teacher_forcing" not in load_checkpoint(out2 / "last.ckpt").extra


@pytest.mark.parametrize("flags, match", [
    (["--teacher-forcing", "1.5"], "--teacher-forcing must be a probability in"),
    (["--ss-schedule", "linear"], "needs c > 0"),
    (["--ss-schedule", "linear", "--ss-c", "0.1", "--teacher-forcing", "0.5"],
     "--teacher-forcing is the constant ratio"),
    (["--ss-k", "0.5"], "--ss-k, --ss-c and --ss-min need --ss-schedule"),
    (["--ss-schedule", "exponential", "--ss-k", "0.5", "--ss-c", "1"], "--ss-c is the slope"),
    (["--ss-schedule", "inverse-sigmoid", "--ss-k", "0.5"], "--ss-k must be >= 1"),
    (["--ss-schedule", "linear", "--ss-c", "0.1", "--ss-min", "2"],
     "--ss-min must be a probability"),
])
def test_cli_refuses_bad_flags(tmp_path, capsys, flags, match):
    from minis2s.cli import main

    assert main(RUN + ["--epochs", "1", "--out", str(tmp_path / "r")] + flags) == 2
    assert match in capsys.readouterr().err
