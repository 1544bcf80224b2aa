"""fit with learning-rate schedules, early stopping and weight decay: the rates logged,
best.ckpt following the chosen metric (ties keep the earlier epoch), and an exact resume."""

import numpy as np
import pytest

from minis2s import backend, optim
from minis2s.checkpoint import load_checkpoint
from minis2s.data import Vocab, encode_pairs, make_splits
from minis2s.models import Seq2Seq
from minis2s.train import fit, id_bleu, resume, validation_loss


@pytest.fixture(scope="module")
def data():
    train, val, _ = make_splits("reverse", (96, 12, 4), seed=0)
    v = Vocab.build([s for s, _ in train])
    return encode_pairs(train, v, v), encode_pairs(val, v, v), v


def new_model(v, lr=0.01, **adam):
    m = Seq2Seq(len(v), len(v), embed_dim=6, hidden_dim=8, seed=0)
    return m, optim.Adam(m.params, m.grads, lr=lr, **adam)


KW = dict(batch_size=32, progress=False, log=None, seed=3)  # 3 steps per epoch


def params_of(m):
    return {k: backend.to_numpy(p).copy() for k, p in m.params.items()}


def test_rates_are_logged_per_step_and_per_epoch(data):
    tr, va, v = data
    m, o = new_model(v, lr=0.02)
    sched = optim.WarmupSchedule(o, "linear", warmup_steps=3, min_lr=0.002)
    res = fit(m, o, tr, va, epochs=3, schedule=sched, **KW)
    assert sched.total_steps == 9  # fit set T = epochs x batches
    want = [optim.schedule_rate(t, 0.02, "linear", 3, 9, 0.002) for t in range(1, 10)]
    assert res.history["step_lr"] == pytest.approx(want, rel=1e-15)
    assert res.history["step_lr"][:3] == pytest.approx([0.02 / 3, 0.04 / 3, 0.02])
    assert res.history["lr"] == [res.history["step_lr"][k] for k in (2, 5, 8)]
    plain = fit(*new_model(v), tr, epochs=1, **KW)  # no schedule: the constant rate is logged
    assert plain.history["step_lr"] == [0.01] * 3 and plain.history["lr"] == [0.01]


def test_plateau_reduces_on_validation_and_early_stopping_stops_keeping_best(data, tmp_path):
    """lr = 1e-20: float32 params do not move, so every validation ties with the first. The
    plateau halves the rate after each tie (patience 0), early stopping stops after
    patience + 1 ties, and best.ckpt keeps epoch 1 (a tie does not replace it)."""
    tr, va, v = data
    m, o = new_model(v, lr=1e-20)
    plateau = optim.ReduceLROnPlateau(o, "loss", factor=0.5, patience=0)
    es = optim.EarlyStopping(patience=2, metric="loss")
    res = fit(m, o, tr, va, epochs=10, schedule=plateau, early_stopping=es,
              out_dir=tmp_path, vocabs={"src": v, "tgt": v}, **KW)
    h = res.history
    assert res.stopped_early and len(h["val_loss"]) == 4 and es.stopped
    assert len(set(h["val_loss"])) == 1
    assert res.best_metric == "loss" and res.best_value == h["val_loss"][0]
    assert load_checkpoint(tmp_path / "best.ckpt").extra["epoch"] == 1
    assert load_checkpoint(tmp_path / "last.ckpt").extra["epoch"] == 4
    # each epoch's rate; a reduction after validation k is the rate of epoch k + 1
    assert plateau.n_reductions == 3 and h["lr"] == [1e-20, 1e-20, 5e-21, 2.5e-21]
    assert o.lr == 1.25e-21


def test_best_checkpoint_follows_the_chosen_metric(data, tmp_path):
    tr, va, v = data
    m, o = new_model(v, lr=0.03)
    res = fit(m, o, tr, va, epochs=4, best_metric="loss", out_dir=tmp_path, **KW)
    losses = res.history["val_loss"]
    best_epoch = 1 + int(np.argmin(losses))
    assert res.best_value == min(losses)
    assert load_checkpoint(tmp_path / "best.ckpt").extra["epoch"] == best_epoch
    assert "val_bleu" not in res.history  # computed only when asked for


