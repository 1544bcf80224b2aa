import calendar
import datetime
import re
import time

import pytest

from minis2s.data import DATE_FORMATS, TASKS, make_pairs, make_splits, task_info
from minis2s.data.tasks import dates as dates_mod
from minis2s.data.tasks.dates import DateFormat, ordinal_suffix, render_date

# -- an independent parser for the date sources (hand-written names, not Babel's) --------------
_MONTHS = {
    "en": calendar.month_name[1:],
    "en_abbr": [m.lower() for m in calendar.month_abbr[1:]] + ["sept"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"],
    "fr_abbr": ["janv", "févr", "mars", "avr", "mai", "juin", "juil", "août", "sept", "oct",
                "nov", "déc"],
    "de": ["januar", "februar", "märz", "april", "mai", "juni", "juli", "august", "september",
           "oktober", "november", "dezember"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
           "settembre", "ottobre", "novembre", "dicembre"],
    "pt": ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto",
           "setembro", "outubro", "novembro", "dezembro"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"],
}
MONTH = {}
for _names in _MONTHS.values():
    for _m, _name in enumerate(_names[:12], start=1):
        assert MONTH.setdefault(_name.lower(), _m) == _m
MONTH["sept"] = 9
_DAYS = {  # Monday first, like date.weekday()
    "en": [d.lower() for d in calendar.day_name], "en_abbr": [d.lower() for d in calendar.day_abbr],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "de": ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
}
WEEKDAY = {name: k for names in _DAYS.values() for k, name in enumerate(names)}
FILLER = {"de", "the", "of", "st", "nd", "rd", "th"}


def year_of(s):
    y = int(s)
    return y if len(s) == 4 else (1900 + y if y >= 50 else 2000 + y)


def parse_date(source):
    """Read a source string back into a date, knowing only the documented conventions."""
    s = source.strip().lower()
    if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})", s):  # US: month first
        return datetime.date(year_of(m[3]), int(m[1]), int(m[2]))
    if m := re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})", s):  # dots: day first
        return datetime.date(year_of(m[3]), int(m[2]), int(m[1]))
    if m := re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", s):
        return datetime.date(int(m[1]), int(m[2]), int(m[3]))
    if m := re.fullmatch(r"(\d{4})(\d{2})(\d{2})", s):
        return datetime.date(int(m[1]), int(m[2]), int(m[3]))
    words = re.findall(r"[^\W\d_]+", s)
    numbers = re.findall(r"\d+", s)
    months = [MONTH[w] for w in words if w in MONTH]
    weekdays = [WEEKDAY[w] for w in words if w in WEEKDAY]
    unknown = [w for w in words if w not in MONTH and w not in WEEKDAY and w not in FILLER]
    assert not unknown, (source, unknown)
    assert len(months) == 1 and len(numbers) == 2, source
    d = datetime.date(year_of(numbers[1]), months[0], int(numbers[0]))
    if weekdays:
        assert weekdays == [d.weekday()], f"{source!r}: wrong weekday for {d}"
    if re.search(r"\d(st|nd|rd|th)\b", s):
        suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
        assert re.search(rf"\b{d.day}{suffix.get(d.day, 'th')}\b", s), source
    return d


# -- dates ------------------------------------------------------------------------------------
def test_every_date_target_is_iso_and_the_source_denotes_it():
    pairs = make_pairs("dates", 3000, seed=1)
    for src, tgt in pairs:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", tgt), tgt
        d = datetime.date.fromisoformat(tgt)
        assert datetime.date(1950, 1, 1) <= d <= datetime.date(2049, 12, 31)
        assert parse_date(src) == d, (src, tgt)


def test_every_format_renders_the_right_date_on_edge_days():
    for day in ["1950-01-01", "1999-12-31", "2000-02-29", "2049-12-31", "2011-11-12",
                "1983-03-03", "2022-08-22"]:
        d = datetime.date.fromisoformat(day)
        for fmt in DATE_FORMATS:
            assert parse_date(render_date(d, fmt)) == d, (fmt, render_date(d, fmt))


@pytest.mark.parametrize("iso, fmt, expected", [
    ("1984-09-25", DateFormat("EEEE, MMMM d, y", "en", "upper"), "TUESDAY, SEPTEMBER 25, 1984"),
    ("1993-02-10", DateFormat("M/d/yy"), "2/10/93"),
    ("1984-09-25", DateFormat("d MMM y"), "25 Sep 1984"),
    ("1984-09-25", DateFormat("dd.MM.y", "de"), "25.09.1984"),
    ("1984-09-25", DateFormat("MMMM d#, y", "en", "lower"), "september 25th, 1984"),
    ("1984-09-25", DateFormat("MMM. d, yy", "en_GB"), "Sept. 25, 84"),
    ("1984-09-25", DateFormat("y/MM/dd"), "1984/09/25"),
    ("1984-09-25", DateFormat("d MMMM y", "fr"), "25 septembre 1984"),
    ("2001-01-02", DateFormat("'the' d# 'of' MMMM, y"), "the 2nd of January, 2001"),
])
def test_documented_examples(iso, fmt, expected):
    assert fmt in DATE_FORMATS
    assert render_date(datetime.date.fromisoformat(iso), fmt) == expected


