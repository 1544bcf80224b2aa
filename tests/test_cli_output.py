"""What the command line prints: the epoch lines, the end of training (test score, every file
written), eval's table and --json, generate's warnings, and train --impl reference."""

import json
import re

import pytest

from minis2s import backend
from minis2s.cli import main


def tiny(out, *extra, task="reverse", model="attention", epochs="2"):
    return ["train", "--task", task, "--model", model, "--n-train", "96", "--n-val", "8",
            "--n-test", "12", "--epochs", epochs, "--batch-size", "32", "--hidden-dim", "8",
            "--embed-dim", "4", "--no-progress", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny attention run: (its directory, what it printed)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("cli_output") / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(tiny(out)) == 0
    return out, buf.getvalue()


def test_epoch_lines_label_the_loss_and_estimate_the_total_time(run):
    _, printed = run
    lines = [line for line in printed.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2
    assert re.match(r"epoch 1/2: loss \d+\.\d{4} \(mean of the last \d+ steps\), ", lines[0])
    assert re.search(r"; about [\d.]+ s left, [\d.]+ s for all 2 epochs$", lines[0]), lines[0]
    assert re.search(r"; [\d.]+ s in all$", lines[1]), lines[1]
    assert "val exact match" in lines[0]


def test_the_end_of_training_lists_every_file_written_and_the_test_score(run):
    out, printed = run
    (listing,) = [line for line in printed.splitlines() if line.startswith("wrote ")]
    m = re.match(r"wrote (\d+) files to (.*?)/: (.*)$", listing)
    assert m and m.group(2) == str(out)
    listed = m.group(3).split(", ")
    on_disk = sorted(p.name for p in out.iterdir())
    assert sorted(listed) == on_disk and int(m.group(1)) == len(on_disk)
    assert {"metrics.json", "loss_curve.png", "best.ckpt", "attention_0.png"} <= set(listed)
    assert re.search(r"test exact match \d\.\d{4}, token accuracy \d\.\d{4} \(12 test "
                     r"examples, best\.ckpt\)", printed)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 12 and 0 <= metrics["test_exact"] <= 1


def test_eval_prints_a_table_and_json_on_request(run, capsys):
    out, _ = run
    args = ["eval", "--checkpoint", str(out / "best.ckpt"), "--n-test", "12"]
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith(": 12 pairs")
    rows = {line.split("  ")[1].strip(): line for line in table[1:]}
    assert set(rows) >= {"exact match", "token accuracy", "BLEU", "chrF"}
    assert re.search(r"exact match\s+\d\.\d{4}\b", rows["exact match"])  # rounded
    assert main(args + ["--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 12 and isinstance(res["exact_match"], float)


def test_generate_warns_about_a_cut_output(run, capsys):
    out, _ = run
    assert main(["generate", "--checkpoint", str(out / "best.ckpt"), "--max-len", "1",
                 "12345"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert "reached --max-len 1 before the end token, so it may be cut" in captured.err


def test_generate_warns_when_the_dates_model_gives_no_valid_date(tmp_path, capsys):
    assert main(tiny(tmp_path / "dates", task="dates", epochs="1")) == 0
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(tmp_path / "dates" / "best.ckpt"),
                 "3 May 1850"]) == 0
    err = capsys.readouterr().err
    assert "has a year outside 1950-2049, the years the dates model learned" in err


def test_train_impl_reference_trains_on_the_textbook_tier(tmp_path, capsys, monkeypatch):
    import minis2s.functional.gru as F_gru

    calls = []
    real = F_gru.gru_forward

    def counted(*args, **kwargs):
        calls.append(backend.impl())
        return real(*args, **kwargs)

    monkeypatch.setattr(F_gru, "gru_forward", counted)
    before = backend.impl()  # "fast", or "reference" under MINIS2S_IMPL=reference
    assert main(tiny(tmp_path / "fast", "--impl", "fast", epochs="1")) == 0
    assert calls == []  # the fast tier does not run the textbook GRU
    assert main(tiny(tmp_path / "ref", "--impl", "reference", epochs="1")) == 0
    assert calls and set(calls) == {"reference"}
    assert backend.impl() == before  # --impl is for that one command
    assert (tmp_path / "ref" / "best.ckpt").exists()
    assert main(["--impl", "reference", *tiny(tmp_path / "ref2", epochs="1")]) == 0  # global
