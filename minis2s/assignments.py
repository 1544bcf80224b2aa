"""The old name of :mod:`minis2s.coursework`, kept so that existing course material that
imports ``minis2s.assignments`` keeps working. New code imports ``minis2s.coursework``."""

from .coursework import *  # noqa: F403
from .coursework import __all__  # noqa: F401
