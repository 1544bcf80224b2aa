"""Argument validation shared by the public entry points.

Every check raises ValueError or TypeError with a message that names the argument, what was
expected and what was received, before any array math runs.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import backend


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int; got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int (> 0); got {value}")
    return int(value)


def non_negative_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 0; got {value!r} ({type(value).__name__})")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value}")
    return float(value)


def one_of(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")
    return value


def int_ids(name, a, ndim=2):
    """Validate an id array (NumPy or the active backend) and return it on the active backend."""
    if isinstance(a, (list, tuple)):
        try:
            a = np.asarray(a)
        except ValueError:
            raise ValueError(f"{name} must be a rectangular int array; got ragged lists") from None
    if not backend.is_array(a):
        raise TypeError(f"{name} must be an int array (NumPy or {backend.name}); got "
                        f"{type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids; got dtype {a.dtype}")
    if a.ndim != ndim:
        want = "(B, S)" if ndim == 2 else f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {want}; got {a.ndim} dimensions, shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{name} must not be empty; got shape {a.shape}")
    return backend.asarray(a)


def id_range(name, a, high, low=0):
    lo, hi = int(a.min()), int(a.max())
    if lo < low or hi >= high:
        bad = lo if lo < low else hi
        raise ValueError(f"{name} holds id {bad}, outside the valid range [{low}, {high})")


def float_array(name, a, ndim=None, shape_doc=None, dtype=None):
    """``a`` must be a float array (NumPy or the active backend) with ``ndim`` dimensions (an
    int, or a tuple of allowed ints) and, if given, ``dtype``; ``shape_doc`` (e.g. "(B, T, H)")
    names the expected shape in the message."""
    if not backend.is_array(a):
        raise TypeError(f"{name} must be a float array (NumPy or {backend.name}); got "
                        f"{type(a).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array (float32 or float64); got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, so that nothing is silently upcast; "
                        f"got {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = shape_doc or " or ".join(str(n) for n in allowed) + " dimensions"
            raise ValueError(f"{name} must have shape {want}; got shape {tuple(a.shape)}")
    return a


def same_dtype(ref_name, ref, **others):
    """Every array in ``others`` (None is skipped) must have the dtype of ``ref``."""
    for name, a in others.items():
        if a is not None and a.dtype != ref.dtype:
            raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), so that "
                            f"nothing is silently upcast; got {a.dtype}")


def shape(name, a, expected, shape_doc):
    """``a.shape`` must equal ``expected``; ``shape_doc`` names it, e.g. "(B, H)"."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {shape_doc} = {tuple(expected)}; got "
                         f"{tuple(a.shape)}")
    return a


def is_instance(name, value, cls, made_by):
    """``value`` must be a ``cls`` (a cache, typically); ``made_by`` names what returns one."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be the {cls.__name__} returned by {made_by}; got "
                        f"{type(value).__name__}")
    return value
