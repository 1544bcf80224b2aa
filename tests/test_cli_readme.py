"""The README and docs/README.md: their links lead somewhere, the README lists every flag of the
command line and every date format the date model reads, and says how to install the extras."""

import pathlib
import re

import pytest

from minis2s.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS_README = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")


def _slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _links(text):
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", ["README.md", "docs/README.md"])
def test_every_link_leads_somewhere(page):
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    links = _links(text)
    assert len(links) > 10
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{page}: {link} leads nowhere"
        if anchor:
            headings = re.findall(r"(?m)^#+ (.*)$", file.read_text(encoding="utf-8"))
            assert anchor in {_slug(h) for h in headings}, f"{page}: no heading for #{anchor}"


def test_the_docs_index_links_every_page():
    linked = {(ROOT / "docs" / link).resolve() for link in _links(DOCS_README)}
    pages = set((ROOT / "docs").glob("*.md")) | set((ROOT / "docs" / "derivations").glob("*.md"))
    missing = sorted(str(p.relative_to(ROOT)) for p in pages
                     if p.resolve() not in linked and p.name != "README.md")
    assert not missing, f"docs/README.md does not link {missing}"


def test_the_readme_links_the_docs_and_says_how_to_install_the_extras():
    assert "[docs/README.md](docs/README.md)" in README
    assert 'pip install ".[notebooks]"' in README and 'pip install ".[gpu]"' in README
    assert "minis2s[gpu]" not in README  # not on PyPI: from a checkout
    assert "禅与计算机程序设计艺术" in README and "[docs/errata.md](docs/errata.md)" in README


def _flags(parser):
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                yield parser.prog, option
    for child in parser.children.values():
        yield from _flags(child)


def test_the_readme_lists_every_flag():
    missing = sorted({f"{prog} {flag}" for prog, flag in _flags(build_parser())
                      if not re.search(rf"`{re.escape(flag)}(?![\w-])", README)})
    assert not missing, f"README.md does not list {missing}"


def test_the_readme_lists_the_date_formats_and_years():
    import datetime

    from minis2s.data.tasks.dates import DATE_FORMATS, FIRST_DATE, LAST_DATE, render_date

    day = datetime.date(1984, 9, 25)
    for fmt in DATE_FORMATS:
        assert f"`{render_date(day, fmt)}`" in README, fmt
    assert f"**{len(DATE_FORMATS)} formats**" in README
    assert f"**{FIRST_DATE.isoformat()}\nto {LAST_DATE.isoformat()}**" in README or \
        f"**{FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}**" in README
