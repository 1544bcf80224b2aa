"""Pure forward/backward pairs, one concept per module (CS231n style).

Each ``*_forward`` returns its output(s) and a small NamedTuple cache; the matching
``*_backward`` takes the upstream gradient(s) and that cache.
"""

from . import attention, embedding, gru, linear, loss, pointer
from .embedding import embedding_backward, embedding_forward
from .linear import linear_backward, linear_forward
from .loss import (
    log_softmax,
    softmax,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)

__all__ = [
    "attention",
    "embedding",
    "gru",
    "linear",
    "loss",
    "pointer",
    "embedding_forward",
    "embedding_backward",
    "linear_forward",
    "linear_backward",
    "log_softmax",
    "softmax",
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
]
