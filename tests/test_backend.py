"""The backend switch, and the rule that model math never touches NumPy or CuPy directly."""

import ast
import pathlib

import numpy as np
import pytest

import minis2s
from minis2s import backend

PKG = pathlib.Path(minis2s.__file__).parent
# Model math: must go through backend.xp only. (init.py draws initial values on the host with
# NumPy on purpose, so that a seed gives the same numbers on every backend.)
MATH = ["functional", "fast", "layers.py", "models", "optim.py"]


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno


def _files(entries):
    for e in entries:
        p = PKG / e
        yield from (sorted(p.rglob("*.py")) if p.is_dir() else [p])


def test_model_math_never_imports_numpy_or_cupy():
    bad = [
        f"{f.relative_to(PKG)}:{line} imports {mod}"
        for f in _files(MATH)
        for mod, line in _imports(f)
        if mod in ("numpy", "cupy", "cupyx")
    ]
    assert not bad, "model math must use minis2s.backend.xp:\n" + "\n".join(bad)


def test_only_backend_imports_cupy():
    bad = [
        f"{f.relative_to(PKG)}:{line}"
        for f in PKG.rglob("*.py")
        if f.name != "backend.py"
        for mod, line in _imports(f)
        if mod in ("cupy", "cupyx")
    ]
    assert not bad, "only minis2s/backend.py may import cupy: " + ", ".join(bad)


def test_the_checker_catches_a_violation(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("import numpy as np\nfrom cupy import ndarray\n")
    assert [m for m, _ in _imports(f)] == ["numpy", "cupy"]


def test_unknown_backend_raises_backend_error():
    with pytest.raises(minis2s.BackendError, match="unknown backend 'tensorflow'"):
        backend.use("tensorflow")
    assert backend.name in ("numpy", "cupy")
    assert issubclass(minis2s.BackendError, RuntimeError)


def test_backend_name_must_be_a_string():
    with pytest.raises(TypeError, match="backend name"):
        backend.use(3)


def test_cupy_without_gpu_raises_helpful_error():
    try:
        import cupy  # noqa: F401

        has = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        has = False
    if has:
        pytest.skip("a GPU is present: use('cupy') succeeds here")
    before = backend.name
    with pytest.raises(minis2s.BackendError) as e:
        backend.use("cupy")
    msg = str(e.value)
    assert "cupy" in msg.lower() and ("install" in msg.lower() or "gpu" in msg.lower())
    assert backend.name == before  # unchanged


def test_numpy_round_trip():
    a = np.arange(6.0).reshape(2, 3)
    b = backend.asarray(a, dtype="float32")
    assert b.dtype == np.float32 and isinstance(backend.to_numpy(b), np.ndarray)
    np.testing.assert_array_equal(backend.to_numpy(b), a)


@pytest.mark.parametrize("shape", [(5,), (5, 3), (5, 2, 2)])
def test_scatter_add_matches_add_at(shape, rng):
    idx = rng.integers(0, shape[0], size=(4, 6))
    vals = rng.standard_normal(idx.shape + shape[1:])
    want = np.zeros(shape)
    np.add.at(want, idx, vals)
    got = backend.xp.zeros(shape)
    backend.scatter_add(got, backend.asarray(idx), backend.asarray(vals))
    np.testing.assert_allclose(backend.to_numpy(got), want, atol=1e-12)


def test_resolve_dtype():
    assert backend.resolve_dtype("float32") == "float32"
    assert backend.resolve_dtype(np.float64) == "float64"
    with pytest.raises(ValueError, match="dtype"):
        backend.resolve_dtype("float16")
