"""minis2s: sequence-to-sequence learning from scratch in NumPy, with the same code on CuPy."""

from . import backend
from .backend import BackendError
from .constants import BOS, EOS, PAD, UNK

__version__ = "0.1.0"
