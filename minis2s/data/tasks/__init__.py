"""Seeded toy tasks: generators of ``(source, target)`` string pairs, one module per task.

    >>> from minis2s.data.tasks import make_pairs, make_splits, task_info
    >>> make_pairs("addition", 2, seed=0)
    [('560+0', '560'), ('34+0', '34')]
    >>> train, val, test = make_splits("dates", (8000, 1000, 1000), seed=0)

================  ==========================================  =================================
task              example                                     keyword arguments
================  ==========================================  =================================
``copy``          ``"40712" -> "40712"``                      min_len=5, max_len=10, alphabet
``reverse``       ``"40712" -> "21704"``                      min_len=5, max_len=10, alphabet
``addition``      ``"16+75" -> "91"``                         max_digits=3, reverse_source=False
``dates``         ``"25 Sep 1984" -> "1984-09-25"``           formats=None (all DATE_FORMATS)
``entities``      ``"... ana ruiz from lyon joined ..."`` ->  split="train" (its pool of names)
                  ``"person ana ruiz org ... city lyon"``
================  ==========================================  =================================

Each generator is ``generate(n, seed=0, **kw) -> list[tuple[str, str]]``; the same arguments
give the same list. ``entities`` is word level and draws its names from one of three disjoint
pools (``split``); :func:`make_splits` gives each split its own pool.

Shipped real corpora (:data:`CORPUS_TASKS`; files in ``minis2s/data/corpora/``) have fixed
splits instead of a generator:

==================  ==============================================  ===========================
task                example                                         split (train / val / test)
==================  ==============================================  ===========================
``tatoeba``         ``"Je suis parti." -> "I left."``               68,408 / 3,789 / 3,840,
                                                                    grouped (:mod:`.tatoeba`)
``dlfs2-date``      ``"thursday, november 13, 2008" -> "2008-11-13"``  the book's (:mod:`.dlfs2`):
``dlfs2-addition``  ``"77+85" -> "162"``                            44,000 / 1,000 / 5,000
==================  ==============================================  ===========================

``make_splits("tatoeba")`` returns the fixed parts (``sizes`` may ask for seeded subsets of
them); ``make_pairs("tatoeba", n)`` draws ``n`` pairs of the training part.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _tatoeba, addition, copying, dates, dlfs2, entities, reversal
from ._common import check_n, make_rng
from .dates import DATE_FORMATS, DateFormat, render_date

__all__ = ["TASKS", "CORPUS_TASKS", "CorpusTask", "TaskInfo", "make_pairs", "make_splits",
           "task_info", "task_level", "task_names", "is_corpus", "DATE_FORMATS", "DateFormat",
           "render_date"]

_MODULES = {"copy": copying, "reverse": reversal, "addition": addition, "dates": dates,
            "entities": entities}

#: name -> generator ``(n, seed=0, **kw) -> list[(source, target)]``
TASKS = {name: module.generate for name, module in _MODULES.items()}


class CorpusTask(NamedTuple):
    """A task on a shipped corpus: fixed splits instead of a generator."""

    name: str
    splits: object  # () -> (train, val, test) lists of (source, target)
    info: object  # () -> (level, max_src_len, max_tgt_len)
    defaults: dict  # level, lowercase, nfc, min_freq
    langs: tuple  # (source language, target language) for word detokenisation, or (None, None)
    description: str


#: name -> :class:`CorpusTask`
CORPUS_TASKS = {t.name: t for t in (
    CorpusTask("tatoeba", _tatoeba.splits, _tatoeba.info, _tatoeba.DEFAULTS, ("fr", "en"),
               "French -> English sentences from Tatoeba (--reverse: English -> French)"),
    CorpusTask("dlfs2-date", lambda: dlfs2.splits("date"), lambda: dlfs2.info("date"),
               dlfs2.DEFAULTS, (None, None), "DLFS2's date.txt with the book's split"),
    CorpusTask("dlfs2-addition", lambda: dlfs2.splits("addition"),
               lambda: dlfs2.info("addition"), dlfs2.DEFAULTS, (None, None),
               "DLFS2's addition.txt with the book's split"),
)}


def task_names():
    """Every task name: the generated ones, then the shipped corpora."""
    return sorted(TASKS) + sorted(CORPUS_TASKS)


def is_corpus(task):
    """True for a task on a shipped corpus (fixed splits)."""
    return _check_task(task) in CORPUS_TASKS


class TaskInfo(NamedTuple):
    """What a model for the task needs to know."""

    name: str
    level: str  # "char" or "word": how to build its Vocab
    max_src_len: int  # the longest source the generator can produce (in tokens)
    max_tgt_len: int  # the longest target, without BOS/EOS


def _check_task(task):
    if task not in TASKS and task not in CORPUS_TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {task_names()}")
    return task


def _no_options(task, kw):
    if kw:
        raise TypeError(f"task {task!r} takes no options; got {sorted(kw)}")


def make_pairs(task, n, seed=0, **kw):
    """``n`` seeded ``(source, target)`` pairs of ``task`` (a name in :data:`TASKS`, or a
    corpus task, whose training part they are drawn from)."""
    if _check_task(task) in CORPUS_TASKS:
        from ..splits import subset

        _no_options(task, kw)
        make_rng(seed)
        return subset(CORPUS_TASKS[task].splits()[0], check_n(n), seed,
                      f"the training part of {task!r}")
    return TASKS[task](n, seed=seed, **kw)


def task_level(task):
    """The level (``"char"`` or ``"word"``) ``task`` is read at by default, without computing
    the maximum lengths that :func:`task_info` gives."""
    if _check_task(task) in CORPUS_TASKS:
        return CORPUS_TASKS[task].defaults["level"]
    level = getattr(_MODULES[task], "LEVEL", None)
    return level if level is not None else task_info(task).level


def task_info(task, **kw):
    """A :class:`TaskInfo` (level and maximum lengths) for ``task`` with keyword args ``kw``."""
    if _check_task(task) in CORPUS_TASKS:
        _no_options(task, kw)
        level, max_src, max_tgt = CORPUS_TASKS[task].info()
    else:
        level, max_src, max_tgt = _MODULES[task].info(**kw)
    return TaskInfo(task, level, max_src, max_tgt)


def make_splits(task, sizes=None, seed=0, **kw):
    """Train, validation and test lists whose *sources* are disjoint.

    Generates pairs, keeps the first occurrence of each source, then cuts the list in order
    (generation order is already random). If duplicates leave too few, more pairs are drawn
    with seeds derived from ``seed``; a task too small for ``sizes`` (addition with
    ``max_digits=1`` has only 100 sources) raises ValueError.

    A task with name pools (``entities``, whose module has ``SPLITS``) draws each part from
    its own pool instead (``split="train"``, ``"val"``, ``"test"``), so the test names never
    occur in training; its sources are then disjoint because their names are.

    A corpus task (:data:`CORPUS_TASKS`) has fixed parts: ``sizes`` may be None (all of each
    part) or hold None (all of that part) or an int (a subset of that many pairs drawn with
    ``seed``, kept in order; more than the part holds is a ValueError).

    Args:
        sizes: ``(n_train, n_val, n_test)``, ints >= 0.

    Returns:
        ``(train, val, test)``, lists of ``(source, target)``.
    """
    if _check_task(task) in CORPUS_TASKS:
        return _corpus_splits(task, sizes, seed, kw)
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 3:
        raise ValueError(f"sizes must be (n_train, n_val, n_test); got {sizes!r}")
    sizes = [check_n(s) for s in sizes]
    make_rng(seed)  # validates seed
    pools = getattr(_MODULES[task], "SPLITS", None)
    if pools is not None:
        if "split" in kw:
            raise ValueError(f"make_splits draws each split of {task!r} from its own pool; "
                             f"do not pass split={kw['split']!r}")
        return tuple(_distinct_pairs(task, n, seed, f"the {name} split needs {n}", split=name,
                                     **kw) for n, name in zip(sizes, pools))
    total = sum(sizes)
    pairs = _distinct_pairs(task, total, seed, f"sizes={tuple(sizes)} needs {total}", **kw)
    a, b = sizes[0], sizes[0] + sizes[1]
    return pairs[:a], pairs[a:b], pairs[b:total]


def _corpus_splits(task, sizes, seed, kw):
    from ..splits import subset

    _no_options(task, kw)
    make_rng(seed)
    if sizes is None:
        sizes = (None, None, None)
    if not isinstance(sizes, (tuple, list)) or len(sizes) != 3:
        raise ValueError(f"sizes must be (n_train, n_val, n_test) or None; got {sizes!r}")
    parts = CORPUS_TASKS[task].splits()
    return tuple(subset(part, None if n is None else check_n(n), seed,
                        f"the {name} part of {task!r}")
                 for part, n, name in zip(parts, sizes, ("training", "validation", "test")))


def _distinct_pairs(task, total, seed, need, **kw):
    """``total`` pairs of ``task`` with distinct sources (see :func:`make_splits`); ``need``
    says who asked, in the error message."""
    unique = {}
    for attempt in range(20):
        missing = total - len(unique)
        if missing <= 0:
            break
        sub_seed = seed if attempt == 0 else int(
            np.random.SeedSequence([seed, attempt]).generate_state(1)[0])
        for src, tgt in TASKS[task](missing + missing // 10 + 16, seed=sub_seed, **kw):
            unique.setdefault(src, tgt)
    if len(unique) < total:
        raise ValueError(f"task {task!r} gave only {len(unique)} distinct sources in 20 draws; "
                         f"{need} (make the task larger, e.g. "
                         "longer sequences or more digits)")
    return list(unique.items())[:total]
