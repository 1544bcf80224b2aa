"""Affine map ``y = x W + b``: the forward/backward pair.

Derivation: docs/derivations/linear_and_loss.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import backend


class LinearCache(NamedTuple):
    x: object  # (..., D_in) input
    W: object  # (D_in, D_out) weight


def linear_forward(x, W, b=None):
    """y = x W + b.

    Args:
        x: (..., D_in) input; any leading axes (e.g. (B, T, D_in)) are kept.
        W: (D_in, D_out) weight.
        b: (D_out,) bias, or None.

    Returns:
        y: (..., D_out), and a :class:`LinearCache`.
    """
    y = backend.xp.matmul(x, W)
    if b is not None:
        y += b
    return y, LinearCache(x, W)


def linear_backward(dy, cache: LinearCache):
    """Backward of :func:`linear_forward`.

    Args:
        dy: (..., D_out) upstream gradient.

    Returns:
        dx (..., D_in) = dy Wᵀ, dW (D_in, D_out) = Σ xᵀ dy over the leading axes,
        db (D_out,) = Σ dy over the leading axes.
    """
    x, W = cache
    d_in, d_out = W.shape
    dx = backend.xp.matmul(dy, W.T)
    x2 = x.reshape(-1, d_in)
    dy2 = dy.reshape(-1, d_out)
    dW = x2.T @ dy2
    db = dy2.sum(axis=0)
    return dx, dW, db
