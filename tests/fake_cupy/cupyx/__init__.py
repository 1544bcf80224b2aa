"""The part of cupyx that minis2s uses, for the fake CuPy (see tests/fake_cupy/cupy)."""

import cupy as _cupy
import numpy as _np


def scatter_add(a, slices, value):
    """a[slices] += value, adding up repeated indices (as cupyx.scatter_add)."""
    _np.add.at(_cupy._unwrap(a, "scatter_add"), _cupy._unwrap_index(slices),
               _cupy._unwrap(value, "scatter_add"))
