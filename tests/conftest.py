import os
import sys

# One BLAS thread per test process: the suite runs its tests in parallel (pytest-xdist, one
# worker per core), and small matrix products get much slower when BLAS threads compete for the
# same cores. This must happen before NumPy loads OpenBLAS.
if "numpy" not in sys.modules:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minis2s import backend  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def to_np(a):
    return backend.to_numpy(a)


@pytest.fixture
def no_sentencepiece(monkeypatch):
    """``import sentencepiece`` fails, as on a machine without the ``subword`` extra."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kw):
        if name == "sentencepiece":
            raise ImportError("No module named 'sentencepiece'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
