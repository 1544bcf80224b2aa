"""The ``entities`` task: copy the names out of a sentence into a short record (word level).

    "in 2015 , leo bombieri from oud gastel joined allan llc as a nurse ."
        -> "person leo bombieri org allan llc city oud gastel"
    "the pamelaberg office of delle e figli is now run by hermenegildo cimini , a former editor ."
        -> "person hermenegildo cimini org delle e figli city pamelaberg"

A task for the pointer-generator: the target is almost all copied words, many of them names the
model has never seen. Each source is one of :data:`TEMPLATES`, a sentence about people, an
organisation and a city, filled with names and with filler (times, roles, topics...) that must
*not* be copied. The target lists the entities in the fixed field order :data:`FIELDS`
(``person``, then ``org``, then ``city``; two people in source order), each value after its
field word. Templates put the entities in every order, so the attention has to move about.

Conventions:

* Word level: tokens are separated by single spaces, punctuation is a token of its own, all is
  lower case. A name keeps its inner hyphens and apostrophes (``saint-denis``, ``o'brien``) and
  loses dots and commas (``S.A.R.L.`` -> ``sarl``).
* Every target token is a source token or one of the field words :data:`FIELDS`.
* Names come from Faker (locales :data:`LOCALES`), drawn once per process from instances seeded
  with :data:`NAME_SEED`: first and last names, cities (1-2 words) and companies (2-3 words).
  The exact names follow the installed Faker's data.
* **Disjoint name pools.** Each *word* of a name gets a split by a stable hash (80% ``train``,
  10% ``val``, 10% ``test``), except generic words (``gmbh``, ``and``, ``new``, ``van``, the
  words of the templates...). A name belongs to the split of its other words (names whose words
  disagree are left out), and a person is a first and a last name of one split. So the names
  of the test split never occur in training, and neither do their distinctive words: a
  vocabulary built on the training split does not know them, whatever the seeds. ``generate``
  draws from one split's pool; ``make_splits("entities", ...)`` draws each split from its own.

The ``seed`` drives a NumPy ``Generator`` (templates dealt in a shuffled round robin, names and
filler uniform), so generation is fast once the pools are built (about two seconds, once per
process). With ``Vocab.build(..., min_freq=1)`` on the training split, no training source has
an unknown word, and a pointer-generator never sees an extended id in training. Build the
vocabulary from the training sources *and* targets (the field words ``person``, ``org``,
``city`` occur only in targets) with a higher ``min_freq``: with ``min_freq=5`` on 20,000
training pairs, 6% of the training sources hold an unknown word (measured by
``benchmarks/vs_torch.py --config B``), enough for the model to learn to copy (see
docs/benchmarks.md). The smaller the training split, the larger that share.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections import Counter
from typing import NamedTuple

import numpy as np

from ._common import check_n, make_rng

LEVEL = "word"
SPLITS = ("train", "val", "test")  #: the name pools; make_splits draws each part from its own
SPLIT_SHARES = (0.8, 0.1, 0.1)
LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "nl_NL")
# Faker's it_IT city provider samples from a hash-ordered set, so its cities differ between
# processes (PYTHONHASHSEED); cities are drawn from the other locales only.
_NO_CITIES = ("it_IT",)
NAME_SEED = 0  #: Faker's seed for the (fixed) universe of names
DRAWS_PER_LOCALE = 1500  # Faker calls per locale and kind of name
GENERIC_MIN_COUNT = 20  # a word in at least this many multi-word names is generic
FIELDS = ("person", "org", "city")  #: the target's field words, in target order
_EDGES = tuple(round(10_000 * e) for e in np.cumsum(SPLIT_SHARES))  # split_of's buckets

#: The sources. Entity slots: P and P2 (people), O (organisation), C (city).
TEMPLATES = (
    "{when} , {P} from {C} joined {O} as {a_role} .",
    "{O} has hired {P} as its new {role} , the company said {when} in {C} .",
    "in {C} , {P} signed a contract with {O} {when} .",
    "{P} , {a_role} at {O} , moved to {C} {when} .",
    "according to {O} , {C} will host a workshop on {topic} led by {P} next {month} .",
    "the {C} office of {O} is now run by {P} , a former {role} .",
    "{P} and {P2} met at the {O} office in {C} {when} .",
    "{O} , based in {C} , named {P} head of {dept} {when} .",
    "{when} {P} gave a talk about {topic} at {O} in {C} .",
    "reporters in {C} asked {P} whether {O} would {plan} .",
    "{P} , who grew up in {C} , has worked for {O} since {year} .",
    "after {n} years at {O} , {P} went back to {C} to work as {a_role} .",
    "{C} : {O} confirmed {when} that {P} will step down as {role} .",
    "{O} opened its first shop in {C} , and {P} cut the ribbon {when} .",
    "{P} visited {C} {when} to see some old friends .",
    "{C} gave a warm welcome to {P} {when} .",
    "there are rumours that {O} will soon hire {P} as {a_role} .",
    "{P} , {a_role} , wrote to {P2} about the {topic} project at {O} .",
    "in a letter sent from {C} {when} , {P} thanked the staff of {O} .",
    "{O} and its {role} {P} were praised in {C} for their work on {topic} .",
    "best regards , {P} ( {role} , {O} , {C} )",
    "{when} the police in {C} questioned {P} about the {topic} files of {O} .",
)

_ENTITY_SLOTS = {"P": "person", "P2": "person", "O": "org", "C": "city"}

ROLES = ("engineer", "designer", "data scientist", "lawyer", "accountant", "chief executive",
         "sales manager", "product manager", "researcher", "consultant", "architect", "nurse",
         "teacher", "analyst", "editor", "chief financial officer", "intern", "economist")
#: Filler: drawn uniformly, never copied.
FILLER = {
    "when": ("yesterday", "today", "last week", "last month", "last year", "this morning",
             "on monday", "on tuesday", "on friday", "earlier this year", "two days ago",
             "in march", "in the spring", "in the autumn", "at the end of june",
             *(f"in {y}" for y in range(2015, 2025))),
    "role": ROLES,
    "a_role": tuple(("an " if r[0] in "aeiou" else "a ") + r for r in ROLES),
    "dept": ("sales", "research", "marketing", "human resources", "logistics", "finance",
             "design", "customer support", "legal affairs"),
    "topic": ("climate", "machine learning", "supply chains", "tax law", "urban design",
              "solar energy", "public health", "open source software", "the housing market",
              "data privacy", "rail freight"),
    "plan": ("close its factory", "move its headquarters", "cut jobs", "raise prices",
             "open a new branch", "sell its shares", "build a new plant"),
    "month": ("january", "february", "march", "april", "may", "june", "july", "august",
              "september", "october", "november", "december"),
    "year": tuple(str(y) for y in range(1990, 2024)),
    "n": tuple(str(k) for k in range(2, 31)),
}

_NAME_TOKEN = re.compile(r"[^\W\d_][\w'&-]*|&")
_MAX_WORDS = {"first": 1, "last": 2, "city": 2, "org": 3}  # a person is <= 3 words
_MIN_WORDS = {"first": 1, "last": 1, "city": 1, "org": 2}


class Pool(NamedTuple):
    """The names of one split (tuples of lower-case strings, sorted)."""

    first: tuple
    last: tuple
    city: tuple
    org: tuple


class _Template(NamedTuple):
    text: str
    slots: tuple  # the slot names, in source order
    entities: tuple  # (field, slot) in target order


def _parse(text):
    slots = tuple(name for _, name, _, _ in string.Formatter().parse(text) if name)
    order = {f: k for k, f in enumerate(FIELDS)}
    ents = [(_ENTITY_SLOTS[s], s) for s in slots if s in _ENTITY_SLOTS]
    ents.sort(key=lambda fs: order[fs[0]])  # stable: two people stay in source order
    return _Template(text, slots, tuple(ents))


_TEMPLATES = tuple(_parse(t) for t in TEMPLATES)


def template_words():
    """The words of the templates and filler (and the field words): never a name's own word."""
    words = set(FIELDS)
    for t in TEMPLATES:
        words.update(re.sub(r"\{\w+\}", " ", t).split())
    for options in FILLER.values():
        for o in options:
            words.update(o.split())
    return frozenset(words)


