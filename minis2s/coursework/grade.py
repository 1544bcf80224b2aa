"""Grade copies: each part of each submission in its own isolated, time-limited process.

The grading process (this one) never imports a student's code. For each part it starts
``sys.executable -s -B -P`` in an empty temporary folder, with the ``PYTHON*`` variables of the
environment removed and ``PYTHONPATH=<copy>``; that child loads the instructor's checks and
oracle *by path* (this folder, under another package name: see :mod:`._child`), imports the
copy's ``minis2s``, verifies that it came from the copy, runs the part's checks and prints one
JSON line. A child that runs longer than ``timeout`` is killed and its part scores 0.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ._child import SENTINEL, selected
from .make import read_manifest
from .parts import check_parts

__all__ = ["CheckResult", "PartResult", "Submission", "grade", "grade_many", "check_copy",
           "IMPLS"]

#: ``impl`` values: None (unit checks only) or "reference" (also train the copy's own models on
#: the reference tier, i.e. on the student's ops).
IMPLS = (None, "reference")

_HERE = Path(__file__).resolve().parent
_BOOTSTRAP = (
    "import importlib, sys, types\n"
    "pkg = types.ModuleType('_minis2s_grader')\n"
    "pkg.__path__ = [sys.argv[1]]\n"
    "pkg.__package__ = '_minis2s_grader'\n"
    "sys.modules['_minis2s_grader'] = pkg\n"
    "child = importlib.import_module('_minis2s_grader._child')\n"
    "sys.exit(child.main(sys.argv[2], sys.argv[3], sys.argv[4]))\n"
)


@dataclass
class CheckResult:
    """One check of a part: its name, the points it earned out of ``max_score``, and why."""

    name: str
    score: float
    max_score: float
    detail: str = ""

    @property
    def passed(self):
        return self.score >= self.max_score - 1e-9


@dataclass
class PartResult:
    """The grade of one part."""

    part: str
    checks: list = field(default_factory=list)
    error: str | None = None  # the part could not be graded at all (timeout, crash, import)
    seconds: float = 0.0

    @property
    def n_total(self):
        return len(self.checks)

    @property
    def n_passed(self):
        return sum(c.passed for c in self.checks)

    @property
    def score(self):
        """The points earned (partial credit included)."""
        return round(sum(c.score for c in self.checks), 6)

    @property
    def max_score(self):
        return sum(c.max_score for c in self.checks)

    @property
    def fraction(self):
        return self.score / self.max_score if self.max_score else 0.0

    @property
    def passed(self):
        return self.error is None and self.n_total > 0 and self.n_passed == self.n_total

    @property
    def reason(self):
        """Why the part fails ("" when it passes): the error, or the first failed check's."""
        if self.error:
            return self.error
        failed = [c for c in self.checks if not c.passed]
        return failed[0].detail if failed else ""


@dataclass
class Submission:
    """The grades of one copy."""

    dir: str
    name: str
    parts: list = field(default_factory=list)

    @property
    def score(self):
        return round(sum(p.score for p in self.parts), 6)

    @property
    def max_score(self):
        return sum(p.max_score for p in self.parts)

    @property
    def passed(self):
        return all(p.passed for p in self.parts)

    @property
    def seconds(self):
        return sum(p.seconds for p in self.parts)


def check_copy(dir):
    """The resolved path of the copy ``dir``, or ValueError saying what is wrong with it."""
    d = Path(dir)
    if not d.exists():
        raise ValueError(f"dir {str(dir)!r} does not exist")
    if not d.is_dir():
        raise ValueError(f"dir {str(dir)!r} is not a directory")
    if not (d / "minis2s" / "__init__.py").is_file():
        raise ValueError(f"dir {str(dir)!r} is not a student copy: it has no "
                         "minis2s/__init__.py (make one with: minis2s assignment make OUT_DIR)")
    return d.resolve()


def _env(d, impl):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(d), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               MINIS2S_BACKEND="numpy", MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("MINIS2S_IMPL", None)
    if impl:
        env["MINIS2S_IMPL"] = impl
    return env


def _failed_part(part, checks, reason, seconds):
    return PartResult(part, [CheckResult(c.name, 0.0, c.points, reason) for c in checks], reason,
                      seconds)


