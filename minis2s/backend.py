"""The array backend: NumPy on the CPU, or CuPy on an NVIDIA GPU.

This is the only module of minis2s that imports CuPy. All model math looks the active array module
up at call time through ``backend.xp``::

    from minis2s import backend
    def f(x):
        xp = backend.xp          # numpy or cupy, whichever is active now
        return xp.tanh(x)

Never cache ``xp`` at import time: ``use()`` swaps it. The environment variable
``MINIS2S_BACKEND`` (``numpy`` or ``cupy``) picks the backend when minis2s is imported.
"""

from __future__ import annotations

import functools
import keyword
import os
import textwrap

import numpy

__all__ = [
    "BackendError",
    "use",
    "xp",
    "name",
    "to_numpy",
    "asarray",
    "scatter_add",
    "resolve_dtype",
    "is_array",
    "ElementwiseKernel",
    "fused",
    "use_fused",
    "device_inputs",
    "IMPLS",
    "use_impl",
    "impl",
]

BACKENDS = ("numpy", "cupy")


class BackendError(RuntimeError):
    """The requested array backend is unknown or cannot run on this machine."""


#: The active array module (``numpy`` or ``cupy``). Read it at call time.
xp = numpy
#: The name of the active backend: ``"numpy"`` or ``"cupy"``.
name = "numpy"


