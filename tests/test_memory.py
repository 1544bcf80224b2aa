"""minis2s.fast.memory: freed host memory kept for the next training step (glibc only).

Each check runs in a fresh Python process: the setting is once per process, and this one's
allocator must not decide the outcome.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# 20 rounds of eight arrays of about 1.2 MB, each written in full and freed: about 47,000 pages
# that, without the setting, glibc maps afresh (and the kernel faults in) round after round
CHURN = """
import resource
import numpy as np

def churn():
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        arrays = [np.ones(300_000 + 1000 * i, dtype=np.float32) for i in range(8)]
        del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
"""


def run(code, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MINIS2S_KEEP_MEMORY", "MALLOC_MMAP_THRESHOLD_",
                            "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environ,
                         capture_output=True, text=True, timeout=120)
    return out


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    out = run(CHURN + """
from minis2s.fast import memory
print(memory.keep_freed_memory())
churn()  # the heap grows to the round's size once
print(churn())
""")
    assert out.returncode == 0, out.stderr
    applied, faults = out.stdout.split()
    assert applied == "True"
    assert int(faults) < 500  # of about 47,000 pages written


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_creating_an_optimizer_keeps_freed_memory():
    out = run("""
import minis2s
from minis2s import optim
from minis2s.fast import memory
assert memory._applied is None  # importing minis2s changes nothing
model = minis2s.Seq2Seq(8, 8, 4, 4)
optim.Adam(model.params, model.grads)
print(memory._applied)
""")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True"]


@pytest.mark.parametrize("env", [
    {"MINIS2S_KEEP_MEMORY": "0"},
    {"MALLOC_TRIM_THRESHOLD_": "131072"},  # the user's own settings win
    {"MALLOC_MMAP_THRESHOLD_": "131072"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
])
def test_the_allocator_is_left_alone_when_asked(env):
    out = run("""
from minis2s.fast import memory
print(memory.keep_freed_memory(), memory.keep_freed_memory())
""", **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_a_bad_setting_names_the_variable():
    out = run("""
from minis2s.fast import memory
try:
    memory.keep_freed_memory()
except ValueError as e:
    print(e)
""", MINIS2S_KEEP_MEMORY="yes")
    assert out.returncode == 0, out.stderr
    assert "MINIS2S_KEEP_MEMORY must be 0 or 1; got 'yes'" in out.stdout
