"""What the command line says: one-line errors in its own words, options that do not apply,
checkpoint and data paths that are not what a flag expects, --version and the help."""

import re

import pytest

from minis2s.cli import _for_the_command_line, _output_warnings, build_parser, main


def error_of(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("minis2s: error: "), err
    assert "minis2s: error: minis2s" not in err  # no doubled prefix
    return err[len("minis2s: error: "):]


# --- misspellings and choices --------------------------------------------------------------------
def test_a_misspelled_flag_gets_did_you_mean(capsys):
    err = error_of(["train", "--modle", "pointer"], capsys)
    assert err == ("train: unrecognized arguments: --modle pointer (did you mean --model?) "
                   "(see minis2s train --help)")
    assert "did you mean --checkpoint?" in error_of(["eval", "--chekpoint", "x"], capsys)


def test_a_misspelled_command_or_choice_gets_did_you_mean(capsys):
    err = error_of(["trian"], capsys)
    assert err.startswith("unknown command 'trian'; choose one of: train, eval, generate")
    assert err.endswith("(did you mean train?)")
    assert error_of(["train", "--attention", "dott"], capsys) == (
        "train: --attention: unknown choice 'dott'; choose one of: dot, general, additive, "
        "cosine (did you mean dot?)")
    assert "unknown action 'mak'; choose one of: make, grade (did you mean make?)" in \
        error_of(["assignment", "mak", "x"], capsys)


@pytest.mark.parametrize("args", [
    ["train", "--model", "transformer"],
    ["--backend", "tpu", "gradcheck"],
    ["train", "--task", "poetry", "--model", "seq2seq"],
    ["train", "--impl", "slow"],
    ["frobnicate"],
])
def test_lists_of_choices_are_formatted_one_way(args, capsys):
    err = error_of(args, capsys)
    listed = re.search(r"choose one of: ([\w\-]+(?:, [\w\-]+)+)", err)
    assert listed, err
    assert "[" not in err and "(choose from" not in err and "'," not in err


def test_flag_names_replace_python_parameter_names():
    parser = build_parser()
    train = parser.children["train"]
    msg = _for_the_command_line(ValueError("max_len must be > 0; batch_size too; pass "
                                           "force=True; see /tmp/max_len/x"), train)
    assert msg == "--max-len must be > 0; --batch-size too; pass --force; see /tmp/max_len/x"
    generate = parser.children["generate"]
    assert _for_the_command_line(ValueError("beam_size must be a positive int"), generate) == \
        "--beam-size must be a positive int"


def test_no_message_names_a_python_parameter(tmp_path, capsys):
    err = error_of(["train", "--task", "reverse", "--model", "seq2seq", "--batch-size", "0"],
                   capsys)
    assert "--batch-size" in err and "batch_size" not in err


# --- options that do not apply -------------------------------------------------------------------
@pytest.mark.parametrize("command, model, option, says", [
    ("train", "seq2seq", ["--coverage"], "--coverage applies to --model pointer only"),
    ("train", "attention", ["--coverage"], "--coverage applies to --model pointer only"),
    ("train", "seq2seq", ["--attention", "dot"], "the plain seq2seq has no attention"),
    ("train", "pointer", ["--attention", "general"], "always uses additive attention"),
    ("gradcheck", "seq2seq", ["--coverage"], "--coverage applies to --model pointer only"),
    ("gradcheck", "pointer", ["--attention", "dot"], "always uses additive attention"),
])
def test_options_that_do_not_apply_are_refused(command, model, option, says, tmp_path, capsys):
    args = [command, "--model", model, *option]
    if command == "train":
        args += ["--out", str(tmp_path / "run")]
    assert says in error_of(args, capsys)
    assert not (tmp_path / "run").exists()


# --- paths that are not what a flag expects ------------------------------------------------------
def test_a_text_file_or_a_directory_as_checkpoint(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    err = error_of(["generate", "--checkpoint", str(notes), "x"], capsys)
    assert err.startswith(f"{notes}: not a minis2s checkpoint")
    assert "pickle" not in err and "allow_pickle" not in err
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.ckpt").write_bytes(b"PK\x03\x04")
    err = error_of(["eval", "--checkpoint", str(run)], capsys)
    assert f"{run} is a directory, not a checkpoint file; did you mean {run / 'best.ckpt'}?" \
        in err


@pytest.mark.parametrize("flag", ["--data", "--src-file"])
def test_a_directory_as_data_names_the_flag_and_what_it_expects(flag, tmp_path, capsys):
    extra = ["--tgt-file", str(tmp_path)] if flag == "--src-file" else []
    err = error_of(["train", "--model", "seq2seq", flag, str(tmp_path), *extra], capsys)
    assert err.startswith(f"{flag} {tmp_path} is a directory; {flag} expects ")
    assert "file" in err.split("expects", 1)[1]


# --- generate's warnings -------------------------------------------------------------------------
class _Ck:
    def __init__(self, task):
        self.extra = {"data": {"task": task}}


class _Codec:
    @staticmethod
    def target_length(text):
        return len(text)


@pytest.mark.parametrize("text, out, says", [
    ("Feb 29 2019", "2019-02-29", "is not a valid ISO date"),
    ("tomorrow", "204--04-09", "is not a valid ISO date"),
    ("3 May 1850", "1950-05-03", "has a year outside 1950-2049"),
    ("3 May 2150", "2050-05-03", "is not a valid ISO date"),
])
def test_generate_warns_when_a_dates_output_is_not_a_valid_date(text, out, says):
    warnings = list(_output_warnings(_Ck("dates"), _Codec(), [text], [out], max_len=100))
    assert any(says in w for w in warnings), warnings


def test_generate_says_nothing_about_a_good_date_or_another_task():
    assert list(_output_warnings(_Ck("dates"), _Codec(), ["25 Sep 1984"], ["1984-09-25"],
                                 max_len=100)) == []
    assert list(_output_warnings(_Ck("reverse"), _Codec(), ["123"], ["x-y"], max_len=100)) == []


def test_generate_flags_an_output_cut_at_max_len():
    (w,) = _output_warnings(_Ck("reverse"), _Codec(), ["12345"], ["543"], max_len=3)
    assert "reached --max-len 3" in w and "may be cut" in w


# --- --version and the help ----------------------------------------------------------------------
def test_version(capsys):
    import minis2s

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"minis2s {minis2s.__version__}"


def _parsers(parser):
    yield parser
    for child in parser.children.values():
        yield from _parsers(child)


def test_every_option_has_help_that_gives_its_default():
    for parser in _parsers(build_parser()):
        fmt = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            name = f"{parser.prog} {action.option_strings[0]}"
            assert action.help, f"{name} has no help"
            text = fmt._get_help_string(action)
            if action.default not in (None, False) and action.nargs != 0:
                assert "default" in text, f"{name}: the help does not give the default"


def test_the_help_shows_no_internal_names(capsys):
    for args in (["train", "--help"], ["eval", "--help"], ["gradcheck", "--help"], ["--help"]):
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "BACKEND_SUB" not in out and "IMPL_SUB" not in out and "_sub" not in out
    assert main(["gradcheck", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--layers LAYERS GRU layers of the encoder and the decoder (default: 2)" in out
    assert "--backend {numpy,cupy}" in out and "--impl {fast,reference}" in out
