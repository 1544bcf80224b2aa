"""The three models, sharing one interface (see :class:`minis2s.models.base.Model`)."""

from .base import Model
from .pointer_generator import PointerGenerator
from .seq2seq import Seq2Seq

#: class name -> class, for checkpoints
MODELS = {"Seq2Seq": Seq2Seq, "PointerGenerator": PointerGenerator}
#: command-line name -> class name
MODEL_NAMES = {"seq2seq": "Seq2Seq", "pointer": "PointerGenerator"}

__all__ = ["Model", "Seq2Seq", "PointerGenerator", "MODELS", "MODEL_NAMES"]
