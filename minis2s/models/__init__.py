"""The three models, sharing one interface (see :class:`minis2s.models.base.Model`)."""

from ..checkpoint import register_models
from .attention import AttentionSeq2Seq
from .base import Model
from .pointer_generator import PointerGenerator
from .seq2seq import Seq2Seq

#: class name -> class, for checkpoints
MODELS = {"Seq2Seq": Seq2Seq, "AttentionSeq2Seq": AttentionSeq2Seq,
          "PointerGenerator": PointerGenerator}
register_models(MODELS)  # so that minis2s.load can rebuild them
#: command-line name -> class name
MODEL_NAMES = {"seq2seq": "Seq2Seq", "attention": "AttentionSeq2Seq",
               "pointer": "PointerGenerator"}

__all__ = ["Model", "Seq2Seq", "AttentionSeq2Seq", "PointerGenerator", "MODELS", "MODEL_NAMES"]
