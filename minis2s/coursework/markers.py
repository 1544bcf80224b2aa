"""Solution regions: find them, check them, and replace them by TODOs.

A solution region lies between two comment lines (nbgrader's convention), each alone on its
line and indented like the code it wraps::

    def gru_cell_backward(dh, cache):
        ...validation stays...
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

Regions live only in the reference tier, ``minis2s/functional/``, and each belongs to one part
(:data:`~minis2s.coursework.parts.PART_FILES`). In a student copy a region of a chosen part
becomes a hint and a ``raise NotImplementedError``; the markers of the other regions are
removed and their code stays.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import textwrap
import tokenize
from pathlib import Path
from typing import NamedTuple

from .parts import PART_FILES, PARTS, REFERENCE_TIER

__all__ = ["MarkerError", "Region", "Planned", "find_regions", "check_markers", "plan_package",
           "missing_part_regions", "stub_source", "stub_notebook", "walk", "BEGIN", "END"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_MARKER_RE = re.compile(r"#+[ \t]*(BEGIN|END)[ \t]+SOLUTION[ \t]*")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".mypy_cache", ".ruff_cache"}
#: What a region of the reference tier must not hold: the fast tier's machinery.
FAST_CODE = re.compile(r"out=|ElementwiseKernel|_rotate|step_kernels|fused")


class MarkerError(ValueError):
    """A solution region is malformed, missing, or in a file that belongs to no part.

    The message has one ``path:line: problem`` line per problem; ``problems`` lists them.
    """

    def __init__(self, problems):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class Region(NamedTuple):
    """One solution region: the lines of its markers (1-based) and their indentation."""

    path: str
    begin: int
    end: int
    indent: str


class Planned(NamedTuple):
    """A region with its part, the function that holds it, and the hint that replaces it."""

    region: Region
    part: str
    qualname: str
    hint: str


# ----------------------------------------------------------------------------------------------
# Finding regions
# ----------------------------------------------------------------------------------------------
def _comments(text):
    """(line, comment text, standalone) for the comments of Python source ``text``, and the
    lines inside multi-line strings."""
    lines = text.splitlines()
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):  # not Python (a notebook cell with magics...)
        return [(i + 1, ln.strip(), True) for i, ln in enumerate(lines)
                if ln.lstrip().startswith("#")], set()
    in_string = set()
    out = []
    for t in toks:
        if t.type == tokenize.STRING and t.end[0] > t.start[0]:
            in_string.update(range(t.start[0] + 1, t.end[0] + 1))
        elif t.type == tokenize.COMMENT:
            row = t.start[0]
            out.append((row, t.string.strip(), lines[row - 1].strip() == t.string.strip()))
    return out, in_string


def scan(text, path):
    """The regions of ``text`` and its problems (``path:line: ...``): -> (regions, problems)."""
    lines = text.splitlines()
    comments, in_string = _comments(text)
    regions, problems = [], []
    open_ = None  # (line, indent) of the BEGIN of the open region
    depth = 0
    for row, comment, standalone in comments:
        m = _MARKER_RE.fullmatch(comment)
        if not m:
            continue
        kind = m.group(1)
        if not standalone:
            problems.append(f"{path}:{row}: a '### {kind} SOLUTION' marker must stand alone on "
                            "its line")
            continue
        line = lines[row - 1]
        indent = line[: len(line) - len(line.lstrip())]
        if kind == "BEGIN":
            if open_ is not None:
                problems.append(f"{path}:{row}: '{BEGIN}' inside the region opened at line "
                                f"{open_[0]}; regions cannot nest")
                depth += 1
                continue
            open_, depth = (row, indent), 1
            continue
        if open_ is None:
            problems.append(f"{path}:{row}: '{END}' without a '{BEGIN}' before it")
            continue
        if depth > 1:  # closes a nested BEGIN, already reported
            depth -= 1
            continue
        begin, b_indent = open_
        open_, depth = None, 0
        if indent != b_indent:
            problems.append(f"{path}:{row}: '{END}' is indented differently from its "
                            f"'{BEGIN}' at line {begin}")
            continue
        body = range(begin + 1, row)
        if not any(lines[i - 1].strip() for i in body):
            problems.append(f"{path}:{begin}: empty solution region (nothing between the "
                            "markers)")
            continue
        bad = [i for i in body if lines[i - 1].strip() and i not in in_string
               and len(lines[i - 1]) - len(lines[i - 1].lstrip()) < len(b_indent)]
        if bad:
            problems.append(f"{path}:{bad[0]}: line is indented less than its region's "
                            f"'{BEGIN}' (line {begin}); a region must hold whole statements "
                            "of one block")
            continue
        regions.append(Region(path, begin, row, b_indent))
    if open_ is not None:
        problems.append(f"{path}:{open_[0]}: '{BEGIN}' has no matching '{END}'")
    return regions, problems


def find_regions(text, path="<text>"):
    """The solution regions of Python source ``text``, in order.

    Raises:
        MarkerError: an END without BEGIN, a BEGIN without END, nested regions, an END indented
            unlike its BEGIN, an empty region, a region line indented less than its markers,
            or a marker sharing its line with code; ``path:line`` for each problem.
    """
    regions, problems = scan(text, path)
    if problems:
        raise MarkerError(problems)
    return regions


# ----------------------------------------------------------------------------------------------
# What each region is: its part, its function, the hint that replaces it
# ----------------------------------------------------------------------------------------------
class _Def(NamedTuple):
    start: int
    end: int
    qualname: str
    node: object


def _defs(tree):
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = prefix + child.name
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                out.append(_Def(start, child.end_lineno, q, child))
                visit(child, q + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def _first_sentence(doc):
    """The first sentence of a docstring's first paragraph, without Sphinx roles and ``."""
    if not doc:
        return ""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    para = re.sub(r":\w+:`~?([^`]+)`", r"\1", para).replace("``", "")
    m = re.search(r"[.!?](?=\s+[A-Z]|$)", para)
    first = para[: m.end()] if m else para
    first = first.rstrip(":").rstrip()
    if len(first) > 240:
        first = first[:237].rstrip() + "..."
    elif first and first[-1] not in ".!?)":
        first += "."
    return first


