"""Learning-rate schedules, reduce-on-plateau and early stopping (minis2s.optim)."""

import json
import math

import numpy as np
import pytest

from minis2s import backend, optim


def make_opt(lr=0.1):
    p = {"w": backend.asarray(np.zeros(3))}
    return optim.Adam(p, {"w": backend.xp.zeros_like(p["w"])}, lr=lr)


def rates(sched, n):
    """The rates of optimizer steps 1..n, as a training loop sees them."""
    out = []
    for _ in range(n):
        out.append(sched.optimizer.lr)
        sched.step()
    return out


# --- warmup and decay: values against the closed forms -----------------------------------------
def test_warmup_then_constant():
    s = optim.WarmupSchedule(make_opt(0.1), "constant", warmup_steps=4)
    assert rates(s, 7) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1], rel=1e-15)


def test_linear_decay_values():
    eta0, eta_min, W, T = 0.1, 0.01, 2, 12
    r = rates(optim.WarmupSchedule(make_opt(eta0), "linear", W, T, eta_min), 15)
    assert r[0] == pytest.approx(0.05) and r[1] == pytest.approx(0.1)
    for t in (3, 5, 7, 11):  # η_min + (η0 − η_min)(T − t)/(T − W)
        assert r[t - 1] == pytest.approx(eta_min + (eta0 - eta_min) * (T - t) / (T - W))
    assert r[6] == pytest.approx(0.01 + 0.09 * 0.5)  # half-way, t = 7
    assert r[11:] == [eta_min] * 4  # t >= T stays at η_min


def test_cosine_decay_values():
    eta0, eta_min, W, T = 1e-3, 1e-5, 10, 110
    s = optim.WarmupSchedule(make_opt(eta0), "cosine", W, T, eta_min)
    r = rates(s, 120)
    assert r[4] == pytest.approx(eta0 * 5 / 10)
    assert r[9] == pytest.approx(eta0)
    assert r[59] == pytest.approx((eta0 + eta_min) / 2)  # t = 60: the middle of the decay
    for t in (11, 35, 90, 109):
        want = eta_min + 0.5 * (eta0 - eta_min) * (1 + math.cos(math.pi * (t - W) / (T - W)))
        assert r[t - 1] == pytest.approx(want, rel=1e-12)
    assert r[109] == eta_min and r[119] == eta_min
    assert all(a >= b for a, b in zip(r[9:], r[10:]))  # monotone after warmup


def test_inverse_sqrt_values():
    r = rates(optim.WarmupSchedule(make_opt(0.5), "inverse-sqrt", warmup_steps=4), 16)
    assert r[:4] == pytest.approx([0.125, 0.25, 0.375, 0.5])
    assert r[8] == pytest.approx(0.5 * math.sqrt(4 / 9))  # t = 9
    assert r[15] == pytest.approx(0.25)  # t = 16: η0 √(4/16)
    no_warmup = rates(optim.WarmupSchedule(make_opt(0.5), "inverse-sqrt", min_lr=0.2), 9)
    assert no_warmup[0] == 0.5 and no_warmup[3] == pytest.approx(0.25)
    assert no_warmup[8] == 0.2  # 0.5/3 < min_lr


def test_schedule_sets_the_rate_the_optimizer_uses():
    """With warmup the first Adam step moves by about η(1), not by the base rate."""
    opt = make_opt(0.1)
    optim.WarmupSchedule(opt, "linear", warmup_steps=10, total_steps=20)
    opt.grads["w"][...] = 1.0
    opt.step()  # Adam's first step is ≈ η · sign(g)
    np.testing.assert_allclose(backend.to_numpy(opt.params["w"]), -0.01, rtol=1e-6)


def test_fit_style_total_steps_may_come_later():
    s = optim.WarmupSchedule(make_opt(0.1), "cosine", warmup_steps=2)
    rates(s, 1)  # warmup needs no T
    with pytest.raises(ValueError, match="total_steps"):
        s.step()  # the rate of step 3 needs T
    assert s.t == 1
    s.set_total_steps(10)
    assert s.rate(6) == pytest.approx(0.05)


def test_schedule_state_round_trip_gives_identical_future_rates():
    for make in (lambda o: optim.WarmupSchedule(o, "cosine", 5, 40, 1e-4),
                 lambda o: optim.WarmupSchedule(o, "inverse-sqrt", 3)):
        a = make(make_opt(0.02))
        rates(a, 17)
        state = json.loads(json.dumps(a.state_dict()))  # JSON-safe, as in a checkpoint
        b = optim.load_schedule(make_opt(123.0), state)  # another optimizer, another rate
        assert b.optimizer.lr == a.optimizer.lr
        assert rates(b, 30) == rates(a, 30)


# --- reduce on plateau ---------------------------------------------------------------------------
def test_plateau_on_a_scripted_sequence():
    opt = make_opt(1.0)
    p = optim.ReduceLROnPlateau(opt, "loss", factor=0.5, patience=1, threshold=0.01,
                                min_lr=0.2)
    metrics = [10, 9, 8.95, 8.95, 7, 7, 7, 7, 7, 7, 7]
    got = [p.step(m) for m in metrics]
    # 9 → 8.95 is < 1% better: bad 1; 8.95 again: bad 2 > patience → 0.5; 7 improves;
    # then bad 1, bad 2 → 0.25, bad 1, bad 2 → 0.2 (min_lr), ... stays at min_lr
    assert got == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]
    assert p.best == 7 and p.n_reductions == 3


