"""Compiled CPU kernels for the GRU time loops of the fast tier (optional: numba).

On NumPy each step of :func:`minis2s.fast.gru.gru_forward`'s time loop runs its gate arithmetic
as about ten ufunc calls, each a pass over (b, H) arrays, all on one thread. With numba installed
(``pip install "minis2s[numba]"``), the step's arithmetic is instead one compiled loop over the
elements, written out below exactly as the cell's equations read for one element: one pass over
memory, vectorised by the compiler. The products stay with NumPy's BLAS. docs/benchmarks.md
("Compiled GRU steps") has the measurements behind this module.

- **Optional.** Without numba nothing changes: the in-place NumPy path of minis2s.fast.gru runs.
  With it, the kernels are used by default on the NumPy backend; ``MINIS2S_NUMBA=0`` or
  :func:`use` (False) switches them off (``use(None)``: back to the default).
- **Equal to the reference.** tests/test_tiers_gru.py runs the fast tier with these kernels
  against the textbook GRU in float64 (to 1e-12) and in float32.
- **tanh in float32.** numba's ``tanh`` is a scalar libm call that the compiler cannot
  vectorise, which would make the kernel slower than NumPy's SIMD tanh. In float32 the kernels
  use :func:`tanh_f32`: Lambert's continued fraction for tanh cut after 12 terms, a ratio of two
  polynomials in x², clamped to |x| ≤ 9 (where float32's tanh is within one unit in the last
  place of ±1). Its error is at most 7 units in the last place of float32 on [−12, 12]
  (tests/test_compiled_kernels.py measures it). Float64 keeps the exact tanh.

Every array a kernel takes is C-contiguous: the time loops pass row blocks ``buf[t, :b]`` of
time-major buffers, whose rows are contiguous.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from .. import backend

__all__ = ["available", "enabled", "use", "kernels", "tanh_f32", "TANH_F32_CLAMP"]

#: use(True/False/None): None = on when numba is importable and the backend is NumPy.
_setting = None


@functools.cache
def _numba():
    """The numba module, imported on first use (it takes half a second), or None."""
    try:
        import numba  # the one import of numba in minis2s
    except ImportError:  # the optional extra is not installed
        return None
    return numba


def available() -> bool:
    """True when numba can be imported (the check imports it)."""
    return _numba() is not None


def use(flag):
    """Switch the compiled kernels on (True), off (False), or back to the default (None: on
    when numba is installed and the backend is NumPy). True without numba raises ImportError."""
    global _setting
    if flag is not None and not isinstance(flag, bool):
        raise TypeError(f"use takes True, False or None; got {flag!r}")
    if flag and not available():
        raise ImportError("the compiled GRU kernels need numba, which is not installed: "
                          'pip install "minis2s[numba]" (or numba), or leave them off')
    _setting = flag


def enabled() -> bool:
    """True when the fast tier's GRU time loops call these kernels (NumPy backend only)."""
    if backend.name != "numpy" or _setting is False:
        return False
    return available()


def _use_from_environment(value):
    if value not in ("0", "1"):
        raise backend.BackendError(f"MINIS2S_NUMBA must be 0 or 1; got {value!r}")
    try:
        use(value == "1")
    except ImportError as error:
        raise backend.BackendError(str(error)) from None


backend._from_environment("MINIS2S_NUMBA", _use_from_environment)


# --------------------------------------------------------------------------------------------
# tanh in float32, vectorisable
# --------------------------------------------------------------------------------------------
def _lambert_polynomials(terms=12):
    """tanh x = x / (1 + x²/(3 + x²/(5 + ...))) cut after ``terms`` terms, as x·P(x²)/Q(x²):
    the coefficients of P and Q (lowest degree first), both scaled so that P(0) = Q(0) = 1."""
    num, den = np.polynomial.Polynomial([2 * terms + 1]), np.polynomial.Polynomial([1])
    for k in range(terms - 1, -1, -1):  # the tail (2k + 1) + x²/tail, as num/den
        num, den = (2 * k + 1) * num + np.polynomial.Polynomial([0, 1]) * den, num
    scale = num.coef[0]
    return tuple(den.coef / scale), tuple(num.coef / scale)


_P, _Q = _lambert_polynomials()
#: |x| beyond this gives tanh(±TANH_F32_CLAMP), within 1 ulp of ±1 in float32.
TANH_F32_CLAMP = 9.0


def _tanh_f32_python(x):
    """The float32 tanh of the kernels, on a float32 scalar or array (plain NumPy; numba
    compiles the same function). Horner's rule in float32 throughout."""
    c = np.float32(TANH_F32_CLAMP)
    x = min(max(x, -c), c) if np.ndim(x) == 0 else np.clip(x, -c, c)
    y = x * x
    p = np.float32(_P[-1])
    for a in _P[-2::-1]:
        p = p * y + np.float32(a)
    q = np.float32(_Q[-1])
    for a in _Q[-2::-1]:
        q = q * y + np.float32(a)
    return x * p / q


