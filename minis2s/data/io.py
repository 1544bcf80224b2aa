"""Reading and writing a user's parallel text file: one ``source<TAB>target`` per line.

The format is deliberately strict, because a silent mistake in a training file (a stray tab, a
blank line that splits a file in two, a Latin-1 byte in a UTF-8 file) costs far more time later
than an error now. :func:`load_tsv` raises :class:`DataError` naming the file and the 1-based line
number of the first problem. Comment lines are not supported: every non-blank line is an example.

:func:`save_tsv` writes through :func:`minis2s.files.atomic_write`, so a reader never sees half
a file and a crash never leaves one behind.
"""

from __future__ import annotations

import os

from ..files import atomic_write

__all__ = ["DataError", "load_tsv", "save_tsv"]


class DataError(ValueError):
    """A data file is malformed. ``path`` and ``line`` (1-based, or None) say where."""

    def __init__(self, path, line, message):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


def load_tsv(path, encoding="utf-8"):
    """Read a parallel file with one ``source<TAB>target`` example per line.

    Each side is stripped of surrounding whitespace (so Windows ``\\r\\n`` endings are fine). A
    trailing newline and blank lines at the very end of the file are allowed; a leading UTF-8
    byte-order mark is dropped.

    Returns:
        list of ``(source, target)`` string pairs, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: (a ``ValueError``) with the path and the 1-based line number for: a line with
            no tab or with more than one tab, an empty side, bytes that do not decode with
            ``encoding``, a blank line before the last example, or a file with no examples.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"TSV file not found: {path!r}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        # Exact for ASCII-compatible encodings (UTF-8, Latin-1...), where b"\n" is a newline.
        line = data[: e.start].count(b"\n") + 1
        raise DataError(path, line, f"bytes {data[e.start:e.end]!r} cannot be decoded as "
                                    f"{encoding} ({e.reason}); re-save the file as "
                                    f"{encoding} or pass encoding=...") from None
    except LookupError:
        raise ValueError(f"encoding must be a known codec name; got {encoding!r}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    # Blank lines at the end (including the empty string after a trailing newline) are fine.
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(path, None, "the file holds no examples (expected one "
                                    "'source<TAB>target' per line)")
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(path, number, "blank line between examples (every line must be "
                                          "'source<TAB>target')")
        n_tabs = line.count("\t")
        if n_tabs == 0:
            raise DataError(path, number, f"no tab: expected 'source<TAB>target'; got "
                                          f"{_preview(line)}")
        if n_tabs > 1:
            raise DataError(path, number, f"{n_tabs} tabs: expected exactly one, "
                                          f"'source<TAB>target'; got {_preview(line)}")
        src, tgt = (side.strip() for side in line.split("\t"))
        if not src:
            raise DataError(path, number, "empty source (the text before the tab)")
        if not tgt:
            raise DataError(path, number, "empty target (the text after the tab)")
        pairs.append((src, tgt))
    return pairs


def save_tsv(pairs, path, encoding="utf-8"):
    """Write ``(source, target)`` pairs as ``source<TAB>target`` lines (atomically).

    Raises ValueError naming the index of a pair whose side is empty or holds a tab or a newline,
    since :func:`load_tsv` could not read it back.
    """
    lines = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be a (source, target) pair; got {pair!r}")
        for side, s in zip(("source", "target"), pair):
            if not isinstance(s, str):
                raise TypeError(f"pairs[{i}] {side} must be a str; got {type(s).__name__}")
            if not s.strip():
                raise ValueError(f"pairs[{i}] has an empty {side}")
            if any(c in s for c in "\t\n\r"):
                raise ValueError(f"pairs[{i}] {side} holds a tab or a newline, which the TSV "
                                 f"format cannot store: {s!r}")
        lines.append(f"{pair[0]}\t{pair[1]}\n")
    if not lines:
        raise ValueError("pairs must hold at least one (source, target) pair; got none")
    atomic_write(path, "".join(lines), encoding=encoding)


def _preview(line, width=60):
    return repr(line if len(line) <= width else line[:width] + "...")
