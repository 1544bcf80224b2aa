"""A user's own data: TSV (with manythings.org's attribution column and header lines), DLFS2's
'_' format and two line-aligned files; bad files give one-line errors with file and line."""

import logging
import pathlib

import pytest

from minis2s.data.io import DataError, load_dlfs2, load_pairs, load_parallel, load_tsv, save_tsv

DATA = pathlib.Path(__file__).parent / "data"


def test_manythings_attribution_column_is_accepted_and_dropped():
    pairs = load_tsv(DATA / "eng-fra-attributed.tsv")
    assert len(pairs) == 7
    assert pairs[0] == ("Go.", "Va !")
    assert pairs[3] == ("I'm ruined.", "Je suis ruiné.")
    assert all("CC-BY" not in s and "CC-BY" not in t for s, t in pairs)


def test_the_shared_attributed_sample_loads_when_present():
    path = pathlib.Path("/work/shared/data/tatoeba/eng-fra-attributed-sample.tsv")
    if not path.exists():
        pytest.skip("the shared sample is not on this machine")
    pairs = load_tsv(path)
    assert len(pairs) == 5000 and all(len(p) == 2 for p in pairs)


def test_a_third_column_that_is_not_attribution_is_still_an_error(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("a\tb\tCC-BY 2.0\nc\td\te\n")
    with pytest.raises(DataError, match="2 tabs") as info:
        load_tsv(f)
    assert info.value.line == 2 and str(f) in str(info.value)


@pytest.mark.parametrize("first", ["source\ttarget", "SRC\tTGT", "en\tfr", "English\tFrench",
                                   "source\ttarget\tCC-BY attribution"])
def test_a_header_line_is_skipped_with_a_warning(tmp_path, caplog, first):
    f = tmp_path / "h.tsv"
    f.write_text(f"{first}\nGo.\tVa !\nHi.\tSalut !\n")
    with caplog.at_level(logging.WARNING, logger="minis2s.data"):
        pairs = load_tsv(f)
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert "looks like a header" in caplog.text and "line 1" in caplog.text
    assert load_tsv(f, header=False)[0][0] == first.split("\t")[0]


def test_header_options(tmp_path):
    f = tmp_path / "h.tsv"
    f.write_text("Go.\tVa !\nHi.\tSalut !\n")
    assert len(load_tsv(f)) == 2  # a real first line is kept
    assert load_tsv(f, header=True) == [("Hi.", "Salut !")]
    only = tmp_path / "only.tsv"
    only.write_text("source\ttarget\n")
    with pytest.raises(DataError, match="only a header"):
        load_tsv(only)
    with pytest.raises(ValueError, match="header must be"):
        load_tsv(f, header="yes")


def test_dlfs2_format():
    pairs = load_dlfs2(DATA / "dates-dlfs2.txt")
    assert pairs[0] == ("september 27, 1994", "1994-09-27")
    assert pairs[4] == ("TUESDAY, SEPTEMBER 25, 1984", "1984-09-25")
    assert load_pairs(DATA / "dates-dlfs2.txt", format="dlfs2") == pairs


@pytest.mark.parametrize("content, line, match", [
    ("1+1  _2  \nno underscore\n", 2, "no '_'"),
    ("1+1  _2  \n   _3\n", 2, "empty source"),
    ("1+1  _  \n", 1, "empty target"),
    ("1+1_2\n\n2+2_4\n", 2, "blank line"),
    ("a\tb\n", 1, "use format 'tsv'"),
])
def test_dlfs2_errors_name_the_line(tmp_path, content, line, match):
    f = tmp_path / "bad.txt"
    f.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        load_dlfs2(f)
    assert info.value.line == line
    assert str(info.value).startswith(f"{f}, line {line}: ") and "\n" not in str(info.value)


def test_tsv_hints_at_the_dlfs2_format(tmp_path):
    with pytest.raises(DataError, match="--format dlfs2") as info:
        load_tsv(DATA / "dates-dlfs2.txt")
    assert info.value.line == 1


def test_line_aligned_files(tmp_path):
    src, tgt = tmp_path / "train.fr", tmp_path / "train.en"
    src.write_text("Va !\nSalut.\r\nCours !\n")
    tgt.write_text("Go.\nHi.\nRun!\n\n")
    pairs = load_parallel(src, tgt)
    assert pairs == [("Va !", "Go."), ("Salut.", "Hi."), ("Cours !", "Run!")]
    assert load_pairs(src_path=src, tgt_path=tgt) == pairs


def test_line_aligned_files_of_different_lengths_name_both(tmp_path):
    src, tgt = tmp_path / "a.fr", tmp_path / "a.en"
    src.write_text("un\ndeux\ntrois\n")
    tgt.write_text("one\ntwo\n")
    with pytest.raises(DataError) as info:
        load_parallel(src, tgt)
    msg = str(info.value)
    assert str(src) in msg and str(tgt) in msg and "3 lines" in msg and "has 2" in msg
    assert "\n" not in msg


def test_line_aligned_empty_line_names_file_and_line(tmp_path):
    src, tgt = tmp_path / "a.fr", tmp_path / "a.en"
    src.write_text("un\ndeux\ntrois\n")
    tgt.write_text("one\n \nthree\n")
    with pytest.raises(DataError, match="empty line") as info:
        load_parallel(src, tgt)
    assert info.value.path == str(tgt) and info.value.line == 2


def test_undecodable_bytes_name_the_line_in_every_format(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("a_b\nc_d\ncaf\u00e9_x\n".encode("latin-1"))
    with pytest.raises(DataError, match="cannot be decoded") as info:
        load_dlfs2(f)
    assert info.value.line == 3
    g = tmp_path / "ok.txt"
    g.write_text("a\nb\nc\n")
    with pytest.raises(DataError, match="cannot be decoded") as info:
        load_parallel(g, f)
    assert info.value.path == str(f) and info.value.line == 3


def test_load_pairs_arguments(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        load_pairs(DATA / "dates-dlfs2.txt", format="csv")
    with pytest.raises(ValueError, match="both src_path and tgt_path"):
        load_pairs(src_path=DATA / "dates-dlfs2.txt")
    with pytest.raises(FileNotFoundError, match="nope.en"):
        load_pairs(src_path=tmp_path / "nope.en", tgt_path=DATA / "dates-dlfs2.txt")
    with pytest.raises(IsADirectoryError, match="Is a directory, not a TSV file"):
        load_tsv(tmp_path)


def test_save_tsv_is_atomic_on_error(tmp_path):
    f = tmp_path / "out.tsv"
    save_tsv([("a", "b")], f)
    with pytest.raises(ValueError, match="holds a tab"):
        save_tsv([("c", "d"), ("e\tx", "f")], f)
    assert f.read_text() == "a\tb\n"  # the old file is intact, nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]


def test_load_lines_keeps_blank_lines_and_names_bad_bytes(tmp_path):
    from minis2s.data.io import load_lines

    f = tmp_path / "in.txt"
    f.write_bytes(b"Va !\r\n\nCours !\n")
    assert load_lines(f) == ["Va !", "", "Cours !"]
    f.write_bytes(b"")
    assert load_lines(f) == []
    f.write_bytes("ok\nnon\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match="cannot be decoded") as info:
        load_lines(f)
    assert info.value.line == 2 and str(info.value).startswith(f"{f}, line 2: ")
