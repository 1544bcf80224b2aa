"""The fast tier: code that runs fast and is proven equal to the textbook code.

``minis2s.functional`` is the reference tier, the textbook: the code of the derivations, the
notebooks and the coursework (a GRU sequence is a loop over the cell). This package holds the
same functions rearranged for speed: sorted batches, time-major buffers, in-place (``out=``)
arithmetic, fused GPU kernels. It is never blanked out for coursework.

- Each function's docstring names the reference it equals ("Equals:
  minis2s.functional.gru.gru_forward"), and a float64 test proves the equality, forward and
  backward, on padded batches (tests/test_tiers_*.py).
- The functions here are unchecked internals: the layers and models check the arguments at
  their boundary, then call them.
- Layers and models pick the tier at call time with ``minis2s.backend.impl()``: ``"fast"`` (the
  default) runs this package, ``"reference"`` the textbook (``backend.use_impl`` or the
  ``MINIS2S_IMPL`` environment variable switch).
- Two host-side helpers serve both tiers on the CPU: :mod:`.threads` spreads independent
  elementwise blocks over the cores, and :mod:`.memory` keeps freed memory in the process for
  the next training step.
"""

from . import gru, loss

__all__ = ["gru", "loss"]