def _load_cupy():
    try:
        import cupy  # the one import of cupy in minis2s
    except ImportError as e:
        raise BackendError(
            "backend 'cupy' needs CuPy, which is not installed (import failed: "
            f"{e}). Install the build for your CUDA version, e.g. "
            "from a minis2s checkout `pip install \".[gpu]\"` (cupy-cuda12x), or use backend "
            "'numpy'."
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken
        raise BackendError(
            f"backend 'cupy': CuPy {cupy.__version__} is installed but no CUDA device could be "
            f"opened ({type(e).__name__}: {e}). Check the NVIDIA driver with `nvidia-smi`, "
            "or use backend 'numpy'."
        ) from None
    if count < 1:
        raise BackendError(
            f"backend 'cupy': CuPy {cupy.__version__} is installed but it sees 0 GPUs. "
            "Check CUDA_VISIBLE_DEVICES and `nvidia-smi`, or use backend 'numpy'."
        )
    return cupy


def use(backend_name: str):
    """Switch the active backend to ``"numpy"`` or ``"cupy"`` and return its array module.

    Raises :class:`BackendError` for an unknown name, a missing CuPy, or no visible GPU; the
    active backend is then left unchanged.
    """
    global xp, name
    if not isinstance(backend_name, str):
        raise TypeError(
            f"backend name must be a str, one of {BACKENDS}; got {type(backend_name).__name__}"
        )
    key = backend_name.strip().lower()
    if key == "numpy":
        module = numpy
    elif key == "cupy":
        module = _load_cupy()
    else:
        raise BackendError(
            f"unknown backend {backend_name!r}: expected one of {BACKENDS} "
            "(set by minis2s.backend.use() or the MINIS2S_BACKEND environment variable)"
        )
    xp, name = module, key
    return module


def is_array(a) -> bool:
    """True if ``a`` is an array of NumPy or of the active backend."""
    return isinstance(a, numpy.ndarray) or (name != "numpy" and isinstance(a, xp.ndarray))


def to_numpy(a):
    """Return ``a`` as a NumPy array on the host (a copy from the GPU under CuPy)."""
    if name == "cupy" and isinstance(a, xp.ndarray):
        return xp.asnumpy(a)
    return numpy.asarray(a)


def asarray(a, dtype=None):
    """Return ``a`` as an array of the active backend (copied to the GPU under CuPy)."""
    return xp.asarray(a, dtype=dtype)


def scatter_add(target, indices, values):
    """In place: ``target[indices[i]] += values[i]``, adding up repeated indices.

    ``indices`` indexes the first axis of ``target`` (any shape; ``values`` has shape
    ``indices.shape + target.shape[1:]``). This is the backward of a gather such as an
    embedding lookup. On NumPy a sort-free ``bincount`` per column is used for 2-D targets,
    which is much faster than ``numpy.add.at``; on CuPy, ``cupyx.scatter_add`` (atomic adds).
    """
    if name == "cupy":
        import cupyx  # part of CuPy; only reached when CuPy is active

        cupyx.scatter_add(target, indices, values)
        return target
    idx = numpy.asarray(indices).reshape(-1)
    vals = values.reshape(idx.shape[0], -1)
    flat = target.reshape(target.shape[0], -1)
    if idx.shape[0] == 0:
        return target
    # Sort the indices, then sum each run of equal indices with one ``add.reduceat``:
    # O(N log N) and vectorised, where ``numpy.add.at`` loops element by element.
    order = numpy.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    starts = numpy.flatnonzero(numpy.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
    flat[sorted_idx[starts]] += numpy.add.reduceat(vals[order], starts, axis=0)
    return target


# --------------------------------------------------------------------------------------------
# Fused elementwise kernels
# --------------------------------------------------------------------------------------------
#: Whether the fast paths call fused :class:`ElementwiseKernel` s (None: only on CuPy).
_fused_setting = None


def fused() -> bool:
    """True when the fast paths (the GRU time loops) run their elementwise math as one
    :class:`ElementwiseKernel` per step instead of a sequence of in-place array operations.

    By default only on CuPy, where every array operation is a kernel launch and fusing them
    matters. On NumPy the kernels run their text as Python (slower than the in-place path);
    tests switch them on there with :func:`use_fused` or ``MINIS2S_FUSED=1`` to check them on a
    machine with no GPU.
    """
    return (name == "cupy") if _fused_setting is None else _fused_setting


def use_fused(flag):
    """Switch the fused kernels on (True), off (False), or back to the default (None)."""
    global _fused_setting
    if flag is not None and not isinstance(flag, bool):
        raise TypeError(f"use_fused takes True, False or None; got {flag!r}")
    _fused_setting = flag


#: Names that a ``cupy.ElementwiseKernel`` reserves for itself (with any name starting with
#: ``_``), C keywords an argument might plausibly take, and the functions a body may call.
_RESERVED = frozenset({"i", "n", "T", "tanh", "exp", "int", "float", "double", "char", "long",
                       "short", "auto", "const", "register", "signed", "unsigned", "void",
                       "volatile", "switch", "case", "default", "do", "goto", "sizeof",
                       "static", "struct", "typedef", "union", "extern", "enum"})


class ElementwiseKernel:
    """An elementwise kernel written once, in the common subset of C and Python.

    ``body`` is a sequence of assignments ``name = expression;`` using the input and output
    names, + − * /, parentheses, float literals and ``tanh``/``exp``. It is at the same time
    CUDA C (the operation of a ``cupy.ElementwiseKernel`` whose outputs are references, so an
    output may be written and then read back as a temporary) and Python (statements separated
    by semicolons). Under CuPy it compiles, once, into one ``cupy.ElementwiseKernel``: one
    launch and one pass over memory for the whole body. Under NumPy the same text runs as
    Python on whole arrays, and the outputs are copied into the given arrays; that is slower
    than hand-written in-place code, and it exists so that the text the GPU runs is tested on
    any machine.

    Args:
        name: the kernel's name (a C identifier).
        inputs: the input names, in call order. outputs: the output names, in call order.
            CuPy reserves ``i``, ``n`` and names starting with ``_``; they are refused here.
        body: the operation, as above. All arrays share one float type ``T``; inputs broadcast
            against the outputs' shape as in NumPy.

    Call it as ``kernel(*input_arrays, *output_arrays)``: the outputs are written in place (any
    strides, e.g. slices of bigger buffers).
    """

    def __init__(self, name, inputs, outputs, body):
        body = textwrap.dedent(body).strip()
        for arg in (name, *inputs, *outputs):
            if (not isinstance(arg, str) or not arg.isidentifier() or arg.startswith("_")
                    or arg in _RESERVED or keyword.iskeyword(arg)):
                raise ValueError(f"kernel {name!r}: {arg!r} cannot name a kernel or an argument "
                                 "(a C identifier not starting with '_', and none of CuPy's "
                                 f"reserved names {sorted(_RESERVED)} or a C/Python keyword)")
        if len({*inputs, *outputs}) != len(inputs) + len(outputs):
            raise ValueError(f"kernel {name!r}: an argument name is used twice")
        self.name, self.inputs, self.outputs, self.body = name, tuple(inputs), tuple(outputs), body
        self._code = compile(body, f"<kernel {name}>", "exec")  # a syntax error shows up here
        self._cupy_kernel = None

    def __call__(self, *arrays):
        n_in = len(self.inputs)
        if len(arrays) != n_in + len(self.outputs):
            raise TypeError(f"kernel {self.name} takes {n_in} inputs {self.inputs} and "
                            f"{len(self.outputs)} outputs {self.outputs}; got {len(arrays)} "
                            f"arrays")
        if name == "cupy":
            if self._cupy_kernel is None:
                self._cupy_kernel = xp.ElementwiseKernel(
                    ", ".join(f"T {a}" for a in self.inputs),
                    ", ".join(f"T {a}" for a in self.outputs), self.body, self.name)
            self._cupy_kernel(*arrays)
            return arrays[n_in:]
        values = dict(zip(self.inputs, arrays[:n_in]))
        exec(self._code, {"__builtins__": {}, "tanh": numpy.tanh, "exp": numpy.exp}, values)
        for out_name, out in zip(self.outputs, arrays[n_in:]):
            out[...] = values[out_name]
        return arrays[n_in:]


def _to_device(v):
    if isinstance(v, numpy.ndarray):
        return xp.asarray(v)
    if isinstance(v, dict) and any(isinstance(a, numpy.ndarray) for a in v.values()):
        return {k: _to_device(a) for k, a in v.items()}
    if type(v) in (list, tuple) and any(isinstance(a, numpy.ndarray) for a in v):
        return type(v)(_to_device(a) for a in v)  # such as dropout_masks
    return v


def device_inputs(fn):
    """Decorator of the public math functions and layer methods: on CuPy, NumPy arrays among
    the arguments (also as values of a dict argument, such as ``params``, or as items of a list
    or tuple argument, such as ``dropout_masks``) are copied to the GPU
    first, so that a host array never meets a device array inside, as models do with their ids.
    The results are arrays of the active backend. On NumPy nothing changes.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if name == "numpy":
            return fn(*args, **kwargs)
        return fn(*map(_to_device, args), **{k: _to_device(v) for k, v in kwargs.items()})

    return wrapper


# --------------------------------------------------------------------------------------------
# The two tiers: the textbook code ("reference") and the code tested equal to it ("fast")
# --------------------------------------------------------------------------------------------
IMPLS = ("fast", "reference")


def _default_impl() -> str:
    """``"reference"`` inside a student copy made by ``minis2s assignment make`` (its root holds
    the coursework manifest), so that the copy's models, CLI and gradient checks run the code
    the student writes, not the never-blanked fast tier; ``"fast"`` everywhere else."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    copy = os.path.exists(os.path.join(root, ".minis2s-assignment.json"))
    return "reference" if copy else "fast"


#: The active tier. Read it at call time through :func:`impl`.
_impl = _default_impl()


def use_impl(impl_name: str) -> str:
    """Choose the tier that every layer and model computes with, and return its name.

    - ``"reference"``: the textbook code of ``minis2s.functional`` (a GRU sequence is a loop
      over the cell), the code that the derivations, the notebooks and the coursework show.
    - ``"fast"`` (the default): ``minis2s.fast``, code that a float64 test proves equal to the
      reference (sorted batches, time-major buffers, in-place arithmetic, fused GPU kernels).
      Inside a student copy the default is ``"reference"`` (the code the student writes).

    Whole models give the same loss and gradients on both tiers (to 1e-10 in float64). The
    environment variable ``MINIS2S_IMPL`` sets the tier at import time, and the CLI's
    ``--impl`` sets it for one command. An unknown name raises ``ValueError`` and leaves the
    tier unchanged.
    """
    global _impl
    if not isinstance(impl_name, str) or impl_name.strip().lower() not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}; got {impl_name!r} (set by "
                         "minis2s.backend.use_impl(), --impl or the MINIS2S_IMPL environment "
                         "variable)")
    _impl = impl_name.strip().lower()
    return _impl


def impl() -> str:
    """The active tier: ``"fast"`` or ``"reference"`` (see :func:`use_impl`)."""
    return _impl


_DTYPES = {"float32": "float32", "float64": "float64"}


def resolve_dtype(dtype) -> str:
    """Validate a float dtype argument and return its name (``"float32"`` or ``"float64"``)."""
    key = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or dtype
    if isinstance(key, str) and key in _DTYPES:
        return _DTYPES[key]
    raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")


def _from_environment(variable, apply):
    """Apply the environment variable ``variable`` (if set) at import with ``apply(value)``.

    A bad value raises here, at import, as any error does. Left uncaught (``MINIS2S_BACKEND=foo
    minis2s ...`` or a script), it is reported the way the command line reports a user error:
    one line ``minis2s: error: ...`` and exit status 2, instead of a traceback (which
    ``MINIS2S_DEBUG=1`` shows). The minis2s command cannot catch it itself: the package is
    imported before its code runs.
    """
    value = os.environ.get(variable, "").strip()
    if not value:
        return
    try:
        apply(value)
    except (BackendError, ValueError) as error:
        if not os.environ.get("MINIS2S_DEBUG"):
            _one_line_if_uncaught(error, f"{variable}={value}")
        raise


def _one_line_if_uncaught(error, setting):
    import sys

    previous = sys.excepthook

    def hook(kind, value, tb):
        if value is not error:
            return previous(kind, value, tb)
        sys.stdout.flush()
        sys.stderr.write(f"minis2s: error: {setting}: {value}\n")
        sys.stderr.flush()
        os._exit(2)  # the status of a user error (an uncaught exception would give 1)

    sys.excepthook = hook


def _use_fused_from(value):
    if value not in ("0", "1"):
        raise BackendError(f"MINIS2S_FUSED must be 0 or 1; got {value!r}")
    use_fused(value == "1")


_from_environment("MINIS2S_BACKEND", use)
_from_environment("MINIS2S_FUSED", _use_fused_from)
_from_environment("MINIS2S_IMPL", use_impl)
