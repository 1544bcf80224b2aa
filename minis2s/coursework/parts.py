"""The parts of the coursework and the files whose solution regions each part owns.

Standard library only: the grading processes load this package by file path, beside the
student's ``minis2s`` (see :mod:`minis2s.coursework.grade`).
"""

from __future__ import annotations

__all__ = ["PARTS", "PART_FILES", "MANIFEST", "REFERENCE_TIER", "check_parts"]

#: The parts of the coursework, in the order students meet them: name -> what it covers.
PARTS = {
    "linear": "the affine map y = x W + b (functional/linear.py)",
    "embedding": "the embedding lookup and its scatter-add backward (functional/embedding.py)",
    "loss": "the masked softmax cross-entropy (functional/loss.py)",
    "gru": "the GRU cell, the masked loop over the cell (padding, reverse direction, layers) "
           "and one step through a stack (functional/gru.py)",
    "attention": "attention in four steps: keys, scores, masked softmax, context "
                 "(functional/attention.py)",
    "pointer": "the pointer-generator: coverage attention and loss, p_gen, the final mixture "
               "and its stable NLL (functional/pointer.py)",
}

#: The folder of the reference tier, the only place where solution regions may live.
REFERENCE_TIER = "functional/"

#: The files (relative to the package directory) whose regions each part owns. All lie in the
#: reference tier (``functional/``); the fast tier (``fast/``) is never blanked out. The first
#: file must exist and hold at least one region; the others are optional. ``file::Name`` takes
#: only the regions inside the class or function ``Name`` of that file.
PART_FILES = {
    "linear": ("functional/linear.py",),
    "embedding": ("functional/embedding.py",),
    "loss": ("functional/loss.py",),
    "gru": ("functional/gru.py",),
    "attention": ("functional/attention.py", "functional/activations.py::_masked_softmax",
                  "functional/activations.py::_masked_softmax_backward"),
    "pointer": ("functional/pointer.py",),
}

#: The manifest that ``make`` writes at the top of a copy.
MANIFEST = ".minis2s-assignment.json"


def check_parts(parts):
    """``parts`` (None, a list of names or a comma-separated string) -> names in course order.

    Raises:
        TypeError: ``parts`` is not a list of names.
        ValueError: no part, or an unknown part (the message lists the choices).
    """
    if parts is None:
        return list(PARTS)
    if isinstance(parts, str):
        parts = parts.split(",")
    try:
        names = [str(p).strip() for p in parts]
    except TypeError:
        raise TypeError(f"parts must be a list of part names or None; got "
                        f"{type(parts).__name__}") from None
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"parts must name at least one part; choose from {', '.join(PARTS)}")
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"unknown part{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; choose from {', '.join(PARTS)}")
    return [p for p in PARTS if p in names]
