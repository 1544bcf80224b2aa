"""The real corpora shipped in the package: found by importlib.resources, intact, licensed, and
split as documented in docs/data.md."""

import gzip
import hashlib
from importlib import resources

import pytest

from minis2s.data import corpora


@pytest.mark.parametrize("name", sorted(corpora.CORPORA))
def test_shipped_corpus_is_package_data_with_its_licence(name):
    c = corpora.CORPORA[name]
    node = corpora.path(name)
    assert node.is_file() and c.resource.endswith(".gz")
    # found through importlib.resources (what a non-editable install offers), not a repo path
    direct = resources.files("minis2s.data.corpora").joinpath(*c.resource.split("/"))
    raw = gzip.decompress(direct.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == c.sha256
    text = corpora.read_text(name)
    assert len(text.splitlines()) == c.lines
    lic = corpora.licence(name)
    if name.startswith("tatoeba"):
        assert "CC BY 2.0 FR" in lic and "https://tatoeba.org" in lic
        assert "https://www.manythings.org/anki/" in lic
        assert "creativecommons.org/licenses/by/2.0/fr" in lic
    else:
        assert "MIT License" in lic and "Koki Saitoh" in lic


def test_pyproject_ships_the_corpora_as_package_data():
    import pathlib

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = pathlib.Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = cfg["tool"]["setuptools"]["package-data"]["minis2s.data.corpora"]
    base = root / "minis2s" / "data" / "corpora"
    shipped = {p.relative_to(base).as_posix() for pat in patterns for p in base.glob(pat)}
    for c in corpora.CORPORA.values():
        assert c.resource in shipped and c.licence in shipped
    assert "dlfs2/README.md" in shipped
    assert "sacrebleu" in " ".join(cfg["project"]["dependencies"])


def test_a_damaged_corpus_is_an_error(monkeypatch):
    c = corpora.CORPORA["dlfs2-addition"]
    monkeypatch.setitem(corpora.CORPORA, "dlfs2-addition", c._replace(sha256="0" * 64))
    monkeypatch.setattr(corpora, "_cache", {})
    with pytest.raises(corpora.CorpusError, match="damaged"):
        corpora.read_text("dlfs2-addition")
    with pytest.raises(ValueError, match="unknown corpus 'nope'"):
        corpora.read_text("nope")


# --- the tatoeba task's fixed split -----------------------------------------------------------
def test_tatoeba_split_sizes_and_direction():
    from minis2s.data.tasks import tatoeba

    train, val, test = tatoeba.splits()
    assert (len(train), len(val), len(test)) == (68408, 3789, 3840)
    assert ("Je suis parti.", "I left.") in test  # French -> English by default
    en_fr = tatoeba.splits("en-fr")
    assert en_fr[2] == [(e, f) for f, e in test]  # the same split, sides swapped
    with pytest.raises(ValueError, match="direction must be one of"):
        tatoeba.splits("de-en")


def test_tatoeba_test_sentences_never_occur_in_training_on_either_side():
    from minis2s.data.splits import source_key
    from minis2s.data.tasks import tatoeba

    train, val, test = tatoeba.splits()
    for held_out in (val, test):
        seen_fr = {source_key(f) for f, _ in train}
        seen_en = {source_key(e) for _, e in train}
        assert not any(source_key(f) in seen_fr for f, _ in held_out)
        assert not any(source_key(e) in seen_en for _, e in held_out)
    assert not {source_key(f) for f, _ in val} & {source_key(f) for f, _ in test}
    # every line is in exactly one part
    assert sorted(train + val + test) == sorted(tatoeba.pairs())


def test_tatoeba_split_buckets_follow_the_documented_hash():
    import hashlib

    from minis2s.data.splits import source_key
    from minis2s.data.tasks import tatoeba

    # 'Go.' has only French translations that no other English sentence shares
    key = source_key("Go.")
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 100
    part = next(name for name, r in tatoeba.SPLIT_BUCKETS.items() if bucket in r)
    train, val, test = tatoeba.splits()
    where = {"train": train, "val": val, "test": test}
    assert ("Va !", "Go.") in where[part]


# --- the DLFS2 tasks: the book's split --------------------------------------------------------
def test_dlfs2_book_split_is_the_books_shuffle():
    import numpy as np

    from minis2s.data.tasks import dlfs2

    # the book: numpy.random.seed(1984); numpy.random.shuffle(indices); last 10% test
    indices = np.arange(50000)
    state = np.random.get_state()  # noqa: NPY002 - the book's own calls, to compare against
    try:
        np.random.seed(1984)  # noqa: NPY002
        np.random.shuffle(indices)  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    assert (dlfs2.book_order(50000) == indices).all()
    assert indices[:3].tolist() == [21921, 48929, 19568]
    pairs = dlfs2.pairs("date")
    train, test = dlfs2.book_split("date")
    assert (len(train), len(test)) == (45000, 5000)
    assert train[0] == pairs[21921] and test[-1] == pairs[int(indices[-1])]
    tr, va, te = dlfs2.splits("date")
    assert (len(tr), len(va), len(te)) == (44000, 1000, 5000)
    assert tr + va == train and te == test
    assert dlfs2.splits("date", n_val=0)[0] == train


def test_dlfs2_measured_figures():
    from minis2s.data.tasks import dlfs2

    date = dlfs2.pairs("date")
    assert len(date) == 50000 and len(set(date)) == 41578
    assert len({s for s, _ in date}) == 41578  # one target per source
    assert dlfs2.overlap("date") == (1405, 5000)  # 28.1% of the test sources occur in training
    addition = dlfs2.pairs("addition")
    assert len({s for s, _ in addition}) == 50000 and dlfs2.overlap("addition") == (0, 5000)
    assert date[0] == ("september 27, 1994", "1994-09-27") and addition[0] == ("16+75", "91")


def test_corpus_tasks_are_registered_beside_the_generated_ones():
    from minis2s.data import make_pairs, make_splits, task_info
    from minis2s.data.tasks import CORPUS_TASKS, is_corpus, task_names

    assert {"tatoeba", "dlfs2-date", "dlfs2-addition"} <= set(task_names()) == \
        set(CORPUS_TASKS) | {"copy", "reverse", "addition", "dates", "entities"}
    assert is_corpus("tatoeba") and not is_corpus("dates")
    assert task_info("tatoeba").level == "word" and task_info("dlfs2-date").level == "char"
    assert task_info("dlfs2-addition").max_src_len == 7
    train, val, test = make_splits("dlfs2-addition", (100, None, 20), seed=3)
    assert (len(train), len(val), len(test)) == (100, 1000, 20)
    assert make_splits("dlfs2-addition", (100, None, 20), seed=3) == (train, val, test)
    full = make_splits("dlfs2-addition")[0]
    assert set(train) <= set(full)
    assert len(make_pairs("tatoeba", 5, seed=1)) == 5
    with pytest.raises(ValueError, match="holds 3,789 pairs; cannot take 5,000"):
        make_splits("tatoeba", (None, 5000, None))
    with pytest.raises(TypeError, match="takes no options"):
        make_splits("tatoeba", None, direction="en-fr")


def test_split_by_source_keeps_a_source_on_one_side():
    from minis2s.data.splits import split_by_source, subset

    pairs = [(f"s{i % 40}", f"t{i}") for i in range(200)]  # 40 sources, 5 targets each
    train, val, test = split_by_source(pairs, 20, 20, seed=0)
    assert len(train) + len(val) + len(test) == 200
    assert len(val) == 20 and len(test) == 20  # groups of 5 fill 20 exactly
    sides = [{s for s, _ in part} for part in (train, val, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert split_by_source(pairs, 20, 20, seed=0) == (train, val, test)
    assert split_by_source(pairs, 20, 20, seed=1) != (train, val, test)
    with pytest.raises(ValueError, match="no examples left for training"):
        split_by_source(pairs[:10], 5, 5)
    assert subset(pairs, 3, seed=0) == subset(pairs, 3, seed=0) and len(subset(pairs, 3)) == 3
    assert subset(pairs, None) == pairs


@pytest.mark.parametrize("call, name, error", [
    (lambda f, p: f.split_by_source(p, -1, 5), "n_val", ValueError),
    (lambda f, p: f.split_by_source(p, 5, 2.5), "n_test", TypeError),
    (lambda f, p: f.split_by_source(p, 5, 5, seed="0"), "seed", TypeError),
    (lambda f, p: f.subset(p, True), "n", TypeError),
    (lambda f, p: f.subset(p, 3, seed=-1), "seed", ValueError),
])
def test_splits_name_a_bad_count(call, name, error):
    from minis2s.data import splits

    pairs = [(f"s{i}", f"t{i}") for i in range(40)]
    with pytest.raises(error, match=f"^{name} must be an int >= 0"):
        call(splits, pairs)
