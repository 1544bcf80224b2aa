"""The command line: a tiny end-to-end run, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from minis2s.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "minis2s", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "--task", "reverse", "--model", "seq2seq", "--n-train", "300",
                 "--n-val", "20", "--n-test", "20", "--epochs", "1", "--batch-size", "32",
                 "--hidden-dim", "16",
                 "--embed-dim", "8", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_train_writes_checkpoints_plot_and_metrics(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"best.ckpt", "last.ckpt", "loss_curve.png", "metrics.json"} <= names
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert len(metrics["val_exact"]) == 1 and 0 <= metrics["val_exact"][0] <= 1
    assert (trained_run / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_generate_and_eval(trained_run, capsys):
    assert main(["generate", "--checkpoint", str(trained_run / "best.ckpt"), "12345",
                 "987"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(set(line) <= set("0123456789") for line in lines)
    assert main(["eval", "--json", "--checkpoint", str(trained_run / "best.ckpt"), "--task",
                 "reverse",
                 "--n-test", "30", "--n-train", "300", "--n-val", "20"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 30 and 0 <= res["exact_match"] <= 1


def test_gradcheck_command_passes(capsys):
    assert main(["gradcheck", "--model", "seq2seq", "--layers", "1"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "decoder.weight_hh_l0" in out


@pytest.mark.parametrize("args, match", [
    (["train", "--model", "transformer"], "--model: unknown choice 'transformer'; choose one of:"),
    (["train", "--task", "poetry", "--model", "seq2seq"], "poetry"),
    (["train", "--model", "seq2seq", "--epochs", "0"], "--epochs must be > 0"),
    (["train", "--model", "seq2seq", "--batch-size", "-4"], "--batch-size must be > 0"),
    (["train", "--model", "seq2seq", "--min-freq", "0"], "--min-freq must be > 0"),
    (["train", "--model", "seq2seq", "--data", "/no/such/file.tsv"], "/no/such/file.tsv"),
    (["generate", "--checkpoint", "/no/such.ckpt", "x"], "/no/such.ckpt"),
    (["--backend", "tpu", "gradcheck"], "--backend: unknown choice 'tpu'; choose one of: numpy"),
    (["frobnicate"], "unknown command 'frobnicate'; choose one of: train, eval"),
    ([], "give a command"),
])
def test_user_errors_are_one_line_with_status_2(args, match, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("minis2s: error:")
    assert match in err


def test_empty_generate_input(trained_run, capsys):
    assert main(["generate", "--checkpoint", str(trained_run / "best.ckpt"), "  "]) == 2
    assert "input is empty" in capsys.readouterr().err


def test_malformed_tsv_reports_the_line(tmp_path, capsys):
    f = tmp_path / "bad.tsv"
    f.write_text("a\tb\nc d\ne\tf\n")
    assert main(["train", "--data", str(f), "--model", "seq2seq"]) == 2
    err = capsys.readouterr().err
    assert ":2" in err or "line 2" in err


def test_python_dash_m_matches_the_console_script_and_hides_tracebacks():
    r = run_cli("train", "--model", "nope")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("--help")
    assert r.returncode == 0 and "train" in r.stdout


RUN = ["train", "--task", "reverse", "--model", "attention", "--n-train", "200", "--n-val", "16",
       "--batch-size", "32", "--hidden-dim", "12", "--embed-dim", "6", "--no-progress"]


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, capsys):
    assert main(RUN + ["--epochs", "3", "--out", str(tmp_path / "whole")]) == 0
    assert main(RUN + ["--epochs", "1", "--out", str(tmp_path / "cut")]) == 0
    assert main(RUN + ["--epochs", "3", "--out", str(tmp_path / "cut"), "--resume"]) == 0
    assert "resuming AttentionSeq2Seq" in capsys.readouterr().out
    whole, cut = (json.loads((tmp_path / d / "metrics.json").read_text())
                  for d in ("whole", "cut"))
    for key in ("val_exact", "val_token_acc", "epoch_end_step"):
        assert cut[key] == whole[key], key
    assert len(cut["val_exact"]) == 3
    import numpy as np

    from minis2s.checkpoint import load_checkpoint

    a, b = (load_checkpoint(tmp_path / d / "last.ckpt") for d in ("whole", "cut"))
    assert a.extra["history"]["step_loss"] == b.extra["history"]["step_loss"]
    for k, v in a.model.state_dict().items():
        np.testing.assert_array_equal(b.model.state_dict()[k], v, err_msg=k)


def test_resume_errors_are_one_line(tmp_path, capsys):
    assert main(RUN + ["--epochs", "2", "--out", str(tmp_path / "none"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume: there is no" in err and "last.ckpt" in err
    assert main(RUN + ["--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(RUN + ["--epochs", "1", "--out", str(tmp_path / "run"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already trained 1 epochs" in err
