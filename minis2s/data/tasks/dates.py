"""The ``dates`` task: human-written dates -> ISO 8601.

    "TUESDAY, SEPTEMBER 25, 1984" -> "1984-09-25"
    "2/10/93"                     -> "1993-02-10"
    "25 septembre 1984"           -> "1984-09-25"

The classic attention demo (the "date translation" exercise of Ng's sequence-models course):
the output is short and fully determined by the input, yet the model must learn to find the
day, month and year wherever a format puts them, and to read month names in several languages.

Conventions (every source denotes exactly one date):

* Dates are drawn uniformly between 1950-01-01 and 2049-12-31.
* Two-digit years use the pivot 50: ``50..99`` mean 1950..1999 and ``00..49`` mean 2000..2049.
  The 100-year range makes them unambiguous.
* Numeric dates with slashes and the year last are US order, month first (``2/10/93`` is
  February 10); with dots they are day first (``25.09.1984``, the German order); with the year
  first (``1984/09/25``, ``1984-9-25``, ``19840925``) they are year, month, day.
* ``#`` in a pattern is the English ordinal suffix of the day (``25th``, ``1st``, ``22nd``,
  ``13th``).

Each entry of :data:`DATE_FORMATS` is a CLDR pattern rendered with Babel's ``format_date`` in a
locale (month and day names for en, fr, de, es, it, pt and nl), then put in upper, lower or title
case. ``generate`` deals the formats out evenly (a shuffled round robin), so with
``n >= len(DATE_FORMATS)`` every format is used. Everything is offline and seeded by NumPy; the
exact strings follow the CLDR data of the installed Babel (e.g. en_GB's ``"Sept"``).

Faker is not used: its ``date_between`` is slower and seeds a shared global generator, while a
NumPy ``Generator`` over day numbers gives exactly uniform dates reproducibly.
"""

from __future__ import annotations

import datetime
import functools
from typing import NamedTuple

import numpy as np
from babel import Locale
from babel.dates import format_date

from ._common import check_n, make_rng

LEVEL = "char"
FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)
YEAR_PIVOT = 50  #: two-digit years < 50 are 20xx, >= 50 are 19xx
CASES = ("as_is", "upper", "lower", "title")
ISO_LEN = 10  # "YYYY-MM-DD"


class DateFormat(NamedTuple):
    """How to write a date: a CLDR ``pattern`` for Babel, its ``locale`` and a ``case``."""

    pattern: str
    locale: str = "en"
    case: str = "as_is"  # "as_is" | "upper" | "lower" | "title"


#: The formats of the task's sources. Examples are for 1984-09-25 (a Tuesday).
DATE_FORMATS = (
    DateFormat("EEEE, MMMM d, y", "en", "upper"),            # TUESDAY, SEPTEMBER 25, 1984
    DateFormat("EEEE, MMMM d, y", "en"),                     # Tuesday, September 25, 1984
    DateFormat("MMMM d, y", "en"),                           # September 25, 1984
    DateFormat("MMMM d#, y", "en", "lower"),                 # september 25th, 1984
    DateFormat("MMM. d, yy", "en_GB"),                       # Sept. 25, 84
    DateFormat("MMM d, y", "en"),                            # Sep 25, 1984
    DateFormat("MMM d y", "en", "lower"),                    # sep 25 1984
    DateFormat("EEE, MMM d, y", "en"),                       # Tue, Sep 25, 1984
    DateFormat("d MMM y", "en"),                             # 25 Sep 1984
    DateFormat("d MMM yy", "en", "upper"),                   # 25 SEP 84
    DateFormat("dd-MMM-y", "en", "upper"),                   # 25-SEP-1984
    DateFormat("d MMMM y", "en"),                            # 25 September 1984
    DateFormat("EEEE d# MMMM y", "en_GB"),                   # Tuesday 25th September 1984
    DateFormat("'the' d# 'of' MMMM, y", "en"),               # the 25th of September, 1984
    DateFormat("M/d/yy", "en"),                              # 9/25/84
    DateFormat("MM/dd/y", "en"),                             # 09/25/1984
    DateFormat("M/d/y", "en"),                               # 9/25/1984
    DateFormat("y/MM/dd", "en"),                             # 1984/09/25
    DateFormat("y-M-d", "en"),                               # 1984-9-25
    DateFormat("yyyyMMdd", "en"),                            # 19840925
    DateFormat("dd.MM.y", "de"),                             # 25.09.1984
    DateFormat("d.M.yy", "de"),                              # 25.9.84
    DateFormat("d MMMM y", "fr"),                            # 25 septembre 1984
    DateFormat("EEEE d MMMM y", "fr"),                       # mardi 25 septembre 1984
    DateFormat("d MMM y", "fr", "upper"),                    # 25 SEPT. 1984
    DateFormat("d. MMMM y", "de"),                           # 25. September 1984
    DateFormat("EEEE, d. MMMM y", "de"),                     # Dienstag, 25. September 1984
    DateFormat("d 'de' MMMM 'de' y", "es"),                  # 25 de septiembre de 1984
    DateFormat("EEEE, d 'de' MMMM 'de' y", "es", "title"),   # Martes, 25 De Septiembre De 1984
    DateFormat("d MMMM y", "it"),                            # 25 settembre 1984
    DateFormat("d 'de' MMMM 'de' y", "pt"),                  # 25 de setembro de 1984
    DateFormat("d MMMM y", "nl", "lower"),                   # 25 september 1984
)


