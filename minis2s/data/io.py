"""Reading and writing a user's parallel text: ``source<TAB>target`` lines (optionally with
manythings.org's attribution column), DLFS2's ``source_target`` lines, or two line-aligned files.

The format is deliberately strict, because a silent mistake in a training file (a stray tab, a
blank line that splits a file in two, a Latin-1 byte in a UTF-8 file) costs far more time later
than an error now. :func:`load_tsv` raises :class:`DataError` naming the file and the 1-based line
number of the first problem. Comment lines are not supported: every non-blank line is an example.

:func:`save_tsv` writes through :func:`minis2s.files.atomic_write`, so a reader never sees half
a file and a crash never leaves one behind.
"""

from __future__ import annotations

import errno
import logging
import os

from ..files import atomic_write

__all__ = ["DataError", "load_tsv", "load_dlfs2", "load_parallel", "load_pairs", "load_lines",
           "save_tsv", "FORMATS", "HEADER_NAMES"]

log = logging.getLogger("minis2s.data")


class DataError(ValueError):
    """A data file is malformed. ``path`` and ``line`` (1-based, or None) say where."""

    def __init__(self, path, line, message):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


def load_tsv(path, encoding="utf-8", header="auto"):
    """Read a parallel file with one ``source<TAB>target`` example per line.

    Each side is stripped of surrounding whitespace (so Windows ``\\r\\n`` endings are fine). A
    trailing newline and blank lines at the very end of the file are allowed; a leading UTF-8
    byte-order mark is dropped.

    manythings.org's current Tatoeba files add a third column that credits the pair's authors
    (``Go.<TAB>Va !<TAB>CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & ...``): a
    third column that starts with ``CC-BY`` is accepted and dropped. Any other third column is
    an error (it is more likely a stray tab inside a sentence).

    Args:
        header: ``"auto"`` (the default) skips line 1 when both of its fields are column names
            such as ``source``/``target``, ``src``/``tgt`` or ``en``/``fr`` (see
            :data:`HEADER_NAMES`), with a warning on the ``"minis2s.data"`` logger, so that a
            header is never read as an example; ``True`` always skips line 1; ``False`` never.

    Returns:
        list of ``(source, target)`` string pairs, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: (a ``ValueError``) with the path and the 1-based line number for: a line with
            no tab or with more than one tab (other than the attribution column), an empty side,
            bytes that do not decode with ``encoding``, a blank line before the last example, or
            a file with no examples.
    """
    if header not in ("auto", True, False):
        raise ValueError(f"header must be 'auto', True or False; got {header!r}")
    path, lines = _read_lines(path, encoding, "TSV file", "'source<TAB>target'")
    start = 0
    if header is True or (header == "auto" and _looks_like_header(lines[0])):
        if header == "auto":
            log.warning("%s: line 1 %s looks like a header (column names), not an example: "
                        "skipped it", path, _preview(lines[0]))
        start = 1
        if len(lines) == 1:
            raise DataError(path, None, "the file holds only a header line and no examples")
    pairs = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            raise DataError(path, number, "blank line between examples (every line must be "
                                          "'source<TAB>target')")
        fields = line.split("\t")
        if len(fields) == 3 and fields[2].strip().upper().startswith("CC-BY"):
            fields = fields[:2]  # manythings.org's attribution column
        n_tabs = len(fields) - 1
        if n_tabs == 0:
            hint = (" (for DLFS2's 'source_target' files use format 'dlfs2', --format dlfs2)"
                    if "_" in line else "")
            raise DataError(path, number, f"no tab: expected 'source<TAB>target'; got "
                                          f"{_preview(line)}{hint}")
        if n_tabs > 1:
            raise DataError(path, number, f"{n_tabs} tabs: expected exactly one, "
                                          f"'source<TAB>target' (or a third column of "
                                          f"'CC-BY ...' attribution); got {_preview(line)}")
        src, tgt = (side.strip() for side in fields)
        if not src:
            raise DataError(path, number, "empty source (the text before the tab)")
        if not tgt:
            raise DataError(path, number, "empty target (the text after the tab)")
        pairs.append((src, tgt))
    return pairs


