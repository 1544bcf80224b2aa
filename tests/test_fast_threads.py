"""minis2s.fast.threads: independent jobs spread over threads, whatever their number."""

import os
import signal
import time

import numpy as np
import pytest

from minis2s import backend
from minis2s.fast import threads


def test_num_threads_follows_the_blas_setting(monkeypatch):
    for var in ("MINIS2S_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.num_threads() == 3
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert threads.num_threads() == 1
    monkeypatch.setenv("MINIS2S_THREADS", "2")
    assert threads.num_threads() == 2
    monkeypatch.setenv("MINIS2S_THREADS", "zero")  # not a positive int: the next one counts
    assert threads.num_threads() == 1


@pytest.mark.parametrize("n_threads", ["1", "2", "5"])
def test_run_calls_every_job_once(monkeypatch, n_threads):
    monkeypatch.setenv("MINIS2S_THREADS", n_threads)
    out = backend.xp.zeros(23)
    seen = []

    def job(i):
        out[i] += i + 1  # each job writes its own element
        seen.append(i)

    threads.run(job, list(range(23)))
    assert sorted(seen) == list(range(23))
    np.testing.assert_array_equal(backend.to_numpy(out), np.arange(1, 24))


def test_run_propagates_an_error(monkeypatch):
    monkeypatch.setenv("MINIS2S_THREADS", "2")

    def job(i):
        if i == 3:
            raise ValueError("job 3")

    with pytest.raises(ValueError, match="job 3"):
        threads.run(job, list(range(6)))


def test_a_forked_child_makes_its_own_pool(monkeypatch):
    """After fork the parent's pool threads do not exist in the child: run must not hang."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    monkeypatch.setenv("MINIS2S_THREADS", "2")
    threads.run(lambda i: None, [0, 1])  # the parent has a pool now
    pid = os.fork()
    if pid == 0:  # the child
        try:
            threads.run(lambda i: None, [0, 1, 2])
        finally:
            os._exit(0)
    for _ in range(300):  # up to 30 s; a hung child is killed and the test fails
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("threads.run hung in a forked child")
    assert status == 0
