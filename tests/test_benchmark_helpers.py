"""The benchmarks' process helpers: a child that dies without a result is an error, not a hang,
and the other children do not outlive it."""

import multiprocessing as mp
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from _common import result_of, run_in_processes  # noqa: E402

ctx = mp.get_context("fork")


def _gives(q):
    q.put({"ok": 1})


def _dies(q):
    os._exit(3)


def test_result_of_returns_the_childs_result():
    q = ctx.Queue()
    p = ctx.Process(target=_gives, args=(q,))
    p.start()
    assert result_of(p, q, poll_s=0.2) == {"ok": 1}
    assert p.exitcode == 0


def test_result_of_raises_when_the_child_dies_without_one():
    q = ctx.Queue()
    p = ctx.Process(target=_dies, args=(q,))
    p.start()
    with pytest.raises(RuntimeError, match="exit code 3"):
        result_of(p, q, poll_s=0.2)


def _dies_or_sleeps(role, pid_file, q):
    if role == "sleeps":  # would run for two minutes
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
        q.put({"ok": 1})
    else:  # dies without a result once the sleeper has started
        while not os.path.exists(pid_file):
            time.sleep(0.05)
        os._exit(3)


def test_a_failed_run_takes_the_others_down(tmp_path):
    pid_file = str(tmp_path / "pid")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="exit code 3"):
        run_in_processes(_dies_or_sleeps, [("dies", pid_file), ("sleeps", pid_file)],
                         at_once=2, context="fork")
    assert time.monotonic() - t0 < 60  # it did not wait for the sleeper
    pid = int(open(pid_file).read())
    with pytest.raises(ProcessLookupError):  # terminated and reaped
        os.kill(pid, 0)


_PARENT = """
import os, sys, time
sys.path.insert(0, {bench!r})
from _common import run_in_processes

def sleeps(pid_file, q):
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)
    q.put(1)

if __name__ == "__main__":
    run_in_processes(sleeps, [({pid_file!r},)], at_once=1, context="fork")
"""


def _gone(pid):
    """True once ``pid`` has exited (a zombie waiting for init to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_run_ends_when_its_parent_is_killed_outright(tmp_path):
    import signal
    import subprocess

    pid_file = str(tmp_path / "pid")
    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "benchmarks")
    script = tmp_path / "parent.py"
    script.write_text(_PARENT.format(bench=bench, pid_file=pid_file))
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(pid_file) or not open(pid_file).read():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child = int(open(pid_file).read())
        assert not _gone(child)
        parent.send_signal(signal.SIGKILL)  # nothing in the parent can run after this
        parent.wait()
        deadline = time.monotonic() + 20
        while not _gone(child):
            assert time.monotonic() < deadline, "the child outlived its killed parent"
            time.sleep(0.05)
    finally:
        parent.kill()
        if os.path.exists(pid_file) and open(pid_file).read():
            try:
                os.kill(int(open(pid_file).read()), signal.SIGKILL)
            except ProcessLookupError:
                pass
