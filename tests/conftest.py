import numpy as np
import pytest

from minis2s import backend


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def to_np(a):
    return backend.to_numpy(a)
