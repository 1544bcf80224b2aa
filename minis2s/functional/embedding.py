"""Embedding lookup ``e = W[ids]`` and its backward, a scatter-add of rows.

Derivation: docs/derivations/linear_and_loss.md.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import _checks, backend

__all__ = ["EmbeddingCache", "embedding_forward", "embedding_backward"]


class EmbeddingCache(NamedTuple):
    ids: object  # (...) int token ids
    vocab_size: int


def _embedding_forward(ids, W):
    """out[..., :] = W[ids[...], :], unchecked."""
    return W[ids], EmbeddingCache(ids, W.shape[0])


def _embedding_backward(dout, cache: EmbeddingCache):
    """dW[v] = Σ_{p: ids[p] = v} dout[p] (a scatter-add), unchecked."""
    ### BEGIN SOLUTION
    ids, vocab_size = cache
    dW = backend.xp.zeros((vocab_size, dout.shape[-1]), dtype=dout.dtype)
    backend.scatter_add(dW, ids, dout)
    return dW
    ### END SOLUTION


@backend.device_inputs
def embedding_forward(ids, W):
    """Look the rows of ``W`` up: ``out[..., :] = W[ids[...], :]``.

    Args:
        ids: int array of any shape, e.g. (B, T), values in [0, V).
        W: (V, D) embedding matrix.

    Returns:
        out: ids.shape + (D,), and an :class:`EmbeddingCache`.
    """
    ids = _checks.embedding(ids, W)
    return _embedding_forward(ids, W)


@backend.device_inputs
def embedding_backward(dout, cache: EmbeddingCache):
    """dW[v] = Σ over the positions p with ids[p] == v of dout[p].

    A row used several times (the same token at several positions) adds up all of its
    gradients, so this is a scatter-add (:func:`minis2s.backend.scatter_add`), not an assignment.

    Args:
        dout: ids.shape + (D,) upstream gradient.

    Returns:
        dW: (V, D).
    """
    _checks.is_instance("cache", cache, EmbeddingCache, "embedding_forward")
    _checks.float_array("dout", dout, cache.ids.ndim + 1, "ids.shape + (D,)")
    _checks.shape("dout", dout, cache.ids.shape + dout.shape[-1:], "ids.shape + (D,)")
    return _embedding_backward(dout, cache)