def ordinal_suffix(day):
    """The English ordinal suffix: 1 -> "st", 2 -> "nd", 3 -> "rd", 11..13 -> "th", 22 -> "nd"."""
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


@functools.cache
def _compiled(fmt):
    """(Babel pattern, Babel Locale, case) for a DateFormat; ``#`` becomes a U+E000 marker."""
    if not isinstance(fmt, DateFormat):
        raise TypeError(f"formats must hold DateFormat entries; got {fmt!r}")
    if fmt.case not in CASES:
        raise ValueError(f"DateFormat case must be one of {CASES}; got {fmt.case!r}")
    if "\ue000" in fmt.pattern:
        raise ValueError(f"DateFormat pattern must not contain U+E000; got {fmt.pattern!r}")
    return fmt.pattern.replace("#", "'\ue000'"), Locale.parse(fmt.locale), fmt.case


def render_date(date, fmt):
    """Write ``date`` (a ``datetime.date``) in the format ``fmt`` (a :class:`DateFormat`)."""
    pattern, locale, case = _compiled(fmt)
    s = format_date(date, pattern, locale=locale)
    if "\ue000" in s:
        s = s.replace("\ue000", ordinal_suffix(date.day))
    if case == "upper":
        s = s.upper()
    elif case == "lower":
        s = s.lower()
    elif case == "title":
        s = s.title()
    return s


def generate(n, seed=0, formats=None):
    """``n`` pairs ``(written date, "YYYY-MM-DD")`` for dates uniform in 1950..2049.

    Args:
        n: number of pairs.
        seed: same seed, same list.
        formats: the :class:`DateFormat` entries to use (default :data:`DATE_FORMATS`); each
            is used ``n // len(formats)`` or one more times, in a seeded random order.
    """
    n = check_n(n)
    formats = DATE_FORMATS if formats is None else tuple(formats)
    if not formats:
        raise ValueError("formats must hold at least one DateFormat; got none")
    for f in formats:
        _compiled(f)  # validate before drawing anything
    rng = make_rng(seed)
    first = FIRST_DATE.toordinal()
    days = rng.integers(first, LAST_DATE.toordinal() + 1, size=n).tolist()
    which = rng.permutation(np.arange(n) % len(formats)).tolist()
    pairs = []
    for day, k in zip(days, which):
        date = datetime.date.fromordinal(day)
        pairs.append((render_date(date, formats[k]), date.isoformat()))
    return pairs


@functools.cache
def _max_source_len(formats):
    # Every (month, weekday) pair with a two-digit day occurs in any one year; 2000 is a leap
    # year, so rendering all of its days finds the longest string of each format.
    start = datetime.date(2000, 1, 1).toordinal()
    dates = [datetime.date.fromordinal(start + i) for i in range(366)]
    return max(len(render_date(d, f)) for f in formats for d in dates)


def info(formats=None):
    """``(level, max_src_len, max_tgt_len)``: the longest source any format can write."""
    formats = DATE_FORMATS if formats is None else tuple(formats)
    return LEVEL, _max_source_len(formats), ISO_LEN
