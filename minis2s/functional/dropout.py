"""Inverted dropout (Srivastava et al., 2014), forward and backward.

While training, each unit of x is kept with probability 1 − p and zeroed otherwise; the kept
units are scaled by 1/(1 − p), so that the expected value of every unit is unchanged::

    keep ~ Bernoulli(1 − p)   (same shape as x, drawn once per forward)
    d    = keep / (1 − p)      the mask's multiplier: 0 or 1/(1 − p)
    y    = x ⊙ d
    dx   = dy ⊙ d              the backward uses the same mask and scale

At inference nothing is dropped and nothing is scaled (y = x): because of the 1/(1 − p) during
training, E[y] = x already, so the trained weights need no correction. The models apply it only
while ``model.training`` is on (:meth:`minis2s.models.base.Model.train`).

The mask is drawn on the host with a NumPy ``Generator`` and copied to the active backend: the
same seed gives the same mask on NumPy and CuPy and on both tiers.

Derivation: docs/derivations/dropout.md.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

from .. import _checks, backend
from .. import init as initlib

__all__ = ["dropout_forward", "dropout_backward", "dropout_rate", "draw_keep_mask",
           "DropoutCache"]


class DropoutCache(NamedTuple):
    d: object  # the multiplier keep / (1 − p), like x (None: p = 0, nothing dropped)


def dropout_rate(name, p):
    """Validate a dropout rate: a real number with 0 <= p < 1; returns it as a float."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1); got {p!r} ({type(p).__name__})")
    if not (0.0 <= float(p) < 1.0):
        raise ValueError(f"{name} must be in [0, 1) (the probability of dropping a unit); "
                         f"got {p!r}")
    return float(p)


def draw_keep_mask(shape, p, rng):
    """A host (NumPy) bool mask of ``shape``, True (keep) with probability 1 − p.

    ``rng`` is a ``numpy.random.Generator`` or an int seed."""
    return initlib.keep_mask(shape, p, rng)


@backend.device_inputs
def dropout_forward(x, p, mask=None, rng=None):
    """Inverted dropout: y = x ⊙ keep / (1 − p).

    Args:
        x: (...) float array.
        p: the probability of dropping a unit, 0 <= p < 1 (0: y = x, nothing drawn).
        mask: the keep mask, like x (bool, or 0/1 numbers), NumPy or the active backend; or None
            to draw one from ``rng``. A fixed mask makes the op deterministic (gradient checks).
        rng: a ``numpy.random.Generator`` or an int seed, used when ``mask`` is None (None: a
            fresh, unseeded generator).

    Returns:
        y: like x; and a :class:`DropoutCache` for :func:`dropout_backward`.

    Derivation: docs/derivations/dropout.md.
    """
    x = _checks.float_array("x", x)
    p = dropout_rate("p", p)
    if mask is not None:
        if tuple(mask.shape) != tuple(x.shape):
            raise ValueError(f"mask must have the shape of x {tuple(x.shape)}; got "
                             f"{tuple(mask.shape)}")
    elif p > 0:
        mask = draw_keep_mask(x.shape, p, rng)
    if p == 0 and mask is None:
        return x, DropoutCache(None)
    return _dropout_forward(x, keep_multiplier(mask, p, x.dtype))


def keep_multiplier(keep, p, dtype):
    """keep (bool or 0/1, host or device) -> d = keep / (1 − p) on the active backend."""
    return backend.asarray(keep, dtype=dtype) * backend.xp.asarray(1.0 / (1.0 - p), dtype=dtype)


def _dropout_forward(x, d):
    """y = x ⊙ d for the multiplier d = keep / (1 − p) (arguments unchecked)."""
    return x * d, DropoutCache(d)


@backend.device_inputs
def dropout_backward(dy, cache: DropoutCache):
    """Backward of :func:`dropout_forward`: dx = dy ⊙ keep / (1 − p), the same mask and scale.

    Args:
        dy: like y, the upstream gradient.
        cache: from :func:`dropout_forward`.

    Returns:
        dx: like x.

    Derivation: docs/derivations/dropout.md.
    """
    _checks.is_instance("cache", cache, DropoutCache, "dropout_forward")
    dy = _checks.float_array("dy", dy)
    if cache.d is not None and tuple(dy.shape) != tuple(cache.d.shape):
        raise ValueError(f"dy must have the shape of x {tuple(cache.d.shape)}; got "
                         f"{tuple(dy.shape)}")
    return _dropout_backward(dy, cache)


def _dropout_backward(dy, cache: DropoutCache):
    """dx = dy ⊙ d (arguments unchecked)."""
    return dy if cache.d is None else dy * cache.d
