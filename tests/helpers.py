"""Small helpers shared by several test modules."""

import io
import json
import zipfile

import numpy as np


def rewrite_checkpoint_meta(path, change):
    """Edit the JSON metadata of a checkpoint in place with ``change(meta)`` (the checksum covers
    only the arrays, so the file stays readable)."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(io.BytesIO(entries["__meta__.npy"])).tobytes().decode())
    change(meta)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    entries["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)


class OnHost:
    """A module (or object) whose functions return their arrays on the host.

    ``A = OnHost(minis2s.functional.attention)``: ``A.f(...)`` calls ``f`` and brings the arrays
    in its result (also inside tuples, lists and dicts) back as NumPy arrays with
    ``backend.to_numpy``; caches (NamedTuples) stay as they are, on the device, for the
    backward. On NumPy nothing changes; under CuPy the tests can then compare with NumPy.
    Inputs may be NumPy arrays: the library's functions copy them to the device themselves.
    """

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        def call(*args, **kwargs):
            return to_host(attr(*args, **kwargs))

        call.__name__ = getattr(attr, "__name__", name)
        call.__wrapped__ = attr
        return call


def to_host(x):
    """Arrays of the active backend -> NumPy, recursively through tuples, lists and dicts (not
    NamedTuples: those are caches that go back into a backward)."""
    from minis2s import backend

    if backend.is_array(x):
        return backend.to_numpy(x)
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(to_host(v) for v in x)
    if isinstance(x, list):
        return [to_host(v) for v in x]
    if isinstance(x, dict):
        return {k: to_host(v) for k, v in x.items()}
    return x
