"""Small helpers shared by several test modules."""

import contextlib
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


@contextlib.contextmanager
def tier(name):
    """Compute on the tier ``name`` ("fast" or "reference") inside the block."""
    from minis2s import backend

    before = backend.impl()
    backend.use_impl(name)
    try:
        yield
    finally:
        backend.use_impl(before)


def pointer_case(seed=1, saturated=False):
    """The pointer mixture's inputs, B=3, T=4, V=7, S=5: padded targets and sources, a
    repeated source word, an OOV target copied (id 8) and one the source lacks (id 9,
    floored); ``saturated`` puts p_gen's logit at ±50 on two rows. Returns (vocab logits,
    p_gen logits, alpha, src_ext, target, weight) as host arrays."""
    rng = np.random.default_rng(seed)
    B, T, V, S = 3, 4, 7, 5
    src = np.array([[4, 8, 5, 7, 4], [5, 7, 6, 0, 0], [7, 4, 0, 0, 0]])
    e = np.where(src[:, None, :] != 0, rng.standard_normal((B, T, S)), -np.inf)
    alpha = np.exp(e - e.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    target = np.array([[4, 8, 3, 2], [7, 9, 0, 0], [7, 0, 0, 0]])
    l = rng.standard_normal((B, T))
    if saturated:
        l[0, 0], l[1, 0] = 50.0, -50.0
    weight = (target != 0).astype(float)
    return rng.standard_normal((B, T, V)) * 3, l, alpha, src, target, weight