def test_plateau_max_mode_abs_threshold_and_cooldown():
    opt = make_opt(1.0)
    p = optim.ReduceLROnPlateau(opt, "bleu", factor=0.1, patience=0, threshold=0.5,
                                threshold_mode="abs", cooldown=2)
    assert p.mode == "max"
    got = [p.step(m) for m in [10.0, 10.4, 10.4, 10.4, 10.4, 11.0, 11.2, 11.2]]
    # 10.4 is not > 10 + 0.5: reduce at once (patience 0); the next two validations are the
    # cooldown, not counted; the fourth 10.4 reduces again; 11.0 improves (in the cooldown);
    # the first 11.2 (not > 11 + 0.5) still falls in the cooldown, the second reduces
    assert got == pytest.approx([1.0, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001])
    assert p.best == 11.0


def test_plateau_state_round_trip():
    opt = make_opt(0.3)
    a = optim.ReduceLROnPlateau(opt, "exact", factor=0.5, patience=2, cooldown=1)
    seq = [0.1, 0.2, 0.2, 0.2, 0.2, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.3, 0.3, 0.3]
    for m in seq[:5]:
        a.step(m)
    state = json.loads(json.dumps(a.state_dict()))
    b = optim.load_schedule(make_opt(9.0), state)
    assert b.optimizer.lr == a.optimizer.lr == 0.15
    assert [b.step(m) for m in seq[5:]] == [a.step(m) for m in seq[5:]]


# --- early stopping ------------------------------------------------------------------------------
def test_early_stopping_min_and_ties():
    es = optim.EarlyStopping(patience=2, metric="loss")
    out = [es.step(v) for v in [3.0, 2.0, 2.0, 2.5, 1.9, 1.9, 1.9, 1.9]]
    assert out == [False, False, False, False, False, False, False, True]
    assert es.best == 1.9 and es.best_epoch == 5 and es.stopped


def test_early_stopping_max_with_min_delta():
    es = optim.EarlyStopping(patience=1, metric="bleu", min_delta=0.5)
    assert es.mode == "max"
    assert [es.step(v) for v in [10, 10.4, 11, 11.3, 11.2]] == [False, False, False, False,
                                                                True]
    assert es.best == 11 and es.best_epoch == 3
    es2 = optim.EarlyStopping.from_state_dict(json.loads(json.dumps(es.state_dict())))
    assert es2.state_dict() == es.state_dict()


def test_nan_never_improves():
    es = optim.EarlyStopping(patience=0, metric="exact")
    es.step(0.5)
    assert es.step(float("nan"))


# --- argument errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    (lambda o: optim.WarmupSchedule(o, "exponential"), "decay must be one of"),
    (lambda o: optim.WarmupSchedule(o, "linear", warmup_steps=-1), "warmup_steps must be an int"),
    (lambda o: optim.WarmupSchedule(o, "linear", warmup_steps=1.5), "warmup_steps must be an int"),
    (lambda o: optim.WarmupSchedule(o, "cosine", 10, 10), "total_steps must be > warmup_steps"),
    (lambda o: optim.WarmupSchedule(o, "cosine", 0, 0), "total_steps must be a positive int"),
    (lambda o: optim.WarmupSchedule(o, min_lr=1.0), "min_lr must be <= the base rate"),
    (lambda o: optim.WarmupSchedule({"lr": 1}), "optimizer must be a minis2s.optim optimizer"),
    (lambda o: optim.ReduceLROnPlateau(o, factor=1.0), r"factor must be in \(0, 1\)"),
    (lambda o: optim.ReduceLROnPlateau(o, factor=0), r"factor must be in \(0, 1\)"),
    (lambda o: optim.ReduceLROnPlateau(o, patience=-2), "patience must be an int >= 0"),
    (lambda o: optim.ReduceLROnPlateau(o, metric="f1"), "metric must be one of"),
    (lambda o: optim.ReduceLROnPlateau(o, mode="up"), "mode must be one of"),
    (lambda o: optim.ReduceLROnPlateau(o, threshold_mode="pct"), "threshold_mode"),
    (lambda o: optim.ReduceLROnPlateau(o, min_lr=-1), "min_lr must be a finite number >= 0"),
    (lambda o: optim.ReduceLROnPlateau(o).step("low"), "metric must be a number"),
    (lambda o: optim.EarlyStopping(patience=None), "patience must be an int >= 0"),
    (lambda o: optim.EarlyStopping(3, metric="accuracy"), "metric must be one of"),
    (lambda o: optim.EarlyStopping(3, min_delta=-0.1), "min_delta"),
    (lambda o: optim.load_schedule(o, {"class": "StepLR"}), "state must be the state_dict"),
    (lambda o: optim.WarmupSchedule(o).load_state_dict(optim.ReduceLROnPlateau(o).state_dict()),
     "not a WarmupSchedule's state_dict"),
])
def test_invalid_schedule_arguments(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad(make_opt())
