"""Affine map ``y = x W + b``: the forward/backward pair.

Derivation: docs/derivations/linear_and_loss.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import backend


class LinearCache(NamedTuple):
    x: object  # (..., D_in) input
    W: object  # (D_in, D_out) weight


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
    # One 2-D GEMM over the flattened leading axes: NumPy's batched matmul of a 3-D array with
    # a 2-D weight is many times slower than the same product as one 2-D matmul.
    ### BEGIN SOLUTION
    y = (x.reshape(-1, W.shape[0]) @ W).reshape(x.shape[:-1] + (W.shape[1],))
    if b is not None:
        y += b
    ### END SOLUTION
    return y, LinearCache(x, W)


@backend.device_inputs
def linear_backward(dy, cache: LinearCache):
    """Backward of :func:`linear_forward`.

    Args:
        dy: (..., D_out) upstream gradient.

    Returns:
        dx (..., D_in) = dy Wᵀ, dW (D_in, D_out) = Σ xᵀ dy over the leading axes,
        db (D_out,) = Σ dy over the leading axes.
    """
    ### BEGIN SOLUTION
    x, W = cache
    d_in, d_out = W.shape
    dy2 = dy.reshape(-1, d_out)
    dx = (dy2 @ W.T).reshape(x.shape)
    dW = x.reshape(-1, d_in).T @ dy2
    db = dy2.sum(axis=0)
    return dx, dW, db
    ### END SOLUTION
