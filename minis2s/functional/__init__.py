"""The reference tier: pure forward/backward pairs, one concept per module (CS231n style), in
the symbols of docs/derivations/.

Each ``*_forward`` returns its output(s) and a small NamedTuple cache; the matching
``*_backward`` takes the upstream gradient(s) and that cache. The public functions check their
arguments; the private ``_*`` forms they call are the unchecked textbook code that the layers
and models compose. ``minis2s.fast`` holds the same math rearranged for speed.
"""

from . import activations, attention, embedding, gru, linear, loss, pointer
from .activations import log_softmax, masked_softmax_backward, masked_softmax_forward, softmax
from .embedding import embedding_backward, embedding_forward
from .linear import linear_backward, linear_forward
from .loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward

__all__ = [
    "activations",
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
    "masked_softmax_forward",
    "masked_softmax_backward",
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
]