def load_dlfs2(path, encoding="utf-8"):
    """Read a file in the format of *Deep Learning from Scratch 2*'s ``date.txt`` and
    ``addition.txt``: ``source_target`` per line, both sides padded with spaces.

    Each line is cut at its first ``_`` (as the book's ``dataset/sequence.py`` does) and both
    sides are stripped of the padding. The book's loader keeps the padding and the ``_`` as
    tokens; minis2s pads batches with PAD and starts targets with BOS instead.

    Returns:
        list of ``(source, target)`` string pairs, in file order.

    Raises:
        FileNotFoundError, or DataError with the path and line for a line without ``_``, an
        empty side, undecodable bytes, a blank line before the last example or no examples.
    """
    path, lines = _read_lines(path, encoding, "DLFS2 file", "'source_target'")
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(path, number, "blank line between examples (every line must be "
                                          "'source_target')")
        cut = line.find("_")
        if cut < 0:
            hint = " (for 'source<TAB>target' files use format 'tsv')" if "\t" in line else ""
            raise DataError(path, number, f"no '_': expected DLFS2's 'source_target'; got "
                                          f"{_preview(line)}{hint}")
        src, tgt = line[:cut].strip(), line[cut + 1:].strip()
        if not src:
            raise DataError(path, number, "empty source (the text before the '_')")
        if not tgt:
            raise DataError(path, number, "empty target (the text after the '_')")
        pairs.append((src, tgt))
    return pairs


def load_parallel(src_path, tgt_path, encoding="utf-8"):
    """Read two line-aligned files, one sentence per line, one file per language (as Multi30k's
    and WMT's ``train.en`` / ``train.de``): line k of each file make the k-th pair.

    Returns:
        list of ``(source, target)`` string pairs.

    Raises:
        FileNotFoundError; DataError naming both files and both line counts when the counts
        differ, or the file and line of an empty line (or undecodable bytes).
    """
    src_path, src_lines = _read_lines(src_path, encoding, "source file", "one sentence")
    tgt_path, tgt_lines = _read_lines(tgt_path, encoding, "target file", "one sentence")
    if len(src_lines) != len(tgt_lines):
        raise DataError(src_path, None, f"{len(src_lines):,} lines, but {tgt_path} has "
                                        f"{len(tgt_lines):,}: the source and target files must "
                                        "be line-aligned (one sentence per line, the same number "
                                        "of lines)")
    pairs = []
    for number, (src, tgt) in enumerate(zip(src_lines, tgt_lines), start=1):
        src, tgt = src.strip(), tgt.strip()
        for path, side, other in ((src_path, src, tgt_path), (tgt_path, tgt, src_path)):
            if not side:
                raise DataError(path, number, f"empty line (every line must hold a sentence, "
                                              f"aligned with line {number} of {other})")
        pairs.append((src, tgt))
    return pairs


def load_lines(path, encoding="utf-8"):
    """Every line of a text file (to translate, say), blank ones included, without their line
    endings; the newline that ends the last line does not start another. DataError with the
    line for undecodable bytes; an empty file gives ``[]``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"input file not found: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not an input file", path)
    with open(path, "rb") as f:
        data = f.read()
    text = _decode(path, data, encoding)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


FORMATS = ("tsv", "dlfs2")


def load_pairs(path=None, src_path=None, tgt_path=None, format="tsv", encoding="utf-8",
               header="auto"):
    """A user's parallel data: one file ``path`` in ``format`` (``"tsv"``, see :func:`load_tsv`,
    or ``"dlfs2"``, see :func:`load_dlfs2`), or two line-aligned files ``src_path`` and
    ``tgt_path`` (:func:`load_parallel`)."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {format!r}")
    if path is not None:
        if src_path is not None or tgt_path is not None:
            raise ValueError("give either path or src_path and tgt_path, not both")
        return load_tsv(path, encoding, header) if format == "tsv" else load_dlfs2(path,
                                                                                  encoding)
    if src_path is None or tgt_path is None:
        raise ValueError("give path, or both src_path and tgt_path; got "
                         f"src_path={src_path!r}, tgt_path={tgt_path!r}")
    return load_parallel(src_path, tgt_path, encoding)


#: Column names that :func:`load_tsv` recognises as a header line (compared case-insensitively).
HEADER_NAMES = frozenset("""
    source target src tgt input output inputs outputs sources targets text label labels
    question answer translation reference references prediction hypothesis sentence
    en fr de es it pt nl eng fra deu spa english french german spanish italian
""".split())


def _looks_like_header(line):
    fields = line.split("\t")
    if len(fields) == 3 and fields[2].strip().upper().startswith("CC-BY"):
        fields = fields[:2]
    return len(fields) == 2 and all(f.strip().lower() in HEADER_NAMES for f in fields)


def _decode(path, data, encoding):
    """The text of ``data`` without a leading BOM; DataError naming the line of bytes that do
    not decode."""
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
    return text[1:] if text.startswith("\ufeff") else text


def _read_lines(path, encoding, what, shape):
    """``(path, lines)``: the decoded lines of a text file, without a BOM and without the blank
    lines at its end; DataError for undecodable bytes (with the line) or no lines."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} not found: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"Is a directory, not a {what}", path)
    with open(path, "rb") as f:
        data = f.read()
    lines = _decode(path, data, encoding).split("\n")
    # Blank lines at the end (including the empty string after a trailing newline) are fine.
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(path, None, f"the file holds no examples (expected {shape} per line)")
    return path, lines


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
