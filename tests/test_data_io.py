import pytest

from minis2s.data import DataError, load_tsv, save_tsv


def write(tmp_path, data, name="pairs.tsv"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_load_basic_with_trailing_newline_crlf_and_bom(tmp_path):
    path = write(tmp_path, "\ufeffhello\tbonjour\r\n2/10/93\t1993-02-10\r\n é x \t y \n\n")
    assert load_tsv(path) == [("hello", "bonjour"), ("2/10/93", "1993-02-10"), ("é x", "y")]
    path = write(tmp_path, "a\tb")  # no trailing newline
    assert load_tsv(path) == [("a", "b")]


def test_save_load_round_trip(tmp_path):
    pairs = [("25 septembre 1984", "1984-09-25"), ("16+75", "91"), ("a b", "c")]
    path = tmp_path / "out.tsv"
    save_tsv(pairs, path)
    assert load_tsv(path) == pairs
    save_tsv(pairs[:1], path)  # overwrite atomically
    assert load_tsv(path) == pairs[:1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


def test_save_rejects_unwritable_pairs(tmp_path):
    with pytest.raises(ValueError, match=r"pairs\[1\] source holds a tab"):
        save_tsv([("a", "b"), ("x\ty", "z")], tmp_path / "x.tsv")
    with pytest.raises(ValueError, match=r"pairs\[0\] has an empty target"):
        save_tsv([("a", " ")], tmp_path / "x.tsv")
    assert not (tmp_path / "x.tsv").exists()


@pytest.mark.parametrize("content, line, match", [
    ("a\tb\nno tab here\nc\td\n", 2, "no tab"),
    ("a\tb\nc\td\ne\tf\tg\n", 3, "2 tabs"),
    ("a\tb\n\tx\n", 2, "empty source"),
    ("a\tb\nc\td\ny\t   \n", 3, "empty target"),
    ("a\tb\n\nc\td\n", 2, "blank line"),
    ("a\tb\n   \nc\td\n", 2, "blank line"),
    ("\na\tb\n", 1, "blank line"),
])
def test_errors_name_the_line(tmp_path, content, line, match):
    path = write(tmp_path, content)
    with pytest.raises(DataError, match=match) as info:
        load_tsv(path)
    assert info.value.line == line
    assert f"{path}, line {line}:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_undecodable_bytes_give_their_line(tmp_path):
    path = write(tmp_path, b"a\tb\nc\td\ncaf\xe9\tcoffee\ne\tf\n")
    with pytest.raises(DataError, match="cannot be decoded as utf-8") as info:
        load_tsv(path)
    assert info.value.line == 3
    assert load_tsv(path, encoding="latin-1")[2] == ("café", "coffee")


@pytest.mark.parametrize("content", ["", "\n", "\n\n  \n"])
def test_no_examples(tmp_path, content):
    path = write(tmp_path, content)
    with pytest.raises(DataError, match="no examples") as info:
        load_tsv(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.tsv"
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        load_tsv(path)
