"""The CLI on real data: tasks on the shipped corpora, users' files in every format, the
recorded tokeniser reapplied by eval and generate, BLEU/chrF, --predictions, and one-line
errors that leave nothing half-written. Tiny models, one epoch: seconds each."""

import io
import json
import pathlib

import pytest

from minis2s.checkpoint import load_checkpoint, save_checkpoint
from minis2s.cli import main
from minis2s.data.tasks import TASKS

DATA = pathlib.Path(__file__).parent / "data"
TINY = ["--epochs", "1", "--batch-size", "32", "--embed-dim", "8", "--hidden-dim", "8",
        "--no-progress"]


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("minis2s: error:") and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def tatoeba_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tatoeba")
    code = main(["train", "--task", "tatoeba", "--model", "attention", "--n-train", "300",
                 "--n-val", "20", "--n-test", "30", "--out", str(out), *TINY])
    assert code == 0
    return out


def test_train_records_task_options_and_tokenisers(tatoeba_run):
    ck = load_checkpoint(tatoeba_run / "best.ckpt")
    data = ck.extra["data"]
    assert data["task"] == "tatoeba" and data["reverse"] is False
    assert (data["level"], data["lowercase"], data["nfc"], data["min_freq"]) == \
        ("word", True, True, 2)
    assert data["sizes"] == [300, 20, 30]
    toks = ck.extra["tokenizers"]
    assert toks["src"]["level"] == "word" and toks["src"]["lang"] == "fr"
    assert toks["tgt"]["lang"] == "en" and toks["tgt"]["lowercase"] is True
    assert ck.vocabs["src"].level == "word"


def test_eval_without_task_uses_the_recorded_test_split(tatoeba_run, capsys):
    assert main(["eval", "--json", "--checkpoint", str(tatoeba_run / "best.ckpt")]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert res["n"] == 30
    assert {"bleu", "chrf", "exact_match", "token_accuracy"} <= set(res)
    assert res["bleu_signature"].startswith("nrefs:1|case:lc|")  # the tokeniser lowercases
    assert "version:" in res["chrf_signature"]
    assert "test split of task tatoeba (fr -> en)" in captured.err and "BLEU" in captured.err


def test_generate_reapplies_the_recorded_normalisation(tatoeba_run, capsys):
    ckpt = str(tatoeba_run / "best.ckpt")
    assert main(["generate", "--checkpoint", ckpt, "--max-len", "6", "Je suis là.",
                 "JE  SUIS LA\u0300 .", ""]) == 0
    lines = capsys.readouterr().out.split("\n")
    # lowercased, NFC (a + combining grave = à), spaces made one: the same tokens, same output
    assert lines[0] == lines[1] and lines[2] == "" and len(lines) == 4


def test_generate_from_a_file_and_from_standard_input(tatoeba_run, tmp_path, capsys,
                                                      monkeypatch):
    ckpt = str(tatoeba_run / "best.ckpt")
    f = tmp_path / "in.txt"
    f.write_text("Je suis là.\n\nVa !\n")
    assert main(["generate", "--checkpoint", ckpt, "--max-len", "6", "--input", str(f)]) == 0
    from_file = capsys.readouterr().out.split("\n")
    assert len(from_file) == 4 and from_file[1] == "" and from_file[0] and from_file[2]
    monkeypatch.setattr("sys.stdin", io.StringIO("Je suis là.\n\nVa !\n"))
    assert main(["generate", "--checkpoint", ckpt, "--max-len", "6", "-"]) == 0
    assert capsys.readouterr().out.split("\n") == from_file
    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))
    assert main(["generate", "--checkpoint", ckpt, "--input", "-"]) == 2
    assert "input is empty" in _one_line_error(capsys)
    assert main(["generate", "--checkpoint", ckpt, "--input", str(f), "x"]) == 2
    assert "not both" in _one_line_error(capsys)


def test_generate_draws_attention_for_the_users_input(tatoeba_run, tmp_path, capsys):
    ckpt = str(tatoeba_run / "best.ckpt")
    png = tmp_path / "att.png"
    assert main(["generate", "--checkpoint", ckpt, "--max-len", "5", "--attention", str(png),
                 "Je suis là."]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["generate", "--checkpoint", ckpt, "--max-len", "5", "--attention", str(png),
                 "Va !", "", "Cours !"]) == 0
    assert (tmp_path / "att_1.png").exists() and (tmp_path / "att_3.png").exists()
    assert not (tmp_path / "att_2.png").exists()  # the empty line has no picture
    capsys.readouterr()


