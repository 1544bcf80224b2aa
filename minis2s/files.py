"""Files: the one atomic writer that every minis2s output goes through.

Checkpoints, vocabularies, TSV files, plots and ``metrics.json`` are all written by
:func:`atomic_write`: the data goes to a temporary file in the same directory, is flushed to
disk, and is then renamed over the target with ``os.replace``. A reader therefore sees either
the old file or the new one, never half of one, even if the process is killed mid-write or the
disk fills up. The new file gets the permissions of a file created with ``open()``: ``0o666``
less the umask (``mkstemp`` alone would leave it ``0o600``).

This module imports nothing else of minis2s, so that any module may use it without a cycle.
"""

from __future__ import annotations

import errno
import os
import tempfile

__all__ = ["atomic_write", "WriteError"]


class WriteError(OSError):
    """A file could not be written (full disk, no permission, ...). Nothing half-written is
    left behind; the message names the path."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, data, encoding="utf-8"):
    """Write ``data`` (``bytes``, or ``str`` encoded with ``encoding``) to exactly ``path``.

    The parent directory is created if it is missing. On any error the temporary file is
    removed, an existing file at ``path`` is left as it was, and :class:`WriteError` (an
    ``OSError``) names the path and the reason.
    """
    path = os.fspath(path)
    if isinstance(data, str):
        data = data.encode(encoding)
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes or str; got {type(data).__name__}")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path!r}: it is a directory")
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part",
                                   dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        reason = e.strerror or str(e)
        if e.errno == errno.ENOSPC:
            reason = "no space left on the device"
        raise WriteError(e.errno, f"cannot write {path!r}: {reason}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
