"""train's weight decay, learning-rate schedule and early stopping flags (tiny runs)."""

import json

import pytest

from minis2s import optim
from minis2s.checkpoint import load_checkpoint
from minis2s.cli import main

RUN = ["train", "--task", "reverse", "--model", "seq2seq", "--n-train", "96", "--n-val", "12",
       "--batch-size", "32", "--hidden-dim", "8", "--embed-dim", "6", "--no-progress"]


def test_plateau_and_early_stopping_show_in_metrics_json(tmp_path, capsys):
    """A tiny model's exact match stays at 0: each later epoch ties with the first, so the
    plateau halves the rate after epoch 2 and early stopping (patience 1) ends the run after
    epoch 3 of 6, with best.ckpt still epoch 1 (a tie does not replace it)."""
    out = tmp_path / "run"
    assert main(RUN + ["--epochs", "6", "--out", str(out), "--lr", "0.004",
                       "--lr-schedule", "plateau", "--plateau-patience", "0",
                       "--early-stopping-patience", "1", "--early-stopping-metric", "exact",
                       "--weight-decay", "0.01"]) == 0
    printed = capsys.readouterr().out
    assert "early stopping after epoch 3" in printed and "best.ckpt follows val exact" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_exact"] == [0.0, 0.0, 0.0]
    assert metrics["lr"] == [0.004, 0.004, 0.002]
    assert "step_lr" not in metrics  # per step: in the checkpoint's history
    assert load_checkpoint(out / "best.ckpt").extra["epoch"] == 1
    last = load_checkpoint(out / "last.ckpt")
    assert last.extra["schedule"]["class"] == "ReduceLROnPlateau"
    assert last.extra["early_stopping"]["stopped"]
    assert last.optimizer["hyper"]["weight_decay"] == 0.01


def test_warmup_cosine_rates_in_the_history(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(RUN + ["--epochs", "2", "--out", str(out), "--lr", "0.01", "--lr-schedule",
                       "cosine", "--warmup-steps", "2", "--min-lr", "0.001"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rates = load_checkpoint(out / "last.ckpt").extra["history"]["step_lr"]
    assert rates == pytest.approx([optim.schedule_rate(t, 0.01, "cosine", 2, 6, 0.001)
                                   for t in range(1, 7)])  # 2 epochs x 3 batches
    assert rates[:2] == [0.005, 0.01] and rates[-1] == 0.001
    assert metrics["lr"] == [rates[2], rates[5]]
    assert "Adam lr 0.01; schedule cosine after 2 warmup steps" in capsys.readouterr().out


@pytest.mark.parametrize("flags, match", [
    (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
    (["--decay-biases"], "--decay-biases needs --weight-decay > 0"),
    (["--warmup-steps", "-3"], "--warmup-steps must be >= 0"),
    (["--lr-schedule", "plateau", "--warmup-steps", "5"], "--warmup-steps is for"),
    (["--plateau-patience", "3"], "need --lr-schedule plateau"),
    (["--lr-schedule", "plateau", "--plateau-factor", "1.5"], r"--plateau-factor must be in"),
    (["--min-lr", "0.1"], "--min-lr needs --lr-schedule"),
    (["--lr-schedule", "linear", "--lr", "0.01", "--min-lr", "0.1"], "--min-lr must be <= --lr"),
    (["--early-stopping-patience", "-1"], "--early-stopping-patience must be >= 0"),
    (["--lr-schedule", "exponential"], "exponential"),
    (["--early-stopping-metric", "f1"], "f1"),
])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flags, match):
    assert main(RUN + ["--epochs", "1", "--out", str(tmp_path / "x")] + flags) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("minis2s: error:")
    import re

    assert re.search(match, err), err


def test_help_lists_the_flags(capsys):
    try:
        main(["train", "--help"])
    except SystemExit:  # argparse's exit after --help
        pass
    text = capsys.readouterr().out
    for flag in ("--weight-decay", "--decay-biases", "--decay-embeddings", "--lr-schedule",
                 "--warmup-steps", "--min-lr", "--plateau-patience", "--plateau-factor",
                 "--early-stopping-patience", "--early-stopping-metric"):
        assert flag in text, flag
