"""The real corpora shipped inside the package, gzip-compressed, each beside its licence.

    >>> from minis2s.data import corpora
    >>> sorted(corpora.CORPORA)
    ['dlfs2-addition', 'dlfs2-date', 'tatoeba-eng-fra']
    >>> text = corpora.read_text("dlfs2-date")        # the whole file, decompressed
    >>> print(corpora.licence("tatoeba-eng-fra")[:60])

- ``tatoeba-eng-fra``: ``tatoeba/eng-fra.tsv.gz``, 76,037 ``English<TAB>French`` pairs,
  CC BY 2.0 FR (credit and licence in ``tatoeba/LICENSE.md``).
- ``dlfs2-date`` and ``dlfs2-addition``: ``dlfs2/date.txt.gz`` and ``dlfs2/addition.txt.gz``,
  50,000 ``source_target`` lines each, MIT (``dlfs2/LICENSE.md``, provenance in
  ``dlfs2/README.md``).

The files are found with :mod:`importlib.resources`, so they are there after a plain
``pip install .`` (they are package data, see pyproject.toml) and nothing is downloaded.
:func:`read_text` checks the SHA-256 of the decompressed text against the one recorded here, so
a damaged copy is an error rather than a silently different data set.
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources
from typing import NamedTuple

__all__ = ["CORPORA", "Corpus", "read_text", "path", "licence", "CorpusError"]


class CorpusError(RuntimeError):
    """A shipped corpus is missing or damaged (a broken installation)."""


class Corpus(NamedTuple):
    name: str
    resource: str  # path under minis2s/data/corpora/
    licence: str  # the licence/attribution file, under minis2s/data/corpora/
    lines: int
    sha256: str  # of the decompressed UTF-8 bytes
    credit: str


CORPORA = {c.name: c for c in (
    Corpus("tatoeba-eng-fra", "tatoeba/eng-fra.tsv.gz", "tatoeba/LICENSE.md",
           76037, "0054ea2102484f4800d0b2cca57460b6b4a2e05328e6954240601065b001b1a6",
           "Tatoeba (https://tatoeba.org), via https://www.manythings.org/anki/; "
           "CC BY 2.0 FR (https://creativecommons.org/licenses/by/2.0/fr/)"),
    Corpus("dlfs2-date", "dlfs2/date.txt.gz", "dlfs2/LICENSE.md",
           50000, "62e66a301ce8537868e725512d2a45663fc366526b7e42028cb703bda2b1c79a",
           "Deep Learning from Scratch 2 (Koki Saitoh, O'Reilly Japan), MIT licence"),
    Corpus("dlfs2-addition", "dlfs2/addition.txt.gz", "dlfs2/LICENSE.md",
           50000, "34e0746f5014c11311c9452ee9050bf14e38eca44ec4aaf4d81eba2b38674009",
           "Deep Learning from Scratch 2 (Koki Saitoh, O'Reilly Japan), MIT licence"),
)}

_cache: dict[str, str] = {}


def _get(name):
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; choose one of {sorted(CORPORA)}")
    return CORPORA[name]


def _resource(rel):
    node = resources.files("minis2s.data.corpora")
    for part in rel.split("/"):
        node = node.joinpath(part)
    return node


def path(name):
    """The installed resource (a Traversable) of corpus ``name``'s compressed file."""
    return _resource(_get(name).resource)


def licence(name):
    """The text of corpus ``name``'s licence and attribution file."""
    c = _get(name)
    node = _resource(c.licence)
    if not node.is_file():
        raise CorpusError(f"the licence file minis2s/data/corpora/{c.licence} is missing: the "
                          "installation is broken; reinstall minis2s")
    return node.read_text(encoding="utf-8")


def read_text(name):
    """The decompressed text of corpus ``name`` (cached after the first call).

    Raises:
        CorpusError: the file is missing, not gzip, or its SHA-256 differs from the recorded one.
    """
    c = _get(name)
    if name in _cache:
        return _cache[name]
    node = _resource(c.resource)
    where = f"minis2s/data/corpora/{c.resource}"
    if not node.is_file():
        raise CorpusError(f"the shipped corpus {where} is missing: the installation is broken "
                          "(it must include the package data); reinstall minis2s")
    try:
        data = gzip.decompress(node.read_bytes())
    except (OSError, EOFError) as e:
        raise CorpusError(f"{where} is not a readable gzip file ({e}); reinstall minis2s") \
            from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != c.sha256:
        raise CorpusError(f"{where} is damaged: SHA-256 {digest[:16]}... differs from the "
                          f"recorded {c.sha256[:16]}...; reinstall minis2s")
    _cache[name] = text = data.decode("utf-8")
    return text
