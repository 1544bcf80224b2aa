"""The decoding flags of ``minis2s generate`` and ``minis2s eval``: beam search's
--length-penalty, --coverage-penalty, --min-len, --no-repeat-ngram and --n-best, and
generate's --sample with --temperature, --top-k, --top-p and --seed, on a tiny trained run."""

import json
import re

import pytest

from minis2s.cli import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("cli_decoding") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--task", "reverse", "--model", "attention", "--n-train", "96",
                     "--n-val", "8", "--n-test", "12", "--epochs", "1", "--batch-size", "32",
                     "--hidden-dim", "8", "--embed-dim", "4", "--no-progress",
                     "--out", str(out)]) == 0
    return str(out / "best.ckpt")


def generate(ckpt, capsys, *args, inputs=("12345",)):
    rc = main(["generate", "--checkpoint", ckpt, "--max-len", "8", *inputs, *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def library(ckpt, text, **options):
    """What the library gives for the same input and options (the reference)."""
    from minis2s.checkpoint import load_checkpoint
    from minis2s.data.pipeline import Codec

    ck = load_checkpoint(ckpt)
    return Codec.from_checkpoint(ck).translate(ck.model, [text], max_len=8, **options)[0]


def test_the_beam_flags_reach_the_library(ckpt, capsys):
    flags = ["--beam-size", "3", "--length-penalty", "0.7", "--coverage-penalty", "0.4",
             "--min-len", "6", "--no-repeat-ngram", "1"]
    rc, out, _ = generate(ckpt, capsys, *flags)
    assert rc == 0
    want = library(ckpt, "12345", beam_size=3, length_penalty=0.7, coverage_penalty=0.4,
                   min_len=6, no_repeat_ngram=1)
    assert out.splitlines() == [want]
    assert len(want) >= 6 and len(set(want)) == len(want)  # characters: min_len, no repeats


def test_n_best_prints_the_k_best_with_their_scores(ckpt, capsys):
    rc, out, _ = generate(ckpt, capsys, "--n-best", "3", "--length-penalty", "0.5",
                          inputs=("12345", "987"))
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "input 1: '12345'" and lines[4] == "input 2: '987'" and len(lines) == 8
    for block in (lines[1:4], lines[5:8]):
        rows = [re.fullmatch(r"  (\d)  (-?\d+\.\d{4})  (\S*)", line) for line in block]
        assert all(rows), block
        assert [int(m.group(1)) for m in rows] == [1, 2, 3]
        scores = [float(m.group(2)) for m in rows]
        assert scores == sorted(scores, reverse=True)
        assert len({m.group(3) for m in rows}) == 3
    best = [lines[1].split("  ", 3)[3], lines[5].split("  ", 3)[3]]  # (may be empty)
    for text, b in zip(("12345", "987"), best):  # --beam-size defaults to K (3)
        assert library(ckpt, text, beam_size=3, length_penalty=0.5) == b


def test_sampling_is_reproducible_with_a_seed_and_top_k_1_is_greedy(ckpt, capsys):
    flags = ["--sample", "--temperature", "1.5", "--top-p", "0.95", "--seed", "3"]
    first = generate(ckpt, capsys, *flags, inputs=("12345", "42"))
    assert first[0] == 0 and first == generate(ckpt, capsys, *flags, inputs=("12345", "42"))
    others = {generate(ckpt, capsys, "--sample", "--temperature", "3", "--seed", str(s))[1]
              for s in range(5)}
    assert len(others) > 1
    greedy = generate(ckpt, capsys)[1]
    assert generate(ckpt, capsys, "--sample", "--top-k", "1", "--seed", "0")[1] == greedy
    from minis2s.checkpoint import load_checkpoint
    from minis2s.data.pipeline import Codec

    ck = load_checkpoint(ckpt)  # the same inputs, batch and seed: the same draws
    assert Codec.from_checkpoint(ck).translate(ck.model, ["12345", "42"], max_len=8, sample=True,
                                               temperature=1.5, top_p=0.95, seed=3) == \
        first[1].splitlines()


@pytest.mark.parametrize("flags, message", [
    (["--length-penalty", "-1"], "--length-penalty must be a finite number >= 0; got -1.0"),
    (["--coverage-penalty", "nan"], "--coverage-penalty must be a finite number >= 0"),
    (["--min-len", "-1"], "--min-len must be an int >= 0; got -1"),
    (["--min-len", "8"], "--min-len must be less than --max-len"),
    (["--no-repeat-ngram", "-2"], "--no-repeat-ngram must be an int >= 0; got -2"),
    (["--n-best", "0"], "--n-best must be a positive int (> 0); got 0"),
    (["--n-best", "3", "--beam-size", "2"], "--n-best must be at most --beam-size (2)"),
    (["--temperature", "0.5"], "--temperature applies to --sample only"),
    (["--seed", "1"], "--seed applies to --sample only"),
    (["--sample", "--temperature", "0"], "--temperature must be > 0; got 0.0"),
    (["--sample", "--top-p", "1.5"], r"--top-p must be a number in (0, 1]"),
    (["--sample", "--top-k", "-1"], "--top-k must be an int >= 0; got -1"),
    (["--sample", "--beam-size", "3"], "--beam-size applies only to beam search, and --sample"),
    (["--sample", "--n-best", "2"], "--n-best applies only to beam search, and --sample"),
    (["--sample", "--attention", "a.png"], "--attention draws the attention of greedy"),
    (["--top-p", "x"], "generate: --top-p: invalid float value: 'x'"),
])
def test_a_bad_decoding_flag_is_one_line_naming_it(ckpt, capsys, flags, message):
    rc, out, err = generate(ckpt, capsys, *flags)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("minis2s: error: ")
    assert message in err, err


def test_eval_takes_the_beam_flags_and_reports_the_oracle_of_the_n_best(ckpt, capsys):
    base = ["eval", "--checkpoint", ckpt, "--n-test", "12"]
    assert main(base + ["--json", "--beam-size", "3", "--length-penalty", "0.6"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "oracle_exact_match" not in plain
    assert main(base + ["--json", "--n-best", "3", "--length-penalty", "0.6"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_best"] == 3 and res["exact_match"] == plain["exact_match"]
    assert res["token_accuracy"] == plain["token_accuracy"]  # the same best output (beam 3)
    assert res["exact_match"] <= res["oracle_exact_match"] <= 1
    assert main(base + ["--n-best", "3"]) == 0
    assert re.search(r"^  oracle exact@3\s+\d\.\d{4}  the reference among the 3 best",
                     capsys.readouterr().out, re.M)
    assert main(base + ["--min-len", "-3"]) == 2
    assert "--min-len must be an int >= 0" in capsys.readouterr().err
    assert main(base + ["--sample"]) == 2  # generate only


@pytest.mark.parametrize("command, flags", [
    ("generate", ["--length-penalty ALPHA", "--coverage-penalty BETA", "--min-len N",
                  "--no-repeat-ngram N", "--n-best K", "--sample", "--temperature",
                  "--top-k K", "--top-p P", "--seed SEED"]),
    ("eval", ["--length-penalty ALPHA", "--coverage-penalty BETA", "--min-len N",
              "--no-repeat-ngram N", "--n-best K"]),
])
def test_help_lists_the_flags_with_defaults(command, flags, capsys):
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in flags:
        assert flag in text, flag
    for default in ("ALPHA beam search ranks by log P / ((5 + length) / 6)^ALPHA",
                    "(default: 0.0)", "(default: 0)", "(default: 1)"):
        assert default in text, default
