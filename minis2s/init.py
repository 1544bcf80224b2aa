"""Parameter initialisation, drawn on the host with NumPy so a seed gives the same numbers on
every backend, then moved to the active backend.

- Input-to-hidden and feed-forward weights: Xavier/Glorot uniform,
  U(−a, a) with a = sqrt(6 / (fan_in + fan_out)), which keeps activations' variance steady.
- Recurrent (hidden-to-hidden) weights: orthogonal, one H×H block per gate, so that repeated
  multiplication by W_hh neither explodes nor vanishes at the start of training.
- Biases: zero.
- Embeddings: N(0, 1/D), so an embedded vector has roughly unit norm.
"""

from __future__ import annotations

import numpy as np

from . import backend


def as_rng(seed) -> np.random.Generator:
    """A NumPy Generator from an int seed (or a Generator, returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or a numpy Generator; got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be an int >= 0 or a numpy Generator; got {seed}")
    return np.random.default_rng(int(seed))


def plain_seed(seed):
    """``seed`` for a model's config: a NumPy int becomes a Python int (JSON-safe); anything
    else is returned as is (and validated by :func:`as_rng`)."""
    if isinstance(seed, np.integer):
        return int(seed)
    return seed


def xavier_uniform(rng, fan_in, fan_out, shape, dtype):
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return backend.asarray(rng.uniform(-a, a, size=shape), dtype=dtype)


def orthogonal(rng, n, dtype):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q *= np.sign(np.diag(r))  # make the decomposition unique (uniform over orthogonal matrices)
    return q.astype(dtype)


def orthogonal_blocks(rng, blocks, n, dtype):
    """``blocks`` orthogonal n×n matrices stacked on axis 0: shape (blocks·n, n)."""
    return backend.asarray(np.concatenate([orthogonal(rng, n, dtype) for _ in range(blocks)]))


def normal(rng, std, shape, dtype):
    return backend.asarray(rng.normal(0.0, std, size=shape), dtype=dtype)


def zeros(shape, dtype):
    return backend.xp.zeros(shape, dtype=dtype)
