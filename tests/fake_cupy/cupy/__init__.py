"""A stand-in for CuPy on machines without a GPU: NumPy underneath, CuPy's rules on top.

Its arrays live in host memory, but they behave towards NumPy as CuPy's device arrays do:

- ``numpy.asarray(a)`` / ``numpy.array(a)`` (any implicit conversion) raises TypeError, as
  CuPy's ``__array__`` does: results must come back with ``cupy.asnumpy`` (``backend.to_numpy``);
- a NumPy array given to a CuPy function or mixed into an operation with a CuPy array raises
  TypeError (CuPy accepts only its own arrays and scalars);
- NumPy functions and ufuncs called on CuPy arrays dispatch to CuPy (``__array_function__``,
  ``__array_ufunc__``) and return CuPy arrays, as with the real CuPy;
- reductions return 0-d arrays, not NumPy scalars; ``int()``, ``float()``, ``bool()`` work.

Put ``tests/fake_cupy`` first on ``sys.path`` (``PYTHONPATH``) and set
``MINIS2S_BACKEND=cupy`` to run minis2s, or the tests, against it. It finds code that would mix
NumPy and CuPy arrays on a GPU; it says nothing about speed or CUDA itself. Only what minis2s
uses is here. It is a test tool, never installed with the package.
"""

from __future__ import annotations

import numpy as _np
import numpy.lib.mixins as _mixins

__version__ = "0.0.0+fake"
FAKE = True


class ndarray(_mixins.NDArrayOperatorsMixin):
    """A 'device' array: wraps a NumPy array (views stay views, so writes go through)."""

    __slots__ = ("_a",)

    def __init__(self, a):
        self._a = a

    # --- no implicit conversion to NumPy -------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly. (fake cupy)")

    def get(self):
        return self._a.copy()

    # --- dispatch of NumPy's functions and ufuncs ----------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o, f"{ufunc.__name__} out") for o in out)
        if "where" in kwargs:
            raise TypeError("fake cupy: CuPy's ufuncs take no where= argument")
        args = [_unwrap(x, ufunc.__name__) for x in inputs]
        res = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(res)

    def __array_function__(self, func, types, args, kwargs):
        return _call(func, args, kwargs)

    # --- attributes and methods ------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: ndarray(self._a.real))

    def __getattr__(self, name):  # methods: sum, max, reshape, astype, copy, ...
        if name.startswith("__"):  # no __array_interface__, __array_struct__, buffer: no leak
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _wrap(attr(*[_unwrap(a, name) for a in args],
                              **{k: _unwrap(v, name) for k, v in kwargs.items()}))

        return method

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap_index(key)])

    def __setitem__(self, key, value):
        if isinstance(value, _np.ndarray) and (key is Ellipsis or key == slice(None)):
            self._a[key] = value  # CuPy copies a host array in on a[...] = x and a[:] = x only
            return
        self._a[_unwrap_index(key)] = _unwrap(value, "__setitem__")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for x in self._a:
            yield _wrap(x)

    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __bool__(self):
        return bool(self._a)

    def __index__(self):
        return self._a.__index__()

    def __format__(self, spec):
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __repr__(self):
        return "fake_cupy." + repr(self._a)

    def __str__(self):
        return str(self._a)

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __reduce__(self):  # pickling (multiprocessing) copies to the host and back
        return (ndarray, (self._a.copy(),))


def _unwrap(x, where):
    """A fake array -> its NumPy array; NumPy arrays are refused; lists/tuples recursively."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise TypeError(f"fake cupy: a NumPy array (shape {x.shape}, dtype {x.dtype}) was "
                        f"given to {where}; CuPy accepts only CuPy arrays and scalars there")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, where) for v in x)
    return x


def _unwrap_index(key):
    if isinstance(key, tuple):
        return tuple(_unwrap_index(k) for k in key)
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, _np.ndarray):  # CuPy indexes with host arrays too (a copy to the GPU)
        return key
    return key


def _wrap(x):
    if isinstance(x, _np.ndarray):
        return ndarray(x)
    if isinstance(x, _np.generic):  # reductions give 0-d arrays on CuPy
        return ndarray(_np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _call(func, args, kwargs):
    name = getattr(func, "__name__", str(func))
    res = func(*[_unwrap(a, name) for a in args],
               **{k: _unwrap(v, name) for k, v in kwargs.items()})
    out = kwargs.get("out")
    return out if isinstance(out, ndarray) else _wrap(res)


# --- the module's functions: NumPy's, behind CuPy's rules ------------------------------------
def asarray(a, dtype=None, order=None):
    """Host data (NumPy arrays, lists, scalars) or a CuPy array -> a CuPy array."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else ndarray(a._a.astype(dtype))
    return ndarray(_np.array(a, dtype=dtype, order=order or "K"))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return ndarray(_np.array(a._a, dtype=dtype, copy=copy, order=order))
    return ndarray(_np.array(a, dtype=dtype, order=order))


def asnumpy(a):
    return a._a.copy() if isinstance(a, ndarray) else _np.asarray(a)


_PASS = {"inf", "nan", "pi", "e", "newaxis", "finfo", "iinfo", "dtype", "float16", "float32",
         "float64", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64", "bool_",
         "intp", "integer", "floating", "number", "result_type", "promote_types", "can_cast",
         "shape", "ndim", "size", "isscalar"}  # these take any array, as CuPy's do


def __getattr__(name):
    attr = getattr(_np, name)
    if name in _PASS or isinstance(attr, type) or not callable(attr):
        return attr
    if isinstance(attr, _np.ufunc):
        return attr  # ufuncs dispatch through ndarray.__array_ufunc__, and refuse NumPy mixing

    def fn(*args, **kwargs):
        return _call(attr, args, kwargs)

    fn.__name__ = name
    return fn


class ElementwiseKernel:
    """CuPy's ElementwiseKernel for bodies that are also Python (minis2s writes them so)."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        def names(params):
            return [p.split()[-1] for p in params.split(",") if p.strip()]

        self.inputs, self.outputs = names(in_params), names(out_params)
        for v in self.inputs + self.outputs:
            if v in ("i", "n") or v.startswith("_"):
                raise ValueError(f"fake cupy: {v!r} is reserved in an ElementwiseKernel")
        self.code = compile(operation, f"<fake cupy kernel {name}>", "exec")

    def __call__(self, *args):
        if len(args) != len(self.inputs) + len(self.outputs):
            raise TypeError("fake cupy: wrong number of arguments")
        arrays = [_unwrap(a, "ElementwiseKernel") for a in args]
        ns = dict(zip(self.inputs, arrays))
        exec(self.code, {"tanh": _np.tanh, "exp": _np.exp}, ns)
        for name, out in zip(self.outputs, arrays[len(self.inputs):]):
            out[...] = ns[name]
        return args[len(self.inputs):]


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1


class _Pool:
    def total_bytes(self):
        return 0

    def used_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


class _Device:
    def __init__(self, i=0):
        pass

    def synchronize(self):
        pass


class cuda:  # noqa: N801 - mirrors cupy.cuda
    runtime = _Runtime
    Device = _Device


_pool = _Pool()


def get_default_memory_pool():
    return _pool
