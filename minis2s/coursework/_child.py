"""The grading process: import the copy's minis2s, run one part's checks, print one JSON line.

It runs as ``_minis2s_grader._child``: :mod:`minis2s.coursework.grade` starts a fresh Python
whose only ``PYTHONPATH`` is the copy and loads this folder of the *instructor's* package under
that other name, by path, so that the student's ``minis2s`` (the one that ``import minis2s``
finds) and the instructor's checks and oracle never mix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .checks import describe, load, run_one

SENTINEL = "MINIS2S-GRADE-RESULT "


def selected(part, impl):
    """The checks of ``part`` that run with ``impl`` (the reference-tier ones only with it)."""
    return [c for c in load(part) if c.impl is None or c.impl == impl]


def run(copy_dir, part, impl=None):
    """Grade one part of the copy at ``copy_dir`` in this process -> the result dict."""
    copy_dir = Path(copy_dir).resolve()
    checks = selected(part, impl)
    result = {"part": part, "error": None, "checks": []}
    try:
        import minis2s

        where = Path(minis2s.__file__).resolve()
        if not where.is_relative_to(copy_dir):
            raise RuntimeError(f"imported minis2s from {where.parent}, not from the copy at "
                               f"{copy_dir}; grading stopped")
    except Exception as e:  # the copy does not import (a syntax error...): every check fails
        result["error"] = f"import minis2s failed: {describe(e, copy_dir)}"
        result["checks"] = [{"name": c.name, "max_score": c.points, "score": 0.0,
                             "detail": result["error"]} for c in checks]
        return result
    import warnings

    import numpy

    warnings.simplefilter("ignore")
    with numpy.errstate(all="ignore"):
        for c in checks:
            fraction, detail = run_one(c.run)
            result["checks"].append({"name": c.name, "max_score": c.points,
                                     "score": round(fraction * c.points, 6), "detail": detail})
    return result


def main(copy_dir, part, impl=""):
    nonce = sys.stdin.readline().strip()  # before the copy's code runs (see grade.py)
    result = json.dumps(run(copy_dir, part, impl or None))
    print(f"{SENTINEL}{nonce} {result}", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(*sys.argv[1:]))