def _pairs_file(path, n, header=False):
    lines = ["source\ttarget"] if header else []
    lines += [f"Je vois {i} chats.\tI see {i} cats." for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_eval_data_scores_every_line_and_writes_predictions(tatoeba_run, tmp_path, capsys,
                                                             caplog):
    ckpt = str(tatoeba_run / "best.ckpt")
    f = _pairs_file(tmp_path / "test.tsv", 200, header=True)
    preds = tmp_path / "out" / "preds.tsv"
    assert main(["eval", "--json", "--checkpoint", ckpt, "--data", str(f), "--predictions",
                 str(preds)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 200  # every line, the header not among them
    assert "looks like a header" in captured.err + caplog.text  # a warning of minis2s.data
    rows = preds.read_text().splitlines()
    assert rows[0] == "source\treference\tprediction\tchrf\texact" and len(rows) == 201
    src, ref, _hyp, chrf, exact = rows[1].split("\t")
    assert (src, ref) == ("Je vois 0 chats.", "I see 0 cats.")
    assert 0 <= float(chrf) <= 100 and exact in ("0", "1")
    assert main(["eval", "--json", "--checkpoint", ckpt, "--data", str(f), "--n-test", "200"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 200
    assert main(["eval", "--json", "--checkpoint", ckpt, "--data", str(f), "--n-test", "7"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 7


def test_bad_files_are_one_line_errors_and_leave_nothing(tatoeba_run, tmp_path, capsys):
    ckpt = str(tatoeba_run / "best.ckpt")
    bad = tmp_path / "bad.tsv"
    bad.write_text("Va !\tGo.\nno tab here\n")
    preds = tmp_path / "preds.tsv"
    assert main(["eval", "--checkpoint", ckpt, "--data", str(bad), "--predictions",
                 str(preds)]) == 2
    assert f"{bad}, line 2: no tab" in _one_line_error(capsys)
    assert not preds.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.tsv"]
    a, b = tmp_path / "a.fr", tmp_path / "a.en"
    a.write_text("un\ndeux\ntrois\n")
    b.write_text("one\ntwo\n")
    out = tmp_path / "run"
    assert main(["train", "--src-file", str(a), "--tgt-file", str(b), "--out", str(out),
                 *TINY]) == 2
    err = _one_line_error(capsys)
    assert str(a) in err and str(b) in err and "3 lines" in err and "has 2" in err
    assert not out.exists() or not any(out.iterdir())  # no checkpoint, nothing half-written
    assert main(["train", "--src-file", str(a), "--out", str(out), *TINY]) == 2
    assert "--src-file needs --tgt-file" in _one_line_error(capsys)
    assert main(["train", "--task", "tatoeba", "--format", "dlfs2", "--out", str(out),
                 *TINY]) == 2
    assert "--format dlfs2 is for a --data file" in _one_line_error(capsys)


def test_eval_of_a_checkpoint_that_records_no_data_refuses_to_guess(tatoeba_run, tmp_path,
                                                                    capsys):
    ck = load_checkpoint(tatoeba_run / "best.ckpt")
    old = tmp_path / "old.ckpt"  # as minis2s wrote them before: vocabularies, no data record
    save_checkpoint(old, ck.model, vocabs=ck.vocabs, extra={"epoch": 1})
    assert main(["eval", "--checkpoint", str(old)]) == 2
    err = _one_line_error(capsys)
    assert "does not record the data it was trained on" in err and "--task" in err
    # with a task it runs, saying how it reads the text
    assert main(["eval", "--json", "--checkpoint", str(old), "--task", "tatoeba", "--n-test",
                 "5"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 5 and "does not record its tokeniser" in captured.err


def test_eval_on_another_task_says_so(tatoeba_run, capsys):
    assert main(["eval", "--json", "--checkpoint", str(tatoeba_run / "best.ckpt"), "--task",
                 "dlfs2-date", "--n-test", "3"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 3
    assert "was trained on task tatoeba" in captured.err


def test_a_tsv_of_dates_is_char_level_unless_told(tmp_path, capsys):
    from minis2s.data import make_pairs, save_tsv

    f = tmp_path / "dates.tsv"
    save_tsv(make_pairs("dates", 60, seed=0), f)
    out = tmp_path / "run"
    assert main(["train", "--data", str(f), "--model", "seq2seq", "--out", str(out),
                 *TINY]) == 0
    assert "char level (the default for a file)" in capsys.readouterr().out
    ck = load_checkpoint(out / "best.ckpt")
    assert ck.vocabs["src"].level == "char" and ck.extra["tokenizers"]["src"]["level"] == "char"
    assert ck.extra["data"]["data"] == str(f)
    # eval without --data: the run's own held-out part of the file (grouped by source)
    assert main(["eval", "--json", "--checkpoint", str(out / "best.ckpt")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 6 and f"test part of {f}" in captured.err


def test_dlfs2_file_format_and_task(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(DATA / "dates-dlfs2.txt"), "--format", "dlfs2",
                 "--model", "seq2seq", "--out", str(out), *TINY]) == 0
    assert load_checkpoint(out / "best.ckpt").extra["data"]["format"] == "dlfs2"
    out2 = tmp_path / "run2"
    assert main(["train", "--task", "dlfs2-addition", "--model", "seq2seq", "--n-train", "200",
                 "--n-val", "10", "--n-test", "10", "--out", str(out2), *TINY]) == 0
    capsys.readouterr()
    assert main(["eval", "--json", "--checkpoint", str(out2 / "best.ckpt")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 10 and 0 <= res["exact_match"] <= 1


def test_word_level_reverse_and_resume_keep_the_records(tmp_path, capsys):
    f = tmp_path / "pairs.tsv"
    _pairs_file(f, 40)
    out = tmp_path / "run"
    args = ["train", "--data", str(f), "--level", "word", "--reverse", "--model", "seq2seq",
            "--out", str(out), *TINY]
    assert main(args) == 0
    ck = load_checkpoint(out / "last.ckpt")
    assert ck.extra["data"]["reverse"] is True and ck.extra["data"]["nfc"] is True
    assert "see" in ck.vocabs["src"].stoi and "chats" in ck.vocabs["tgt"].stoi  # en -> fr
    args[args.index("--epochs") + 1] = "2"
    assert main(args + ["--resume"]) == 0
    again = load_checkpoint(out / "last.ckpt")
    assert again.extra["epoch"] == 2
    assert again.extra["data"] == ck.extra["data"]
    assert again.extra["tokenizers"] == ck.extra["tokenizers"]
    capsys.readouterr()


def test_subword_level_records_its_bpe_model_and_reapplies_it(tmp_path, capsys):
    pytest.importorskip("sentencepiece")
    out = tmp_path / "run"
    assert main(["train", "--task", "tatoeba", "--level", "subword", "--bpe-vocab-size", "300",
                 "--model", "seq2seq", "--n-train", "300", "--n-val", "10", "--n-test", "10",
                 "--out", str(out), *TINY]) == 0
    ck = load_checkpoint(out / "best.ckpt")
    toks = ck.extra["tokenizers"]
    assert toks["src"]["level"] == "subword" and toks["src"]["model"] and toks["tgt"]["model"]
    assert toks["src"]["model"] != toks["tgt"]["model"]  # one BPE model per language
    assert any(t.startswith("\u2581") for t in ck.vocabs["src"].itos)
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(out / "best.ckpt"), "--max-len", "5",
                 "Je suis là.", "JE SUIS LÀ."]) == 0
    a, b, _ = capsys.readouterr().out.split("\n")
    assert a == b


def test_subword_without_sentencepiece_is_one_line(tmp_path, capsys, no_sentencepiece):
    assert main(["train", "--task", "tatoeba", "--level", "subword", "--n-train", "50",
                 "--n-val", "5", "--out", str(tmp_path / "r"), *TINY]) == 2
    assert "pip install 'minis2s[subword]'" in _one_line_error(capsys)
    out = tmp_path / "r"
    assert not out.exists() or not any(out.iterdir())


def test_bpe_vocab_size_needs_subword(tmp_path, capsys):
    assert main(["train", "--task", "tatoeba", "--bpe-vocab-size", "100", "--out",
                 str(tmp_path / "r"), *TINY]) == 2
    assert "applies to level 'subword'" in _one_line_error(capsys)


def test_the_tatoeba_recipe_is_the_default_and_recorded(tatoeba_run):
    """train --task tatoeba takes the task's recipe (minis2s.cli.RECIPES) for the flags not
    given, and records its decoding for eval, generate and the test score."""
    from minis2s.cli import RECIPES

    recipe = RECIPES["tatoeba"]
    ck = load_checkpoint(tatoeba_run / "best.ckpt")
    cfg = ck.model.config
    assert cfg["dropout_embed"] == recipe.get("dropout", 0.0)
    assert cfg["label_smoothing"] == recipe.get("label_smoothing", 0.0)
    assert ck.extra["decoding"] == recipe["decoding"]
    assert ck.optimizer["hyper"]["lr"] < recipe["lr"]  # the linear decay has lowered it
    metrics = json.loads((tatoeba_run / "metrics.json").read_text())
    assert metrics["test_decoding"].startswith(f"beam search of {recipe['decoding']['beam_size']}")
    assert metrics["lr"][-1] < recipe["lr"]


def test_no_recipe_is_the_plain_setting_and_given_flags_win(tmp_path, capsys):
    out = tmp_path / "plain"
    assert main(["train", "--task", "tatoeba", "--model", "attention", "--n-train", "100",
                 "--n-val", "10", "--n-test", "10", "--out", str(out), "--no-recipe",
                 "--label-smoothing", "0.05", *TINY]) == 0
    assert "recipe of tatoeba" not in capsys.readouterr().out
    ck = load_checkpoint(out / "best.ckpt")
    assert ck.model.config["dropout_embed"] == 0 and ck.model.config["label_smoothing"] == 0.05
    assert ck.extra["decoding"] is None
    assert ck.extra.get("schedule") is None and ck.optimizer["hyper"]["lr"] == 1e-3
    assert json.loads((out / "metrics.json").read_text())["test_decoding"] == "greedy"


def test_eval_and_generate_decode_as_the_checkpoint_records():
    """The recorded decoding fills the decoding flags that were not given."""
    import argparse

    from minis2s import AttentionSeq2Seq
    from minis2s.cli import _decoding_options

    model = AttentionSeq2Seq(10, 10, 4, 4)
    recorded = {"beam_size": 5, "length_penalty": 1.0}

    def flags(**kw):
        base = dict(beam_size=None, length_penalty=None, coverage_penalty=0.0, min_len=0,
                    no_repeat_ngram=0, n_best=1)
        return argparse.Namespace(**{**base, **kw})

    assert _decoding_options(flags(), model, recorded)["beam_size"] == 5
    assert _decoding_options(flags(), model, recorded)["length_penalty"] == 1.0
    greedy = _decoding_options(flags(beam_size=1), model, recorded)
    assert greedy["beam_size"] == 1 and greedy["length_penalty"] is None
    assert _decoding_options(flags(length_penalty=0.0), model, recorded)["length_penalty"] == 0
    assert _decoding_options(flags(), model, None)["beam_size"] is None


def test_a_resumed_recipe_run_scores_the_test_as_the_recipe_says(tmp_path):
    """train --resume goes on with what the checkpoint records, the recipe's decoding too: the
    test of the resumed run is scored by beam search, as the first part's was."""
    out = tmp_path / "run"
    args = ["train", "--task", "tatoeba", "--model", "attention", "--n-train", "100",
            "--n-val", "10", "--n-test", "10", "--out", str(out), *TINY]
    assert main(args) == 0
    first = json.loads((out / "metrics.json").read_text())["test_decoding"]
    assert first.startswith("beam search of 5")
    assert main(args + ["--epochs", "2", "--resume"]) == 0  # the last --epochs counts
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["test_decoding"] == first
    assert len(resumed["epoch_end_step"]) == 2


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_generated_tasks_default_sizes_can_be_generated(task):
    """`minis2s train --task T` with no sizes given must find enough distinct sources for its
    default (n_train, n_val, n_test). `addition` could not until its default max_digits became
    3 (2 digits allow only 10,000 distinct sums, its defaults need 23,000)."""
    from minis2s.cli import TASK_DEFAULTS
    from minis2s.data.pipeline import DataConfig, load_splits

    sizes = TASK_DEFAULTS[task]["sizes"]
    parts = load_splits(DataConfig(task=task, sizes=sizes).resolve())
    assert tuple(map(len, parts)) == sizes
    sources = [{s for s, _ in part} for part in parts]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