def tanh_f32(x):
    """tanh of a float32 array as the float32 kernels compute it (for tests and plots)."""
    return _tanh_f32_python(np.asarray(x, dtype=np.float32))


# --------------------------------------------------------------------------------------------
# The kernels
# --------------------------------------------------------------------------------------------
def _compile_tanh_f32():
    p, q = tuple(np.float32(a) for a in _P), tuple(np.float32(a) for a in _Q)
    c = np.float32(TANH_F32_CLAMP)
    p0, p1, p2, p3, p4, p5, p6 = p
    q0, q1, q2, q3, q4, q5, q6 = q

    @_numba().njit(inline="always", error_model="numpy")
    def tanh(x):  # x·P(x²)/Q(x²) on the clamped x, Horner's rule
        x = min(max(x, -c), c)
        y = x * x
        num = ((((((p6 * y + p5) * y + p4) * y + p3) * y + p2) * y + p1) * y + p0)
        den = ((((((q6 * y + q5) * y + q4) * y + q3) * y + q2) * y + q1) * y + q0)
        return x * num / den

    return tanh


class Kernels(NamedTuple):
    """The compiled step kernels of one float type (see :func:`kernels`)."""

    forward: object
    backward: object


@functools.cache
def kernels(dtype) -> Kernels:
    """The step kernels for arrays of ``dtype`` (float32 or float64), compiled on first use.

    - ``forward(gi, gh, b_hn, h_prev, rz, n, hn, r_hn, z_diff, h)``: one forward step of
      :func:`minis2s.fast.gru._direction_forward` for the b running rows. Inputs gi, gh (b, 3H)
      (the step's input and recurrent projections, the r and z blocks halved so that
      σ(a) = 0.5 + 0.5·tanh(a/2)), b_hn (H,), h_prev (b, H); outputs rz (b, 2H) = [r | z] and
      n, hn, r_hn = r ⊙ hn, z_diff = z ⊙ (h_prev − n), h (b, H).
    - ``backward(g, rz, n, hn, r_hn, z_diff, dh_z, G)``: one step of
      :func:`minis2s.fast.gru._direction_backward`. Inputs g = dh_t (b, H) and the forward's
      saved values; outputs dh_z = g ⊙ z (b, H) and G (b, 4H) = [da_n | da_r | da_z | dhn].
    """
    numba = _numba()
    if numba is None:
        raise ImportError('the compiled GRU kernels need numba: pip install "minis2s[numba]"')
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        tanh, half, one = _compile_tanh_f32(), np.float32(0.5), np.float32(1.0)
    elif dtype == np.float64:
        tanh, half, one = math.tanh, 0.5, 1.0
    else:
        raise TypeError(f"compiled kernels exist for float32 and float64; got {dtype}")
    jit = numba.njit(nogil=True, error_model="numpy")

    @jit
    def forward(gi, gh, b_hn, h_prev, rz, n, hn, r_hn, z_diff, h):
        b, H = h.shape
        for i in range(b):
            for j in range(H):
                r = half + half * tanh(gi[i, j] + gh[i, j])  # r = σ(W_ir x + W_hr h + b_r)
                z = half + half * tanh(gi[i, H + j] + gh[i, H + j])  # z, likewise
                hn_ = gh[i, 2 * H + j] + b_hn[j]  # W_hn h_prev + b_hn
                r_hn_ = r * hn_
                n_ = tanh(gi[i, 2 * H + j] + r_hn_)  # n = tanh(W_in x + b_in + r ⊙ hn)
                z_diff_ = z * (h_prev[i, j] - n_)
                rz[i, j], rz[i, H + j] = r, z
                hn[i, j], r_hn[i, j], n[i, j], z_diff[i, j] = hn_, r_hn_, n_, z_diff_
                h[i, j] = n_ + z_diff_  # h = (1 − z) ⊙ n + z ⊙ h_prev

    @jit
    def backward(g, rz, n, hn, r_hn, z_diff, dh_z, G):
        b, H = g.shape
        for i in range(b):
            for j in range(H):
                r, z, g_ = rz[i, j], rz[i, H + j], g[i, j]
                gz = g_ * z  # the direct part of dh_prev
                g_omz = g_ - gz  # dh ⊙ (1 − z)
                da_n = g_omz * (one - n[i, j] * n[i, j])
                dhn = da_n * r
                dh_z[i, j] = gz
                G[i, j] = da_n
                G[i, H + j] = dhn * (hn[i, j] - r_hn[i, j])  # da_r = dhn ⊙ hn ⊙ (1 − r)
                G[i, 2 * H + j] = z_diff[i, j] * g_omz  # da_z = dh ⊙ (h_prev − n) ⊙ z(1 − z)
                G[i, 3 * H + j] = dhn

    return Kernels(forward, backward)
