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
