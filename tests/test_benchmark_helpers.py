"""The benchmarks' process helper: a child that dies without a result is an error, not a hang."""

import multiprocessing as mp
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from _common import result_of  # noqa: E402

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