def test_validation_loss_and_id_bleu(data):
    tr, va, v = data
    m, _ = new_model(v)
    from minis2s.data import pad_sequences

    whole = m.forward(pad_sequences([s for s, _ in va]), pad_sequences([t for _, t in va]))
    assert validation_loss(m, va, batch_size=5) == pytest.approx(whole, rel=1e-6)
    refs = [list(t[1:-1]) for _, t in va]
    assert id_bleu(refs, va) == pytest.approx(100.0)
    assert id_bleu([[r[0]] for r in refs], va) < 50


class Interrupt(Exception):
    pass


def interrupt_at(epoch):
    """A fit log that stops the run while it logs epoch ``epoch`` (before that epoch's
    checkpoints: last.ckpt then holds epoch ``epoch`` - 1), as a kill would."""
    def log(msg):
        if msg.startswith(f"epoch {epoch}/"):
            raise Interrupt
    return log


def run_interrupted_and_whole(data, tmp_path, make_tools, epochs=3, cut=2):
    tr, va, v = data
    kw = dict(KW, vocabs={"src": v, "tgt": v})
    m1, o1 = new_model(v, lr=0.02, weight_decay=0.1)
    s1, e1 = make_tools(o1)
    whole = fit(m1, o1, tr, va, epochs=epochs, schedule=s1, early_stopping=e1,
                out_dir=tmp_path / "whole", **kw)
    m2, o2 = new_model(v, lr=0.02, weight_decay=0.1)
    s2, e2 = make_tools(o2)
    with pytest.raises(Interrupt):
        fit(m2, o2, tr, va, epochs=epochs, schedule=s2, early_stopping=e2,
            out_dir=tmp_path / "cut", **dict(kw, log=interrupt_at(cut)))
    assert load_checkpoint(tmp_path / "cut" / "last.ckpt").extra["epoch"] == cut - 1
    m3, o3, res = resume(tmp_path / "cut" / "last.ckpt", tr, va, epochs=epochs,
                         out_dir=tmp_path / "cut", **{k: v for k, v in KW.items() if k != "seed"})
    return (m1, o1, whole), (m3, o3, res)


@pytest.mark.parametrize("tools", ["cosine", "plateau"])
def test_resume_with_schedules_is_exact(data, tmp_path, tools):
    def make_tools(o):
        if tools == "cosine":  # T from fit: 3 epochs x 3 batches
            return optim.WarmupSchedule(o, "cosine", warmup_steps=4, min_lr=1e-4), None
        return (optim.ReduceLROnPlateau(o, "exact", factor=0.5, patience=0),
                optim.EarlyStopping(patience=5, metric="token_acc"))

    (m1, o1, whole), (m3, o3, res) = run_interrupted_and_whole(data, tmp_path, make_tools)
    a, c = params_of(m1), params_of(m3)
    for k in a:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)
    for key in ("step_loss", "step_lr", "lr", "val_exact", "val_token_acc"):
        assert whole.history[key] == res.history[key], key
    assert o3.lr == o1.lr and o3.t == o1.t and o3.weight_decay == 0.1
    if tools == "cosine":
        assert len(set(whole.history["step_lr"])) > 5  # the rate moved
        assert res.history["step_lr"][-1] < 0.02 / 2
    else:  # the plateau reduced the rate after the resume
        assert whole.history["lr"] == [0.02, 0.02, 0.01]
    cut, full = (load_checkpoint(tmp_path / d / "last.ckpt").extra for d in ("cut", "whole"))
    assert cut["schedule"] == full["schedule"]
    assert cut.get("early_stopping") == full.get("early_stopping")


