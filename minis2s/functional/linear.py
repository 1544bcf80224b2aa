"""Affine map ``y = x W + b``: the forward/backward pair.

Derivation: docs/derivations/linear_and_loss.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _checks, backend

__all__ = ["LinearCache", "linear_forward", "linear_backward"]


class LinearCache(NamedTuple):
    x: object  # (..., D_in) input
    W: object  # (D_in, D_out) weight


def _matmul(x, W):
    """x (..., D_in) @ W (D_in, D_out) or W (D_in,): one 2-D product over the flattened leading
    axes (NumPy's batched product of a 3-D array with a 2-D weight is many times slower)."""
    return (x.reshape(-1, x.shape[-1]) @ W).reshape(x.shape[:-1] + W.shape[1:])


def _sum_outer(x, dy):
    """Σ over the leading axes of x_iᵀ dy_i: (..., D_in), (..., D_out) -> (D_in, D_out)."""
    return x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])


def _linear_forward(x, W, b=None):
    """y = x W + b, unchecked."""
    ### BEGIN SOLUTION
    y = _matmul(x, W)
    if b is not None:
        y += b
    ### END SOLUTION
    return y, LinearCache(x, W)


def _linear_backward(dy, cache: LinearCache):
    """dx = dy Wᵀ, dW = Σ xᵀ dy, db = Σ dy (sums over the leading axes), unchecked."""
    x, W = cache
    ### BEGIN SOLUTION
    dx = _matmul(dy, W.T)
    dW = _sum_outer(x, dy)
    db = dy.reshape(-1, dy.shape[-1]).sum(axis=0)
    ### END SOLUTION
    return dx, dW, db


@backend.device_inputs
def linear_forward(x, W, b=None):
    """y = x W + b.

    Args:
        x: (..., D_in) input; any leading axes (e.g. (B, T, D_in)) are kept.
        W: (D_in, D_out) weight.
        b: (D_out,) bias, or None.

    Returns:
        y: (..., D_out), and a :class:`LinearCache`.
    """
    _checks.linear(x, W, b)
    return _linear_forward(x, W, b)


@backend.device_inputs
def linear_backward(dy, cache: LinearCache):
    """Backward of :func:`linear_forward`.

    Args:
        dy: (..., D_out) upstream gradient.

    Returns:
        dx (..., D_in) = dy Wᵀ, dW (D_in, D_out) = Σ xᵀ dy over the leading axes,
        db (D_out,) = Σ dy over the leading axes.
    """
    _checks.is_instance("cache", cache, LinearCache, "linear_forward")
    _checks.shape("dy", _checks.float_array("dy", dy, None, dtype=cache.W.dtype),
                  cache.x.shape[:-1] + cache.W.shape[1:], "(..., D_out)")
    return _linear_backward(dy, cache)
