"""Coursework: student copies with the solutions blanked out, and their grading.

- :mod:`.parts`: the parts (:data:`PARTS`) and the files whose regions each owns
  (:data:`PART_FILES`, all in the reference tier ``functional/``).
- :mod:`.markers`: finding and checking the ``### BEGIN/END SOLUTION`` regions, and stubbing
  them.
- :mod:`.make`: :func:`make` writes a student copy (or, with ``solutions=True``, an answer
  copy) of a checkout.
- :mod:`.grade`: :func:`grade` / :func:`grade_many` score copies, each part in its own
  isolated, time-limited process; :mod:`.report` writes the table, CSV, JSON and Gradescope's
  ``results.json``.
- :mod:`.checks`: one module of checks per part, calling the student's functions by their
  public names; :mod:`.oracle`: the NumPy references they (and the test suite) compare with.

See docs/coursework.md.
"""

from __future__ import annotations

import time

from .grade import IMPLS, CheckResult, PartResult, Submission, grade, grade_many
from .make import checkout, foreign_copy_message, make, read_manifest
from .markers import MarkerError, Region, check_markers, find_regions
from .parts import MANIFEST, PART_FILES, PARTS
from .report import gradescope, table, write_csv, write_gradescope, write_json

__all__ = [
    "PARTS", "PART_FILES", "MANIFEST", "IMPLS",
    "MarkerError", "Region", "find_regions", "check_markers",
    "make", "checkout", "read_manifest", "foreign_copy_message",
    "grade", "grade_many", "grade_cli", "CheckResult", "PartResult", "Submission",
    "table", "write_csv", "write_json", "gradescope", "write_gradescope",
]


def grade_cli(dirs, parts=None, timeout=300.0, impl=None, csv=None, json=None,
              gradescope=None):
    """Grade ``dirs`` (one copy or several: see :func:`grade_many`), print a table per copy,
    write the reports asked for, and return the exit status.

    Args:
        csv, json: paths of a CSV file (one row per submission) and a JSON file (every check).
        gradescope: Gradescope's ``results.json``: a file for one submission, a folder (one
            ``<name>/results.json`` each) for several.

    Returns:
        0 when every graded part of every copy passes all of its checks, else 1.

    Raises:
        ValueError: as :func:`grade_many` (the command line prints it as one line, status 2).
    """
    t0 = time.perf_counter()
    subs = grade_many(dirs, parts=parts, timeout=timeout, impl=impl)
    seconds = time.perf_counter() - t0
    for k, s in enumerate(subs):
        if k:
            print()
        print("\n".join(table(s, None if len(subs) > 1 else seconds)))
    if len(subs) > 1:
        n_ok = sum(s.passed for s in subs)
        print(f"\n{n_ok} of {len(subs)} submissions pass every part ({seconds:.1f} s)")
    if csv:
        write_csv(subs, csv)
    if json:
        write_json(subs, json, timeout=timeout, impl=impl or "unit checks only")
    if gradescope:
        write_gradescope(subs, gradescope)
    return 0 if all(s.passed for s in subs) else 1