def _defined_names(func, begin, end):
    """Names assigned inside the region and read after it, in the order of assignment."""
    stored, loaded = {}, set()
    for n in ast.walk(func):
        if isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Store) and begin < n.lineno < end:
                stored.setdefault(n.id, (n.lineno, n.col_offset))
            elif isinstance(n.ctx, ast.Load) and n.lineno > end:
                loaded.add(n.id)
    return [k for k, _ in sorted(stored.items(), key=lambda kv: kv[1]) if k in loaded]


def _parts_of(rel, qualname):
    parts = []
    for part, specs in PART_FILES.items():
        for spec in specs:
            file, _, name = spec.partition("::")
            if file == rel and (not name or qualname == name
                                or (qualname or "").startswith(name + ".")):
                parts.append(part)
                break
    return parts


def _plan_file(text, rel, display):
    """Plan the regions of one .py file: -> (list of Planned, problems)."""
    regions, problems = scan(text, display)
    if not regions:
        return [], problems
    try:
        defs = _defs(ast.parse(text))
    except SyntaxError as e:
        return [], problems + [f"{display}:{e.lineno}: does not parse ({e.msg})"]
    planned = []
    for r in regions:
        inside = [d for d in defs if d.start <= r.begin <= d.end]
        d = max(inside, key=lambda x: x.start) if inside else None
        func = next((x for x in reversed(defs) if x.start <= r.begin <= x.end
                     and isinstance(x.node, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
        qualname = d.qualname if d else None
        parts = _parts_of(rel, qualname)
        if not rel.startswith(REFERENCE_TIER):
            problems.append(f"{display}:{r.begin}: solution markers belong in "
                            f"minis2s/{REFERENCE_TIER} only (the reference tier); move this "
                            "region's code there or remove its markers")
            continue
        if not parts:
            problems.append(f"{display}:{r.begin}: this region belongs to no part; list its "
                            "file in minis2s.coursework.PART_FILES")
            continue
        if len(parts) > 1:
            problems.append(f"{display}:{r.begin}: this region belongs to several parts "
                            f"({', '.join(parts)}); fix minis2s.coursework.PART_FILES")
            continue
        name = func.qualname if func else (qualname or Path(rel).stem)
        doc = _first_sentence(ast.get_docstring(func.node)) if func else ""
        hint = f"TODO: {name}: " + (doc or "see the module's docstring and derivation page.")
        if func:
            defined = _defined_names(func.node, r.begin, r.end)
            if defined:
                hint += f" Compute {', '.join(defined)} (used below)."
        planned.append(Planned(r, parts[0], name, hint))
    return planned, problems


def walk(top):
    """Files under ``top`` (sorted), skipping caches, build metadata and compiled files."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for f in sorted(filenames):
            if not f.endswith((".pyc", ".pyo")):
                yield Path(dirpath) / f


def plan_package(pkg):
    """-> ({rel path: [Planned]}, problems) over every .py file of the package ``pkg``."""
    plans, problems = {}, []
    for path in walk(pkg):
        if path.suffix != ".py":
            continue
        rel = path.relative_to(pkg).as_posix()
        planned, probs = _plan_file(path.read_text(encoding="utf-8"), rel, f"minis2s/{rel}")
        problems += probs
        if planned:
            plans[rel] = planned
    return plans, problems


def missing_part_regions(pkg, plans, parts):
    """Problems for the chosen ``parts`` whose main file is missing or holds no region."""
    problems = []
    for part in parts:
        main = PART_FILES[part][0]
        if not (Path(pkg) / main).is_file():
            problems.append(f"minis2s/{main}:1: missing; part {part!r} needs it")
        elif not any(p.part == part for p in plans.get(main, [])):
            problems.append(f"minis2s/{main}:1: no '{BEGIN}' region; part {part!r} needs "
                            "at least one")
    return problems


def _fast_code(pkg, plans):
    """Regions that hold the fast tier's machinery (out=, kernels, rotated buffers)."""
    problems = []
    for rel, planned in plans.items():
        lines = (Path(pkg) / rel).read_text(encoding="utf-8").splitlines()
        for p in planned:
            body = "\n".join(lines[p.region.begin: p.region.end - 1])
            m = FAST_CODE.search(body)
            if m:
                problems.append(f"minis2s/{rel}:{p.region.begin}: the region of {p.qualname} "
                                f"holds fast-tier code ({m.group(0)!r}); a region holds "
                                "textbook code only")
    return problems


def package_dir(root=None):
    """The package directory: ``root`` itself, ``root/minis2s``, or (None) the installed one."""
    if root is None:
        return Path(__file__).resolve().parents[1]
    root = Path(root)
    if (root / "minis2s" / "__init__.py").is_file():
        return root / "minis2s"
    if (root / "__init__.py").is_file():
        return root
    raise ValueError(f"root must be a minis2s package directory or a folder holding one; got "
                     f"{str(root)!r}, which has no __init__.py nor minis2s/__init__.py")


def check_markers(root=None):
    """Check every solution region of a package (and the notebooks beside it), for instructors.

    Args:
        root: a minis2s package directory, or a folder holding ``minis2s/`` (a checkout or a
            copy); None: the installed package.

    Returns:
        A list of problems, each ``path:line: what is wrong`` (empty when all is well): broken
        or nested markers, markers outside ``functional/``, a region that belongs to no part
        (or to several), a part's main file without a region, a region that holds fast-tier
        code (``out=``, kernels, rotated buffers), a notebook cell with broken markers.
    """
    pkg = package_dir(root)
    plans, problems = plan_package(pkg)
    problems += missing_part_regions(pkg, plans, list(PARTS))
    problems += _fast_code(pkg, plans)
    notebooks = pkg.parent / "notebooks"
    if notebooks.is_dir():
        for nb in walk(notebooks):
            if nb.suffix == ".ipynb":
                problems += stub_notebook(nb.read_text(encoding="utf-8"),
                                          nb.relative_to(pkg.parent).as_posix())[1]
    return problems


# ----------------------------------------------------------------------------------------------
# Replacing regions
# ----------------------------------------------------------------------------------------------
def stub_source(text, planned, stub_parts):
    """Replace the regions of ``stub_parts`` by a TODO hint and a raise; drop other markers.

    Returns:
        The new text, and for each planned region the line (1-based) where its TODO (or, when
        kept, its code) starts in the new text.
    """
    lines = text.splitlines(keepends=True)
    out, i, starts = [], 0, []
    for p in planned:
        r = p.region
        out += lines[i: r.begin - 1]
        starts.append(len(out) + 1)
        if p.part in stub_parts:
            width = max(40, 99 - len(r.indent))
            # keep short parenthesised groups, such as shapes "(B, T, S)", on one line
            hint = re.sub(r"\([^()]{1,30}\)", lambda m: m.group(0).replace(" ", "\0"), p.hint)
            wrapped = textwrap.wrap(hint, width=width - 2, subsequent_indent="  ",
                                    break_on_hyphens=False, break_long_words=False)
            out += [f"{r.indent}# {ln.replace(chr(0), ' ')}\n" for ln in wrapped]
            msg = json.dumps(f"TODO: implement {p.qualname} (part {p.part})", ensure_ascii=False)
            line = f"{r.indent}raise NotImplementedError({msg})\n"
            if len(line) > 100:
                line = f"{r.indent}raise NotImplementedError(\n{r.indent}    {msg})\n"
            out.append(line)
        else:
            out += lines[r.begin: r.end - 1]
        i = r.end
    out += lines[i:]
    return "".join(out), starts


def stub_notebook(text, display, keep=False):
    """Stub every region in the code cells of a notebook -> (new text or None, problems).

    With ``keep`` the regions' code stays and only their markers go (an answer copy). A stubbed
    cell's outputs are cleared.
    """
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError):
        return None, []
    problems, changed = [], False
    for k, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        regions, probs = scan(src, f"{display} (cell {k + 1})")
        problems += probs
        if not regions or probs:
            continue
        lines = src.splitlines(keepends=True)
        new, i = [], 0
        for r in regions:
            new += lines[i: r.begin - 1]
            if keep:
                new += lines[r.begin: r.end - 1]
            else:
                new.append(f"{r.indent}# TODO: complete this cell\n")
                msg = json.dumps(f"TODO: complete cell {k + 1} of {Path(display).name}",
                                 ensure_ascii=False)
                new.append(f"{r.indent}raise NotImplementedError({msg})\n")
            i = r.end
        new += lines[i:]
        cell["source"] = "".join(new).splitlines(keepends=True)
        if not keep:
            cell["outputs"] = []
            cell["execution_count"] = None
        changed = True
    if not changed:
        return None, problems
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n", problems