def _kill(proc):
    """Stop a grading process and whatever it started (its process group, on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:  # it ended meanwhile
        pass
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a descendant outside the group holds the pipes
        pass


def _grade_part(d, part, timeout, impl):
    # -s: no user site-packages; -B: no bytecode written into the copy; -P (3.11+): no script
    # or cwd directory on sys.path. The scrubbed environment's PYTHONPATH=<copy> puts the
    # copy's minis2s first; the child still checks where minis2s came from.
    flags = ["-s", "-B"] + (["-P"] if sys.version_info >= (3, 11) else [])
    cmd = [sys.executable, *flags, "-c", _BOOTSTRAP, str(_HERE), str(d), part, impl or ""]
    checks = selected(part, impl)
    # The child prints its result after this nonce, which it reads from stdin before it
    # imports the copy: a line that the student's code prints cannot pass for the result.
    nonce = secrets.token_hex(16)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minis2s-grade-") as cwd:
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(d, impl), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=os.name == "posix")
        try:
            stdout, stderr = proc.communicate(nonce + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return _failed_part(part, checks, f"timed out after {timeout:g} s (the part's "
                                "process was stopped)", time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    head = f"{SENTINEL}{nonce} "
    lines = [ln for ln in stdout.splitlines() if ln.startswith(head)]
    if not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        reason = f"the grading process died (exit status {proc.returncode}): {tail}"[:300]
        return _failed_part(part, checks, reason, seconds)
    data = json.loads(lines[-1][len(head):])
    results = [CheckResult(c["name"], float(c["score"]), float(c["max_score"]),
                           c.get("detail", "")) for c in data["checks"]]
    return PartResult(part, results, data.get("error"), seconds)


def _check_options(timeout, impl):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be None or 'reference'; got {impl!r}")
    return float(timeout)


def _names(dirs):
    names, seen = [], {}
    for d in dirs:
        base = d.name or "copy"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def _manifest_parts(d):
    try:
        return check_parts((read_manifest(d) or {}).get("parts"))
    except (TypeError, ValueError):  # a broken manifest: grade every part
        return check_parts(None)


def grade_many(dirs, parts=None, timeout=300.0, impl=None, workers=2):
    """Grade several copies (student submissions), part by part.

    Args:
        dirs: the copies (folders holding ``minis2s/``), e.g. made by ``make``.
        parts: names from ``PARTS``; None: each copy's manifest's parts (every part when it has
            no manifest, as the reference checkout).
        timeout: seconds allowed to each part's process; a part that runs longer is stopped and
            scores 0, its checks reported as timed out.
        impl: None, or "reference" to add the checks that train the copy's own model on the
            reference tier (``minis2s.backend.use_impl("reference")``), i.e. on the student's
            ops; they take a few seconds each.
        workers: parts graded at the same time (processes).

    Returns:
        A list of :class:`Submission`, in the order of ``dirs``.

    Raises:
        ValueError: a dir that does not exist or holds no copy, unknown parts, a timeout that
            is not positive, or an unknown ``impl``.
    """
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    resolved = [check_copy(d) for d in dirs]
    if not resolved:
        raise ValueError("dirs must name at least one copy")
    timeout = _check_options(timeout, impl)
    chosen = None if parts is None else check_parts(parts)
    subs = []
    for d, raw, name in zip(resolved, dirs, _names(resolved)):
        own = chosen or _manifest_parts(d)
        subs.append((Submission(str(raw), name), d, own))
    jobs = [(sub, d, part) for sub, d, own in subs for part in own]
    n = max(1, min(len(jobs), os.cpu_count() or 1, int(workers)))
    with ThreadPoolExecutor(max_workers=n) as pool:
        done = list(pool.map(lambda job: _grade_part(job[1], job[2], timeout, impl), jobs))
    for (sub, _, _), result in zip(jobs, done):
        sub.parts.append(result)
    return [sub for sub, _, _ in subs]


def grade(dir, parts=None, timeout=300.0, impl=None):
    """Grade the one copy in ``dir`` (see :func:`grade_many`) -> a list of :class:`PartResult`,
    one per part, in the order of ``PARTS``."""
    return grade_many([dir], parts, timeout, impl)[0].parts
