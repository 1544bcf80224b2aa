"""The graded checks, one module per part, and the helpers they share.

A check is a function of no arguments that calls the student's functions by their public
names (``minis2s.functional.<module>.<name>``, imported when the check runs) and compares them
with the references of :mod:`minis2s.coursework.oracle`. It returns a short detail string
(full credit), returns :class:`Credit` (partial credit: some of its cases or gradients are
right), or raises :class:`Fail` (no credit) with the reason: which value or gradient is wrong,
its relative error, and the worst element.

Standard library, NumPy and this package only: the grading processes load these modules by
file path from the instructor's package, beside the student's ``minis2s``.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import oracle

__all__ = ["Check", "Credit", "Fail", "TOL", "VALUE_TOL", "load", "student", "close",
           "gradcheck", "learns", "cases", "dot", "rng", "model_learns", "run_one", "describe"]

TOL = 1e-6  #: float64 gradient checks: relative error below this passes (as in the test suite)
VALUE_TOL = 1e-9  #: forward values against the oracle: relative error below this passes


class Fail(Exception):
    """A check failed, for the reason in the message."""


class Credit(NamedTuple):
    """Partial credit: the ``fraction`` of the check earned, and why the rest was lost."""

    fraction: float
    detail: str


class Check(NamedTuple):
    """One graded check of a part."""

    name: str
    run: Callable[[], object]
    points: float = 1.0
    #: "reference": run only when grading with ``impl="reference"`` (it trains the copy's own
    #: model on the reference tier, so it also uses the copy's other parts).
    impl: str | None = None


def load(part):
    """The checks of ``part``: the ``CHECKS`` list of this package's module of that name."""
    return importlib.import_module(f"{__name__}.{part}").CHECKS


def student(name):
    """The student's module ``minis2s.<name>`` (the copy's, in a grading process)."""
    return importlib.import_module(f"minis2s.{name}" if name else "minis2s")


def rng(seed=0):
    return np.random.default_rng(seed)


def dot(out, dout):
    """Σ out · dout as a float: the scalar whose gradient is the backward of ``dout``."""
    return float(np.sum(np.asarray(out, dtype=np.float64) * dout))


def _at(name, ix):
    return f"{name}[{', '.join(map(str, ix))}]" if ix else name


def as64(label, a, shape):
    """``a`` as a float64 array of ``shape``, or :class:`Fail` saying what came instead."""
    if a is None:
        raise Fail(f"{label} is None")
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise Fail(f"{label} is not an array ({type(a).__name__}: {e})") from None
    if tuple(a.shape) != tuple(shape):
        raise Fail(f"{label} has shape {tuple(a.shape)}; expected {tuple(shape)}")
    return a


def close(label, got, want, tol=VALUE_TOL):
    """Fail unless ``got`` equals the reference ``want`` to the relative error ``tol``."""
    want = np.asarray(want, dtype=np.float64)
    got = as64(label, got, want.shape)
    err = oracle.rel_error(got, want)
    bad_nan = not np.array_equal(np.isfinite(got), np.isfinite(want))
    if bad_nan or not err <= tol:
        ix, g, w = oracle.worst(got, want)
        what = "is not finite" if bad_nan else f"differs from the reference: rel error {err:.1e}"
        where = f"[{', '.join(map(str, ix))}]" if ix else ""
        raise Fail(f"{label} {what} (worst{' at ' + where if where else ''}: yours {g:.6g}, "
                   f"expected {w:.6g})")
    return err


def gradcheck(label, loss, inputs, analytic, tol=TOL):
    """Compare analytic gradients with centred differences of ``loss()``, input by input.

    Args:
        label: the backward function, for the messages.
        loss: a function of no arguments that runs the forward on ``inputs`` (perturbed in
            place) and returns a float.
        inputs: name -> float64 array.
        analytic: name -> the gradient that the backward returned (computed before).

    Returns:
        A detail string when every gradient is right, or :class:`Credit` for the fraction that
        is right. Raises :class:`Fail` when none is.
    """
    worst_ok, failures = 0.0, []
    for name, x in inputs.items():
        what = f"d{name}"
        try:
            a = as64(what, analytic.get(name), x.shape)
        except Fail as e:
            failures.append(str(e))
            continue
        n = oracle.numerical_gradient(loss, x)
        err = oracle.rel_error(a, n)
        if err <= tol:
            worst_ok = max(worst_ok, err)
            continue
        ix, ga, gn = oracle.worst(a, n)
        failures.append(f"{what} rel error {err:.1e} (worst at {_at(what, ix)}: yours "
                        f"{ga:.6g}, numerical {gn:.6g})")
    if not failures:
        return f"max rel error {worst_ok:.1e}"
    reason = f"{label} " + "; ".join(failures)
    if len(failures) == len(inputs):
        raise Fail(reason)
    n_ok = len(inputs) - len(failures)
    return Credit(n_ok / len(inputs), f"{n_ok} of {len(inputs)} gradients right; {reason}")