def test_a_resumed_run_with_more_epochs_replans_the_decay(data, tmp_path):
    tr, va, v = data
    m, o = new_model(v, lr=0.02)
    sched = optim.WarmupSchedule(o, "linear")
    fit(m, o, tr, va, epochs=1, schedule=sched, out_dir=tmp_path, vocabs={"src": v, "tgt": v},
        **KW)
    assert sched.total_steps == 3
    _, o2, res = resume(tmp_path / "last.ckpt", tr, va, epochs=3, batch_size=32, progress=False,
                        log=None)
    assert res.history["step_lr"][3:] == pytest.approx(
        [optim.schedule_rate(t, 0.02, "linear", 0, 9) for t in range(4, 10)])
    fixed = optim.WarmupSchedule(new_model(v)[1], "linear", total_steps=5)
    fit(*new_model(v)[:1], fixed.optimizer, tr, epochs=1, schedule=fixed, **KW)
    assert fixed.total_steps == 5  # a T given by the user is kept


def test_resume_after_early_stopping_does_not_train(data, tmp_path):
    tr, va, v = data
    m, o = new_model(v, lr=0.0)
    fit(m, o, tr, va, epochs=6, early_stopping=optim.EarlyStopping(0, "exact"), out_dir=tmp_path,
        vocabs={"src": v, "tgt": v}, **KW)
    logged = []
    m2, o2, res = resume(tmp_path / "last.ckpt", tr, va, epochs=6, progress=False,
                         log=logged.append)
    assert res.stopped_early and len(res.history["val_exact"]) == 2 and o2.t == 6
    assert "already stopped" in logged[0]


@pytest.mark.parametrize("kw, match", [
    (dict(early_stopping=optim.EarlyStopping(1)), "early_stopping needs val_pairs"),
    (dict(best_metric="f1"), "best_metric must be one of"),
    (dict(schedule="cosine"), "schedule must be a minis2s.optim schedule"),
    (dict(early_stopping=3), "early_stopping must be a minis2s.optim.EarlyStopping"),
])
def test_bad_fit_tool_arguments(data, kw, match):
    tr, _, v = data
    m, o = new_model(v)
    with pytest.raises((ValueError, TypeError), match=match):
        fit(m, o, tr, epochs=1, **kw, **KW)


def test_plateau_without_a_metric_or_validation_is_refused(data):
    tr, va, v = data
    m, o = new_model(v)
    with pytest.raises(ValueError, match="needs its metric"):
        fit(m, o, tr, va, schedule=optim.ReduceLROnPlateau(o, metric=None), **KW)
    with pytest.raises(ValueError, match="needs val_pairs"):
        fit(m, o, tr, schedule=optim.ReduceLROnPlateau(o), **KW)


def test_loss_curve_draws_the_rate_when_a_schedule_moved_it(data, tmp_path):
    import matplotlib.pyplot as plt

    from minis2s import plots

    tr, va, v = data
    m, o = new_model(v, lr=0.02)
    res = fit(m, o, tr, va, epochs=2, schedule=optim.WarmupSchedule(o, "cosine", 2), **KW)
    fig = plots.loss_curve(res.history, path=tmp_path / "loss.png")
    loss_ax, val_ax, rate_ax = fig.axes
    np.testing.assert_array_equal(rate_ax.lines[0].get_ydata(), res.history["step_lr"])
    assert rate_ax.get_ylabel() == "learning rate" and rate_ax.get_xlabel() == "training step"
    assert val_ax.get_xlabel() == "epoch" and (tmp_path / "loss.png").exists()
    plt.close(fig)
    constant = plots.loss_curve({"step_loss": [2.0, 1.0], "step_lr": [0.1, 0.1]})
    assert len(constant.axes) == 1  # a constant rate draws no panel
    plt.close(constant)
    alone = plots.loss_curve({"step_loss": [2.0, 1.0, 0.5], "step_lr": [1e-4, 1e-3, 1e-2]})
    assert len(alone.axes) == 2 and alone.axes[1].get_yscale() == "log"
    plt.close(alone)
