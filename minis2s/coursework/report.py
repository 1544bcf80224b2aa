"""Grade reports: the printed table, CSV and JSON files, and Gradescope's ``results.json``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..files import atomic_write
from .parts import PARTS

__all__ = ["table", "to_json", "write_csv", "write_json", "gradescope", "write_gradescope"]


def _pts(x):
    return f"{x:.4g}"


def table(sub, seconds=None):
    """The lines of the score table of one :class:`~.grade.Submission`, with the reason of
    every check that lost points."""
    parts = sub.parts
    width = max(len("total"), *(len(p.part) for p in parts)) if parts else len("total")
    lines = [f"grading {sub.dir}", f"{'part':<{width}}  checks  points  result"]
    for p in parts:
        pts = f"{_pts(p.score)}/{_pts(p.max_score)}"
        lines.append(f"{p.part:<{width}}  {f'{p.n_passed}/{p.n_total}':>6}  {pts:>6}  "
                     f"{'pass' if p.passed else 'FAIL'}")
        if p.error:
            lines.append(f"    {p.error}")
        else:
            for c in p.checks:
                if not c.passed:
                    lines.append(f"    {c.name} ({_pts(c.score)}/{_pts(c.max_score)}): "
                                 f"{c.detail}")
    n_ok = sum(p.passed for p in parts)
    frac = sub.score / sub.max_score if sub.max_score else 0.0
    took = f", {seconds:.1f} s" if seconds is not None else ""
    lines.append(f"{'total':<{width}}  {'':>6}  {f'{_pts(sub.score)}/{_pts(sub.max_score)}':>6}  "
                 f"{frac:.0%}, {n_ok} of {len(parts)} parts pass{took}")
    return lines


def to_json(subs, **about):
    """Every submission, part and check as one JSON-ready dict (``about``: extra top keys)."""
    return {
        "tool": "minis2s assignment grade", **about,
        "submissions": [{
            "submission": s.dir, "name": s.name, "score": s.score, "max_score": s.max_score,
            "passed": s.passed,
            "parts": [{
                "part": p.part, "score": p.score, "max_score": p.max_score, "passed": p.passed,
                "error": p.error, "seconds": round(p.seconds, 3),
                "checks": [{"name": c.name, "score": c.score, "max_score": c.max_score,
                            "passed": c.passed, "output": c.detail} for c in p.checks],
            } for p in s.parts],
        } for s in subs],
    }


def write_json(subs, path, **about):
    atomic_write(path, json.dumps(to_json(subs, **about), indent=2) + "\n")


def write_csv(subs, path):
    """One row per submission: its points, each part's points, and why points were lost."""
    graded = [p for p in PARTS if any(q.part == p for s in subs for q in s.parts)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", "name", "score", "max_score", "percent", *graded, "failed"])
    for s in subs:
        by_part = {p.part: p for p in s.parts}
        failed = []
        for p in s.parts:
            if p.error:
                failed.append(f"{p.part}: {p.error}")
            else:
                failed += [f"{p.part}/{c.name}: {c.detail}" for c in p.checks if not c.passed]
        pct = 100 * s.score / s.max_score if s.max_score else 0.0
        w.writerow([s.dir, s.name, _pts(s.score), _pts(s.max_score), f"{pct:.1f}",
                    *(_pts(by_part[p].score) if p in by_part else "" for p in graded),
                    " | ".join(failed)])
    atomic_write(path, buf.getvalue())


def gradescope(sub):
    """Gradescope's autograder ``results.json`` for one submission: one test per check, with
    its points, ``max_score``, status and the reason as ``output``."""
    tests = []
    for p in sub.parts:
        for c in p.checks:
            tests.append({"name": f"{p.part}: {c.name}", "score": c.score,
                          "max_score": c.max_score,
                          "status": "passed" if c.passed else "failed",
                          "output": c.detail or ("passed" if c.passed else "failed")})
    n_ok = sum(p.passed for p in sub.parts)
    return {"score": sub.score, "execution_time": round(sub.seconds, 1),
            "output": f"minis2s assignment grade: {n_ok} of {len(sub.parts)} parts pass",
            "tests": tests}


def write_gradescope(subs, path):
    """Write ``results.json`` files: at ``path`` for one submission; for several, ``path`` is
    a folder that gets ``<name>/results.json`` per submission. Returns the paths written."""
    path = Path(path)
    if len(subs) == 1:
        targets = [path]
    else:
        if path.is_file():
            raise ValueError(f"gradescope path {str(path)!r} is a file; with several "
                             "submissions it names a folder (one <name>/results.json each)")
        targets = [path / s.name / "results.json" for s in subs]
    for s, t in zip(subs, targets):
        atomic_write(t, json.dumps(gradescope(s), indent=2) + "\n")
    return targets
