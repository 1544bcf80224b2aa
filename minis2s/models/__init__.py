"""The three models, sharing one interface (see :class:`minis2s.models.base.Model`)."""

from .base import Model
from .seq2seq import Seq2Seq

#: class name -> class, for checkpoints
MODELS = {"Seq2Seq": Seq2Seq}
#: command-line name -> class name
MODEL_NAMES = {"seq2seq": "Seq2Seq"}

__all__ = ["Model", "Seq2Seq", "MODELS", "MODEL_NAMES"]