def split_of(word):
    """The split (``"train"``, ``"val"`` or ``"test"``) a name word belongs to: a stable hash."""
    h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
    u = h % 10_000
    for split, edge in zip(SPLITS, _EDGES):
        if u < edge:
            return split
    return SPLITS[-1]


def _normalise(name):
    """Lower-case words of a Faker name, or None if a word is not name-like."""
    words = name.lower().replace(".", "").replace(",", "").replace("/", "").split()
    if not words or not all(_NAME_TOKEN.fullmatch(w) for w in words):
        return None
    return " ".join(words)


@functools.cache
def pools():
    """``{split: Pool}``: the names of each split, built once per process with Faker."""
    from faker import Faker  # only this task needs it

    raw = {kind: set() for kind in _MAX_WORDS}
    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(NAME_SEED + i)
        draw = {"first": fake.first_name, "last": fake.last_name, "city": fake.city,
                "org": fake.company}
        if locale in _NO_CITIES:
            del draw["city"]
        for kind, f in draw.items():
            for _ in range(DRAWS_PER_LOCALE):
                name = _normalise(f())
                if name is not None and (_MIN_WORDS[kind] <= name.count(" ") + 1
                                         <= _MAX_WORDS[kind]):
                    raw[kind].add(name)
    raw["city"] -= raw["org"] | raw["first"] | raw["last"]  # a string names one kind of thing
    counts = Counter(w for names in raw.values() for name in names if " " in name
                     for w in set(name.split()))
    generic = template_words() | {w for w, c in counts.items() if c >= GENERIC_MIN_COUNT}
    split_cache = {}
    out = {s: {kind: [] for kind in _MAX_WORDS} for s in SPLITS}
    for kind, names in raw.items():
        for name in sorted(names):
            words = name.split()
            if FIELDS[0] in words or FIELDS[1] in words or FIELDS[2] in words:
                continue
            own = {split_cache.setdefault(w, split_of(w)) for w in words if w not in generic}
            if len(own) == 1:  # some own word, and all agree
                out[own.pop()][kind].append(name)
    return {s: Pool(**{k: tuple(v) for k, v in out[s].items()}) for s in SPLITS}


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    return split