def test_at_least_20_distinct_formats_and_all_used(monkeypatch):
    d = datetime.date(1984, 9, 25)
    assert len(set(DATE_FORMATS)) == len(DATE_FORMATS) >= 20
    assert len({render_date(d, f) for f in DATE_FORMATS}) >= 20
    assert {f.locale.split("_")[0] for f in DATE_FORMATS} >= {"en", "fr", "de", "es"}
    assert {f.case for f in DATE_FORMATS} >= {"upper", "lower", "title"}
    used = []

    def spy(date, fmt):
        used.append(fmt)
        return render_date(date, fmt)

    monkeypatch.setattr(dates_mod, "render_date", spy)
    make_pairs("dates", 2 * len(DATE_FORMATS) + 3, seed=5)
    counts = {f: used.count(f) for f in DATE_FORMATS}
    assert min(counts.values()) >= 2, counts  # a shuffled round robin: every format, evenly


def test_ordinal_suffix():
    assert [ordinal_suffix(d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 30, 31)] == \
        ["st", "nd", "rd", "th", "th", "th", "th", "st", "nd", "rd", "th", "st"]


def test_each_source_has_one_target():
    seen = {}
    for src, tgt in make_pairs("dates", 20000, seed=2):
        assert seen.setdefault(src, tgt) == tgt, src


def test_dates_custom_formats_and_validation():
    only = [DateFormat("y/MM/dd")]
    assert all(re.fullmatch(r"\d{4}/\d{2}/\d{2}", s) for s, _ in make_pairs("dates", 20,
                                                                            formats=only))
    with pytest.raises(ValueError, match="case"):
        make_pairs("dates", 3, formats=[DateFormat("y", "en", "shout")])
    with pytest.raises(ValueError, match="at least one"):
        make_pairs("dates", 3, formats=[])


def test_50k_dates_take_a_few_seconds():
    t = time.perf_counter()
    pairs = make_pairs("dates", 50_000, seed=0)
    elapsed = time.perf_counter() - t
    assert len(pairs) == 50_000
    assert elapsed < 10.0, f"50,000 dates took {elapsed:.1f} s"


# -- copy, reverse, addition --------------------------------------------------------------------
def test_copy_and_reverse():
    for task, f in (("copy", lambda s: s), ("reverse", lambda s: s[::-1])):
        pairs = make_pairs(task, 2000, seed=0)
        assert {len(s) for s, _ in pairs} == set(range(5, 11))
        assert all(s.isdigit() and t == f(s) for s, t in pairs)
        pairs = make_pairs(task, 300, seed=0, min_len=1, max_len=3, alphabet="ab")
        assert {len(s) for s, _ in pairs} == {1, 2, 3} and set("".join(s for s, _ in pairs)) \
            == {"a", "b"}
    with pytest.raises(ValueError, match="min_len"):
        make_pairs("copy", 5, min_len=4, max_len=3)


def test_addition_sums_are_right():
    pairs = make_pairs("addition", 3000, seed=0, max_digits=3)
    digits = set()
    for src, tgt in pairs:
        m = re.fullmatch(r"(\d+)\+(\d+)", src)
        assert m and str(int(m[1])) == m[1] and str(int(m[2])) == m[2]  # no leading zeros
        assert int(tgt) == int(m[1]) + int(m[2])
        digits.update((len(m[1]), len(m[2])))
    assert digits == {1, 2, 3}
    rev = make_pairs("addition", 3000, seed=0, max_digits=3, reverse_source=True)
    assert [(s[::-1], t) for s, t in rev] == pairs


def test_determinism_by_seed():
    for task in TASKS:
        assert make_pairs(task, 200, seed=4) == make_pairs(task, 200, seed=4)
        assert make_pairs(task, 200, seed=4) != make_pairs(task, 200, seed=5)
    assert make_pairs("copy", 0) == []


def test_task_info_bounds_generated_lengths():
    for task, kw in [("copy", {}), ("reverse", dict(max_len=20)), ("addition", dict(max_digits=4)),
                     ("dates", {})]:
        info = task_info(task, **kw)
        assert info.name == task and info.level == "char"
        pairs = make_pairs(task, 3000, seed=0, **kw)
        assert max(len(s) for s, _ in pairs) <= info.max_src_len
        assert max(len(t) for _, t in pairs) <= info.max_tgt_len
    assert task_info("dates").max_tgt_len == 10
    assert task_info("addition", max_digits=2)[2:] == (5, 3)


def test_unknown_task():
    with pytest.raises(ValueError, match=r"unknown task 'sort'.*addition.*copy.*dates.*reverse"):
        make_pairs("sort", 10)
    with pytest.raises(ValueError, match="unknown task"):
        task_info("sort")
    with pytest.raises(ValueError, match="unknown task"):
        make_splits("sort", (1, 1, 1))


def test_splits_are_disjoint_and_seeded():
    train, val, test = make_splits("addition", (3000, 300, 300), seed=0)
    assert (len(train), len(val), len(test)) == (3000, 300, 300)
    s_train, s_val, s_test = ({s for s, _ in part} for part in (train, val, test))
    assert len(s_train) == 3000 and len(s_val) == 300 and len(s_test) == 300
    assert not (s_train & s_val) and not (s_train & s_test) and not (s_val & s_test)
    assert make_splits("addition", (3000, 300, 300), seed=0) == (train, val, test)
    assert make_splits("addition", (3000, 300, 300), seed=1)[0] != train
    # A small task is used up exactly; asking for more than exists is an error.
    parts = make_splits("addition", (80, 10, 10), seed=0, max_digits=1)
    assert len({s for p in parts for s, _ in p}) == 100
    with pytest.raises(ValueError, match="only 100 distinct sources"):
        make_splits("addition", (90, 10, 1), max_digits=1)
    with pytest.raises(ValueError, match="sizes"):
        make_splits("copy", (10, 10))
