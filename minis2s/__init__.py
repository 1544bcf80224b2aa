"""minis2s: sequence-to-sequence learning from scratch in NumPy, with the same code on CuPy.

Three models with hand-written forward and backward passes: :class:`Seq2Seq` (GRU
encoder-decoder), :class:`AttentionSeq2Seq` and :class:`PointerGenerator` (with coverage).
"""

from . import backend, functional, gradcheck, layers, optim
from .backend import BackendError
from .checkpoint import load
from .constants import BOS, EOS, PAD, UNK
from .models import AttentionSeq2Seq, PointerGenerator, Seq2Seq

__version__ = "0.1.0"

__all__ = [
    "backend",
    "functional",
    "gradcheck",
    "layers",
    "optim",
    "BackendError",
    "load",
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "Seq2Seq",
    "AttentionSeq2Seq",
    "PointerGenerator",
]