def generate(n, seed=0, split="train"):
    """``n`` pairs ``(sentence, record)`` whose names come from the pool of ``split``.

    Args:
        n: number of pairs.
        seed: same seed (and split), same list.
        split: ``"train"``, ``"val"`` or ``"test"``: whose names to use (see module doc).
    """
    n = check_n(n)
    make_rng(seed)  # validates seed
    pool = pools()[_check_split(split)]
    rng = np.random.default_rng([int(seed), SPLITS.index(split)])
    which = rng.permutation(np.arange(n) % len(_TEMPLATES)).tolist()
    draws = {}
    for slot in ("P", "P2"):
        draws[slot] = (rng.integers(0, len(pool.first), n), rng.integers(0, len(pool.last), n))
    same = draws["P2"][0] == draws["P"][0]  # two people with one first name: take the next
    draws["P2"][0][same] = (draws["P2"][0][same] + 1) % len(pool.first)
    first, last = pool.first, pool.last
    columns = {s: [f"{first[i]} {last[j]}" for i, j in zip(a.tolist(), b.tolist())]
               for s, (a, b) in draws.items()}
    for slot, names in (("O", pool.org), ("C", pool.city), *FILLER.items()):
        columns[slot] = [names[i] for i in rng.integers(0, len(names), n).tolist()]
    pairs = []
    for row, k in enumerate(which):
        t = _TEMPLATES[k]
        values = {s: columns[s][row] for s in t.slots}
        target = " ".join(f"{field} {values[slot]}" for field, slot in t.entities)
        pairs.append((t.text.format(**values), target))
    return pairs


def _max_words(options):
    return max(o.count(" ") + 1 for o in options)


@functools.cache
def _max_lengths():
    longest = {s: _max_words(o) for s, o in FILLER.items()}
    name = {kind: max(_max_words(getattr(p, kind)) for p in pools().values() if getattr(p, kind))
            for kind in Pool._fields}
    longest.update(P=name["first"] + name["last"], P2=name["first"] + name["last"],
                   O=name["org"], C=name["city"])
    max_src = max(len(re.sub(r"\{\w+\}", " ", t.text).split()) + sum(longest[s] for s in t.slots)
                  for t in _TEMPLATES)
    max_tgt = max(sum(1 + longest[s] for _, s in t.entities) for t in _TEMPLATES)
    return max_src, max_tgt


def info(split="train"):
    """``(level, max_src_len, max_tgt_len)`` in words; the same bounds hold for every split."""
    _check_split(split)
    return (LEVEL, *_max_lengths())
