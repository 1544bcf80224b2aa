"""Gradient checking: compare hand-written backward passes with centred finite differences.

The centred difference of a scalar function f at element i of x is

    df/dx_i  ≈  (f(x + h e_i) − f(x − h e_i)) / (2h)

with error O(h²) from truncation plus O(ε f / h) from rounding (ε the machine epsilon). In
float64, for h between 1e-5 and 1e-4, both are around 1e-10 or below, so a correct backward pass
agrees to about 1e-8 relative (``check_model`` uses a fourth-order stencil: see there); in
float32 (ε ≈ 6e-8) the rounding term is about 1e-2, which is why every check here runs the model
in float64.

The relative error between an analytic gradient ``a`` and a numerical one ``n`` is

    rel_error(a, n) = max_i |a_i − n_i| / max(max_i |a_i|, max_i |n_i|)

scaled by the largest gradient element of the parameter, so a tiny element (say 1e-12, where
the numerical gradient is pure rounding noise) cannot blow the error up, while a wrong element of
ordinary size still shows. :func:`check_model` reports it per parameter, together with the element
that is worst, so a bug is located at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import backend

__all__ = [
    "numerical_gradient",
    "rel_error",
    "check_model",
    "check_function",
    "GradcheckReport",
    "ParamCheck",
]

DEFAULT_TOL = 1e-6


def _scalar(value, df):
    if df is None:
        out = backend.to_numpy(value)
        if out.size != 1:
            raise ValueError(
                f"f(x) returned an array of shape {out.shape}; pass df (the upstream gradient "
                "of the same shape) to check an array-valued function"
            )
        return float(out.reshape(()))
    return float(np.sum(backend.to_numpy(value).astype(np.float64) * backend.to_numpy(df)))


def numerical_gradient(f, x, h=1e-5, df=None, indices=None, stencil=2):
    """Centred finite-difference gradient of ``f`` with respect to the array ``x``.

    Args:
        f: a function called as ``f(x)``; it must read ``x`` (which is perturbed in place, one
            element at a time, and restored) and return a scalar, or an array when ``df`` is given.
        x: the array (NumPy or the active backend) to differentiate with respect to.
        h: the step.
        df: optional upstream gradient, same shape as ``f(x)``: the gradient of
            ``sum(f(x) * df)`` is returned, which checks a vector-Jacobian product.
        indices: optional iterable of multi-indices to evaluate; the others are left 0.
        stencil: 2 for the centred difference (f(x+h) − f(x−h)) / 2h, error O(h²); 4 for the
            fourth-order centred difference
            (−f(x+2h) + 8 f(x+h) − 8 f(x−h) + f(x−2h)) / 12h, error O(h⁴), at twice the cost.

    Returns:
        A float64 NumPy array of ``x.shape``.
    """
    if not backend.is_array(x):
        raise TypeError(f"x must be an array; got {type(x).__name__}")
    if h <= 0:
        raise ValueError(f"h must be > 0; got {h}")
    if stencil not in (2, 4):
        raise ValueError(f"stencil must be 2 or 4; got {stencil!r}")
    grad = np.zeros(x.shape, dtype=np.float64)
    if indices is None:
        indices = np.ndindex(*x.shape)
    for ix in indices:
        ix = tuple(int(i) for i in ix)
        old = x[ix].item()
        if stencil == 2:
            grad[ix] = (_at(f, x, ix, old + h, df) - _at(f, x, ix, old - h, df)) / (2 * h)
        else:
            near = _at(f, x, ix, old + h, df) - _at(f, x, ix, old - h, df)
            far = _at(f, x, ix, old + 2 * h, df) - _at(f, x, ix, old - 2 * h, df)
            grad[ix] = (8 * near - far) / (12 * h)
        x[ix] = old
    return grad


def _at(f, x, ix, value, df):
    """f(x) with x[ix] set to value."""
    x[ix] = value
    return _scalar(f(x), df)


def rel_error(a, b):
    """Relative error ``max|a − b| / max(max|a|, max|b|)`` of two arrays (0 when both are 0)."""
    a = backend.to_numpy(a).astype(np.float64)
    b = backend.to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, a {a.shape} and b {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.abs(a).max(), np.abs(b).max())
    if scale == 0:
        return 0.0
    return float(np.abs(a - b).max() / scale)


@dataclass
class ParamCheck:
    """The result of checking one parameter (or input)."""

    name: str
    shape: tuple
    rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    checked: int
    passed: bool


@dataclass
class GradcheckReport:
    """Per-parameter gradient-check results. ``str(report)`` is a readable table."""

    rows: list = field(default_factory=list)
    tol: float = DEFAULT_TOL
    dtype: str = "float64"

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def max_error(self) -> float:
        return max((r.rel_error for r in self.rows), default=0.0)

    @property
    def worst(self):
        """The row with the largest relative error (None if nothing was checked)."""
        return max(self.rows, key=lambda r: r.rel_error, default=None)

    @property
    def failed(self) -> list:
        return [r for r in self.rows if not r.passed]

    def __getitem__(self, name) -> ParamCheck:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def __str__(self) -> str:
        w = max([len("parameter")] + [len(r.name) for r in self.rows])
        head = (
            f"{'parameter':<{w}}  {'shape':<14} {'checked':>7}  {'rel error':>9}  "
            f"{'worst element':<14} {'analytic':>11} {'numeric':>11}  ok"
        )
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(
                f"{r.name:<{w}}  {str(tuple(r.shape)):<14} {r.checked:>7}  {r.rel_error:9.2e}  "
                f"{str(tuple(r.worst_index)):<14} {r.analytic:11.4e} {r.numeric:11.4e}  "
                f"{'ok' if r.passed else 'FAIL'}"
            )
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.failed)} of {len(self.rows)})"
        lines.append(
            f"{verdict}: max relative error {self.max_error:.2e} (tolerance {self.tol:.0e}, "
            f"{self.dtype})"
        )
        if not self.passed:
            r = self.worst
            lines.append(
                f"worst: {r.name}{list(r.worst_index)}: analytic {r.analytic:.6e} vs numeric "
                f"{r.numeric:.6e}"
            )
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows the table
        p.text(str(self))


def _sample_indices(shape, max_elements, rng):
    size = int(np.prod(shape))
    if max_elements is None or size <= max_elements:
        return list(np.ndindex(*shape))
    flat = rng.choice(size, size=max_elements, replace=False)
    return [np.unravel_index(i, shape) for i in np.sort(flat)]


def _row(name, analytic, numeric, indices, tol):
    analytic = np.asarray(analytic, dtype=np.float64)
    if indices is not None and len(indices) < analytic.size:
        mask = np.zeros(analytic.shape, dtype=bool)
        for ix in indices:
            mask[ix] = True
        analytic = np.where(mask, analytic, 0.0)
    checked = analytic.size if indices is None else len(indices)
    err = rel_error(analytic, numeric)
    worst = np.unravel_index(int(np.argmax(np.abs(analytic - numeric))), analytic.shape)
    return ParamCheck(
        name=name,
        shape=tuple(analytic.shape),
        rel_error=err,
        worst_index=tuple(int(i) for i in worst),
        analytic=float(analytic[worst]) if analytic.size else 0.0,
        numeric=float(numeric[worst]) if analytic.size else 0.0,
        checked=checked,
        passed=err < tol,
    )


def check_model(model, src, tgt, params=None, h=3e-5, tol=DEFAULT_TOL, max_elements=None, seed=0,
                stencil=4):
    """Check every parameter gradient of ``model`` on one batch against finite differences.

    Args:
        model: a minis2s model (``forward(src, tgt) -> float``, ``backward()``, ``params``,
            ``grads``). Build it with ``dtype="float64"``; float32 is allowed but its rounding
            noise (about 1e-2 relative) swamps the tolerance.
        src, tgt: one batch, as for ``model.forward``.
        params: names to check (default: all of ``model.params``).
        h: finite-difference step. stencil: 4 (default) for the fourth-order centred
            difference, 2 for the classic one (see :func:`numerical_gradient`). The defaults keep
            the errors of a float64 check far below the tolerance. Rounding, ≈ 1e-15 / h in
            absolute terms, wants a large h: at h = 1e-5 it already reaches 1e-6 relative for a
            parameter whose whole gradient is ~1e-4, as attention weights of a fresh model often
            are. Truncation wants a small one: O(h²) for the classic stencil gives 1e-5 relative
            at h = 1e-4 for a sharply curved cosine score, while O(h⁴) is negligible. And a kink
            (the min of the coverage loss) must not lie within ±2h of the point, or the
            difference straddles it. h = 3e-5 with the fourth-order stencil meets all three.
        tol: the relative error below which a parameter passes.
        max_elements: check at most this many randomly chosen elements per parameter.
        seed: seeds the choice of elements.

    Returns:
        A :class:`GradcheckReport`; ``print(report)`` shows the per-parameter table.
    """
    names = list(model.params) if params is None else list(params)
    unknown = [n for n in names if n not in model.params]
    if unknown:
        raise ValueError(f"params: unknown parameter names {unknown}; known: {list(model.params)}")
    model.forward(src, tgt)
    model.backward()
    analytic = {n: backend.to_numpy(model.grads[n]).astype(np.float64) for n in names}
    rng = np.random.default_rng(seed)
    dtype = str(next(iter(model.params.values())).dtype) if model.params else "float64"
    report = GradcheckReport(tol=tol, dtype=dtype)
    for n in names:
        p = model.params[n]
        indices = _sample_indices(p.shape, max_elements, rng)
        numeric = numerical_gradient(lambda _: model.forward(src, tgt), p, h=h, indices=indices,
                                     stencil=stencil)
        sampled = None if len(indices) == p.size else indices
        report.rows.append(_row(n, analytic[n], numeric, sampled, tol))
    return report


def check_function(forward, backward, inputs, wrt=None, dout=None, h=1e-5, tol=DEFAULT_TOL, seed=0):
    """Check a functional forward/backward pair (the CS231n style) on the given inputs.

    Args:
        forward: called as ``forward(**inputs)``; returns ``out``, or ``(out, cache)``, or
            ``(out_1, ..., out_k, cache)`` such as ``(out, h_n, cache)``: a last element that is
            not an array is taken as the cache. ``out`` may be a 0-d array or NumPy scalar.
        backward: called as ``backward(dout, cache)``; returns a dict name -> gradient for
            (at least) the names in ``wrt``.
        inputs: dict name -> array (float64 recommended); the arrays are perturbed in place.
        wrt: names of the inputs to check (default: every float array in ``inputs``).
        dout: the upstream gradient(s), like ``out``; random normal by default.

    Returns:
        A :class:`GradcheckReport` with one row per checked input.
    """
    xp = backend.xp

    def run(**kw):
        """Split a forward's result into (out, cache): the cache is the last element of a tuple
        when that element is not an array (a NamedTuple or None); out may be several arrays."""
        res = forward(**kw)
        if isinstance(res, tuple) and len(res) >= 2 and not backend.is_array(res[-1]):
            out = res[:-1]
            return (out[0] if len(out) == 1 else out), res[-1]
        return res, None

    out, cache = run(**inputs)
    outs = out if isinstance(out, tuple) else (out,)
    rng = np.random.default_rng(seed)
    if dout is None:
        douts = tuple(
            None if o is None
            else xp.asarray(rng.standard_normal(xp.shape(o)), dtype=xp.asarray(o).dtype)
            for o in outs
        )
    else:  # (on the active backend: the caller may give NumPy arrays under CuPy)
        douts = tuple(None if d is None else backend.asarray(d)
                      for d in (dout if isinstance(dout, tuple) else (dout,)))
    grads = backward(douts if isinstance(out, tuple) else douts[0], cache)
    if wrt is None:
        wrt = [k for k, v in inputs.items() if backend.is_array(v) and v.dtype.kind == "f"]

    def objective(_):
        o, _c = run(**inputs)
        o = o if isinstance(o, tuple) else (o,)
        return sum(  # (a forward may give its outputs on the host, as NumPy arrays)
            float(xp.sum(backend.asarray(oi) * di))
            for oi, di in zip(o, douts) if oi is not None and di is not None
        )

    report = GradcheckReport(tol=tol, dtype=str(inputs[wrt[0]].dtype) if wrt else "float64")
    for name in wrt:
        if name not in grads:
            raise KeyError(f"backward returned no gradient for {name!r}; it returned {list(grads)}")
        numeric = numerical_gradient(objective, inputs[name], h=h)
        report.rows.append(_row(name, backend.to_numpy(grads[name]), numeric, None, tol))
    return report