def learns(label, losses, factor=0.5):
    """Fail unless the loss fell below ``factor`` times its first value."""
    first, last = losses[0], losses[-1]
    if not (np.isfinite(first) and np.isfinite(last)):
        raise Fail(f"{label}: the loss is not finite ({first:.3g} -> {last:.3g})")
    if not last < factor * first:
        raise Fail(f"{label}: the loss fell only from {first:.3g} to {last:.3g} in "
                   f"{len(losses) - 1} steps (needs < {factor:g}x)")
    return f"loss {first:.3g} -> {last:.3g} in {len(losses) - 1} steps"


def describe(e, root=None):
    """'Type: message' of an exception raised by the student's code, with where in the copy
    (relative to ``root``, by default the folder that holds the imported ``minis2s``)."""
    msg = str(e).replace("\n", " ").strip()
    if isinstance(e, Fail):
        return msg
    text = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    if root is None and getattr(sys.modules.get("minis2s"), "__file__", None):
        root = Path(sys.modules["minis2s"].__file__).resolve().parents[1]
    if root is not None and not isinstance(e, NotImplementedError):
        root = Path(root).resolve()
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if Path(f.filename).resolve().is_relative_to(root)]
        if frames:
            f = frames[-1]
            rel = Path(f.filename).resolve().relative_to(root).as_posix()
            text += f" (at {rel}:{f.lineno} in {f.name})"
    return text if len(text) <= 300 else text[:297] + "..."


def run_one(fn):
    """-> (fraction, detail) of a check or case function; an exception scores 0 and is
    described (:func:`describe`)."""
    try:
        out = fn()
    except Exception as e:
        return 0.0, describe(e)
    if isinstance(out, Credit):
        return max(0.0, min(1.0, float(out.fraction))), out.detail
    return 1.0, "" if out is None else str(out)


def cases(items):
    """Run several cases of one check, each worth the same share of it.

    Args:
        items: (label, function) pairs; each function is a check of its own.

    Returns:
        A detail string when every case passes, else :class:`Credit`. Raises :class:`Fail`
        when no case earns anything (an exception in a case counts as that case failing).
    """
    total, notes, ok, reasons = 0.0, [], [], set()
    for label, fn in items:
        fraction, detail = run_one(fn)
        total += fraction
        (ok if fraction == 1.0 else notes).append(f"{label}: {detail}" if detail else label)
        if fraction < 1.0:
            reasons.add(detail)
    if not notes:
        return "; ".join(ok)
    if total == 0:
        # every case failed: one reason shared by all (a TODO left, say) is given once
        raise Fail(reasons.pop() if len(reasons) == 1 and len(items) > 1 else "; ".join(notes))
    return Credit(total / len(items), "; ".join(notes))


def model_learns(model, steps=150, threshold=0.95, lr=0.02):
    """Train the copy's own ``model`` on the reference tier (so on the student's ops) for a
    tiny reverse task; pass when exact match on the training set reaches ``threshold``.

    Args:
        model: a function (backend-free) of (vocab_size) -> a model of the student's minis2s.
    """
    backend = student("backend")
    backend.use_impl("reference")
    r = rng(0)
    src, tgt = oracle.reverse_task(r, 32, n_symbols=5, min_len=1, max_len=4)
    want = [[int(t) for t in row[1:] if t not in (oracle.PAD, oracle.EOS)] for row in tgt]
    m = model(9)
    opt = oracle.Adam(m.params, lr)
    losses, acc = [], 0.0
    for step in range(1, steps + 1):
        losses.append(float(m.forward(src, tgt)))
        m.backward()
        opt.step({k: backend.to_numpy(v) for k, v in m.grads.items()})
        if step % 25 == 0 or step == steps:
            got = m.generate(src, max_len=6)
            acc = float(np.mean([list(map(int, g)) == w for g, w in zip(got, want)]))
            if acc >= threshold:
                return (f"{type(m).__name__} (reference tier) reversed {acc:.0%} of 32 "
                        f"sequences after {step} Adam steps (loss {losses[0]:.3g} -> "
                        f"{losses[-1]:.3g})")
    raise Fail(f"{type(m).__name__} (reference tier) reversed only {acc:.0%} of 32 sequences "
               f"after {steps} steps (needs {threshold:.0%}; loss {losses[0]:.3g} -> "
               f"{losses[-1]:.3g})")
