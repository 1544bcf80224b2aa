"""Coursework: write a student copy with the solutions blanked out, and grade a copy.

The solutions in the library source sit between two comment lines (nbgrader's convention, so
an instructor may also use nbgrader), indented like the code around them::

    def gru_cell_backward(dh, cache):
        ...validation stays...
        ### BEGIN SOLUTION          <- this line, the solution, and the END line
        ...                            are replaced in a student copy by a TODO hint
        ### END SOLUTION               and ``raise NotImplementedError(...)``

Each region belongs to one *part* of the coursework (:data:`PARTS`): the regions of the
functional module ``functional/<part>.py`` and of the files that :data:`PART_FILES` lists for
it (a layer class, a model). :func:`make` writes a student copy in which the regions of the
chosen parts are stubbed and the markers of the others are removed (their code stays).
:func:`grade` scores a copy part by part, each in a separate, isolated Python process that
imports the copy's ``minis2s`` (never the grader's) and runs that part's checks: forward values
against small NumPy references written here, float64 gradient checks of the forward/backward
pairs against centred finite differences on padded inputs, and a tiny learning check built
from the part's own ops. The grading process never imports the student's code.

Every part is graded on its own ops only: its learning check uses NumPy written here for
everything outside the part, so one part's mistakes do not fail another part.

See docs/coursework.md.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tokenize
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# This module is also loaded on its own, by file path, inside the grading processes (see
# _child_main): keep its top-level imports to the standard library, never ``minis2s``.

__all__ = [
    "PARTS",
    "PART_FILES",
    "MANIFEST",
    "MarkerError",
    "Region",
    "find_regions",
    "check_markers",
    "make",
    "grade",
    "grade_cli",
    "CheckResult",
    "PartResult",
]

#: The parts of the coursework, in the order students meet them: name -> what it covers.
PARTS = {
    "linear": "affine map y = x W + b: functional/linear.py (linear_forward, linear_backward)",
    "embedding": "embedding lookup and its scatter-add backward: functional/embedding.py",
    "loss": "masked softmax cross-entropy: functional/loss.py",
    "gru": "the GRU: cell, padded multi-layer bidirectional sequences and a decoder step "
           "(functional/gru.py; also layers.GRU and models/seq2seq.py if they hold regions)",
    "attention": "attention: masked softmax, the four scores, context, composed attention "
                 "(functional/attention.py; also models/attention.py)",
    "pointer": "pointer-generator: coverage attention and loss, p_gen, the final mixture and "
               "its stable NLL (functional/pointer.py; also models/pointer_generator.py)",
}

#: The files (relative to the package directory) whose regions each part owns. The first one
#: must exist and hold at least one region; the others are optional. ``file::Name`` takes only
#: the regions inside class or function ``Name`` of that file.
PART_FILES = {
    "linear": ("functional/linear.py", "layers.py::Linear"),
    "embedding": ("functional/embedding.py", "layers.py::Embedding"),
    "loss": ("functional/loss.py",),
    "gru": ("functional/gru.py", "layers.py::GRU", "models/seq2seq.py"),
    "attention": ("functional/attention.py", "models/attention.py"),
    "pointer": ("functional/pointer.py", "models/pointer_generator.py"),
}

#: The manifest that :func:`make` writes at the top of a student copy.
MANIFEST = ".minis2s-assignment.json"

_BEGIN = "### BEGIN SOLUTION"
_END = "### END SOLUTION"
_MARKER_RE = re.compile(r"#+[ \t]*(BEGIN|END)[ \t]+SOLUTION[ \t]*")
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".mypy_cache", ".ruff_cache"}
#: Repository folders copied beside the package (when present): docs hold the derivations
#: that the docstrings link to; the lint test also checks benchmarks/.
_REPO_DIRS = ("tests", "notebooks", "docs", "benchmarks")
_REPO_FILES = ("pyproject.toml", "README.md")
#: Not copied: the tests of this tool need the solutions.
_NOT_COPIED = {"tests/test_assignments.py"}


class MarkerError(ValueError):
    """A solution region is malformed, missing, or in a file that belongs to no part.

    The message has one ``path:line: problem`` line per problem.
    """


# ----------------------------------------------------------------------------------------------
# Markers
# ----------------------------------------------------------------------------------------------
class Region(NamedTuple):
    """One solution region: the lines of its markers (1-based) and their indentation."""

    path: str
    begin: int
    end: int
    indent: str


def _comments(text):
    """(line, comment text, standalone) for the comments of Python source ``text``."""
    lines = text.splitlines()
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):  # not Python (a notebook cell with magics...)
        return [(i + 1, ln.strip(), True) for i, ln in enumerate(lines)
                if ln.lstrip().startswith("#")], set()
    in_string = set()  # lines inside multi-line strings: their indentation is not code's
    out = []
    for t in toks:
        if t.type == tokenize.STRING and t.end[0] > t.start[0]:
            in_string.update(range(t.start[0] + 1, t.end[0] + 1))
        elif t.type == tokenize.COMMENT:
            row = t.start[0]
            out.append((row, t.string.strip(), lines[row - 1].strip() == t.string.strip()))
    return out, in_string


def _scan(text, path):
    """Find the regions of ``text``; return (regions, problems), problems as 'path:line: ...'."""
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
                problems.append(f"{path}:{row}: '{_BEGIN}' inside the region opened at line "
                                f"{open_[0]}; regions cannot nest")
                depth += 1
                continue
            open_, depth = (row, indent), 1
            continue
        if open_ is None:
            problems.append(f"{path}:{row}: '{_END}' without a '{_BEGIN}' before it")
            continue
        if depth > 1:  # closes a nested BEGIN, already reported
            depth -= 1
            continue
        begin, b_indent = open_
        open_, depth = None, 0
        if indent != b_indent:
            problems.append(f"{path}:{row}: '{_END}' is indented differently from its "
                            f"'{_BEGIN}' at line {begin}")
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
                            f"'{_BEGIN}' (line {begin}); a region must hold whole statements "
                            "of one block")
            continue
        regions.append(Region(path, begin, row, b_indent))
    if open_ is not None:
        problems.append(f"{path}:{open_[0]}: '{_BEGIN}' has no matching '{_END}'")
    return regions, problems


def find_regions(text, path="<text>"):
    """The solution regions of Python source ``text``, in order.

    Raises:
        MarkerError: an END without BEGIN, a BEGIN without END, nested regions, an END indented
            unlike its BEGIN, an empty region, or a region line indented less than its markers;
            the message names ``path:line`` for each problem.
    """
    regions, problems = _scan(text, path)
    if problems:
        raise MarkerError("\n".join(problems))
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


def _enclosing(defs, line):
    inside = [d for d in defs if d.start <= line <= d.end]
    return max(inside, key=lambda d: d.start) if inside else None


def _clean_doc(doc):
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


class _Planned(NamedTuple):
    region: Region
    part: str | None
    qualname: str | None
    hint: str


def _part_of(rel, qualname):
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
    """Plan the regions of one .py file: -> (list of _Planned, problems)."""
    regions, problems = _scan(text, display)
    if not regions:
        return [], problems
    try:
        defs = _defs(ast.parse(text))
    except SyntaxError as e:
        return [], problems + [f"{display}:{e.lineno}: does not parse ({e.msg})"]
    planned = []
    for r in regions:
        d = _enclosing(defs, r.begin)
        func = next((x for x in reversed(defs) if x.start <= r.begin <= x.end
                     and isinstance(x.node, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
        qualname = d.qualname if d else None
        parts = _part_of(rel, qualname)
        if not parts:
            problems.append(f"{display}:{r.begin}: this region belongs to no part; list its "
                            "file in minis2s.assignments.PART_FILES")
            continue
        if len(parts) > 1:
            problems.append(f"{display}:{r.begin}: this region belongs to several parts "
                            f"({', '.join(parts)}); fix minis2s.assignments.PART_FILES")
            continue
        name = func.qualname if func else (qualname or Path(rel).stem)
        doc = _clean_doc(ast.get_docstring(func.node)) if func else ""
        hint = f"TODO: {name}: " + (doc or "see the module's docstring and derivation page.")
        if func:
            defined = _defined_names(func.node, r.begin, r.end)
            if defined:
                hint += f" Compute {', '.join(defined)} (used below)."
        planned.append(_Planned(r, parts[0], name, hint))
    return planned, problems


def _package_dir(root=None):
    """The package directory: ``root`` itself, or ``root/minis2s``, or the installed package."""
    if root is None:
        return Path(__file__).resolve().parent
    root = Path(root)
    if (root / "minis2s" / "__init__.py").is_file():
        return root / "minis2s"
    if (root / "__init__.py").is_file():
        return root
    raise ValueError(f"root must be a minis2s package directory or a folder holding one; got "
                     f"{str(root)!r}, which has no __init__.py nor minis2s/__init__.py")


def _repo_root(pkg):
    """The repository holding the package (its pyproject.toml names minis2s), or None."""
    parent = pkg.parent
    pyproject = parent / "pyproject.toml"
    if pyproject.is_file() and re.search(r'(?m)^name\s*=\s*"minis2s"', pyproject.read_text()):
        return parent
    return None


def _walk(top):
    """Files under ``top`` (sorted), skipping caches and compiled files."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for f in sorted(filenames):
            if not f.endswith((".pyc", ".pyo")):
                yield Path(dirpath) / f


def _plan_package(pkg):
    """-> ({rel path: [planned regions]}, problems) over every .py file of the package."""
    plans, problems = {}, []
    for path in _walk(pkg):
        if path.suffix != ".py":
            continue
        rel = path.relative_to(pkg).as_posix()
        planned, probs = _plan_file(path.read_text(encoding="utf-8"), rel,
                                    f"{pkg.name}/{rel}")
        problems += probs
        if planned:
            plans[rel] = planned
    return plans, problems


def _missing_part_regions(pkg, plans, parts):
    problems = []
    for part in parts:
        main = PART_FILES[part][0]
        if not (pkg / main).is_file():
            problems.append(f"{pkg.name}/{main}:1: missing; part {part!r} needs it")
        elif not any(p.part == part for p in plans.get(main, [])):
            problems.append(f"{pkg.name}/{main}:1: no '{_BEGIN}' region; part {part!r} needs "
                            "at least one")
    return problems


def check_markers(root=None):
    """Check every solution region of a package (and the notebooks beside it), for instructors.

    Args:
        root: a minis2s package directory, or a folder holding ``minis2s/`` (a repository or a
            copy); None: the installed package.

    Returns:
        A list of problems, each ``path:line: what is wrong`` (empty when all is well): broken
        or nested markers, a part's functional module without a region, a region that belongs
        to no part (or to several), a notebook cell with broken markers.
    """
    pkg = _package_dir(root)
    plans, problems = _plan_package(pkg)
    problems += _missing_part_regions(pkg, plans, list(PARTS))
    repo = _repo_root(pkg)
    if repo is not None and (repo / "notebooks").is_dir():
        for nb in _walk(repo / "notebooks"):
            if nb.suffix == ".ipynb":
                problems += _stub_notebook(nb.read_text(encoding="utf-8"),
                                           nb.relative_to(repo).as_posix())[1]
    return problems


# ----------------------------------------------------------------------------------------------
# make
# ----------------------------------------------------------------------------------------------
def _check_parts(parts):
    if parts is None:
        return list(PARTS)
    if isinstance(parts, str):
        parts = parts.split(",")
    try:
        names = [str(p).strip() for p in parts]
    except TypeError:
        raise TypeError(f"parts must be a list of part names or None; got "
                        f"{type(parts).__name__}") from None
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"parts must name at least one part; choose from {', '.join(PARTS)}")
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"unknown part{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; choose from {', '.join(PARTS)}")
    return [p for p in PARTS if p in names]


def _transform(text, planned, stub_parts):
    """Replace the regions of ``stub_parts`` by a TODO and a raise; drop the other markers."""
    lines = text.splitlines(keepends=True)
    newline = "\n"
    out, i = [], 0
    for p in planned:
        r = p.region
        out += lines[i: r.begin - 1]
        if p.part in stub_parts:
            width = max(40, 99 - len(r.indent))
            # keep short parenthesised groups, such as shapes "(B, T, S)", on one line
            hint = re.sub(r"\([^()]{1,30}\)", lambda m: m.group(0).replace(" ", "\0"), p.hint)
            wrapped = textwrap.wrap(hint, width=width - 2, subsequent_indent="  ",
                                    break_on_hyphens=False, break_long_words=False)
            out += [f"{r.indent}# {ln.replace(chr(0), ' ')}{newline}" for ln in wrapped]
            msg = json.dumps(f"TODO: implement {p.qualname} (part {p.part})", ensure_ascii=False)
            line = f"{r.indent}raise NotImplementedError({msg}){newline}"
            if len(line) > 100:
                line = (f"{r.indent}raise NotImplementedError({newline}"
                        f"{r.indent}    {msg}){newline}")
            out.append(line)
        else:
            out += lines[r.begin: r.end - 1]
        i = r.end
    out += lines[i:]
    return "".join(out)


def _stub_notebook(text, display):
    """Stub every region in the code cells of a notebook -> (new text or None, problems)."""
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
        regions, probs = _scan(src, f"{display} (cell {k + 1})")
        problems += probs
        if not regions or probs:
            continue
        lines = src.splitlines(keepends=True)
        new, i = [], 0
        for r in regions:
            new += lines[i: r.begin - 1]
            new.append(f"{r.indent}# TODO: complete this cell\n")
            msg = json.dumps(f"TODO: complete cell {k + 1} of {Path(display).name}",
                             ensure_ascii=False)
            new.append(f"{r.indent}raise NotImplementedError({msg})\n")
            i = r.end
        new += lines[i:]
        new_src = "".join(new)
        cell["source"] = new_src.splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
        changed = True
    if not changed:
        return None, problems
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n", problems


def _version(pkg):
    m = re.search(r'(?m)^__version__\s*=\s*["\']([^"\']+)["\']',
                  (pkg / "__init__.py").read_text(encoding="utf-8"))
    return m.group(1) if m else "unknown"


def _prepare_out(out, force, protected):
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a directory")
    resolved = out.resolve()
    for k, p in enumerate(protected):
        p = p.resolve()
        # never the source or a folder above it; nor anywhere inside the package (k == 0)
        if resolved == p or resolved in p.parents or (k == 0 and p in resolved.parents):
            raise ValueError(f"out_dir {str(out)!r} would overwrite the source at {str(p)!r}; "
                             "choose another directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ValueError(f"out_dir {str(out)!r} is not empty; pass force=True (--force) to "
                             "write over it")
        # Remove only what a copy consists of, so a wrong --force cannot wipe unrelated files.
        for name in ("minis2s",) + _REPO_DIRS:
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        for name in _REPO_FILES + (MANIFEST,):
            if (out / name).is_file():
                (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)


def make(out_dir, parts=None, force=False, *, source=None):
    """Write a student copy to ``out_dir`` with the solutions of ``parts`` blanked out.

    The copy holds the whole ``minis2s`` package and, when the package sits in its repository,
    ``tests/`` (without this tool's own tests), ``notebooks/``, ``docs/``, ``benchmarks/``,
    ``pyproject.toml`` and ``README.md``. In the files of the chosen parts each solution
    region becomes, at the region's indentation,
    ``# TODO: <function>: <its docstring's first sentence> ...`` and
    ``raise NotImplementedError("TODO: implement <function> (part <part>)")``. The regions
    of the other parts keep their code; their marker lines are removed. Code cells of notebooks
    have every region stubbed and their outputs cleared. A manifest, :data:`MANIFEST`, records
    the parts, the stubbed regions, the files and the minis2s version.

    Args:
        out_dir: the folder to write (created if needed).
        parts: a list of names from :data:`PARTS` (or a comma-separated string); None: all.
        force: write into a non-empty ``out_dir``. Its previous copy (``minis2s/``, the
            repository folders and the top files) is replaced; other files are kept.
        source: the package to copy (a package directory or a folder holding ``minis2s/``);
            None: the installed package.

    Returns:
        The manifest, a dict.

    Raises:
        ValueError: unknown part names (the message lists the choices), or a non-empty
            ``out_dir`` without ``force`` (the message names it).
        MarkerError: broken markers anywhere in the package, a region that belongs to no part,
            or a chosen part's functional module without a region (``path:line`` each).
    """
    parts = _check_parts(parts)
    pkg = _package_dir(source).resolve()
    repo = _repo_root(pkg)
    out = Path(out_dir)
    plans, problems = _plan_package(pkg)
    problems += _missing_part_regions(pkg, plans, parts)
    # Transform everything in memory first: nothing is written when a marker is broken.
    files = {}  # relative path in the copy -> new text (None: copy the bytes of the source)
    sources = {}
    stubbed = {p: [] for p in parts}
    for path in _walk(pkg):
        rel = path.relative_to(pkg).as_posix()
        dest = f"minis2s/{rel}"
        sources[dest] = path
        files[dest] = None
        if rel in plans:
            new = _transform(path.read_text(encoding="utf-8"), plans[rel], set(parts))
            try:
                compile(new, dest, "exec")
            except SyntaxError as e:
                problems.append(f"{dest}:{e.lineno}: the stubbed file does not compile "
                                f"({e.msg}); a region must hold whole statements")
            files[dest] = new
            for p in plans[rel]:
                if p.part in stubbed:
                    stubbed[p.part].append(f"{dest}:{p.region.begin} {p.qualname}")
    if repo is not None:
        for d in _REPO_DIRS:
            if not (repo / d).is_dir():
                continue
            for path in _walk(repo / d):
                rel = path.relative_to(repo).as_posix()
                if rel in _NOT_COPIED:
                    continue
                sources[rel] = path
                files[rel] = None
                if path.suffix == ".ipynb":
                    new, probs = _stub_notebook(path.read_text(encoding="utf-8"), rel)
                    problems += probs
                    files[rel] = new
        for f in _REPO_FILES:
            if (repo / f).is_file():
                sources[f] = repo / f
                files[f] = None
    if problems:
        raise MarkerError("\n".join(problems))
    _prepare_out(out, force, [pkg] + ([repo] if repo is not None else []))
    for rel, text in files.items():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            shutil.copyfile(sources[rel], dest)
        else:
            dest.write_text(text, encoding="utf-8")
    manifest = {
        "tool": "minis2s assignment make",
        "minis2s_version": _version(pkg),
        "parts": parts,
        "markers": "stubbed in the parts listed; removed (code kept) elsewhere",
        "stubbed": stubbed,
        "files": sorted(files),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


# ----------------------------------------------------------------------------------------------
# grade (parent side: never imports the student's code)
# ----------------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """One check of a part: its name, whether it passed, and a short detail or reason."""

    name: str
    passed: bool
    detail: str = ""


@dataclass
class PartResult:
    """The grade of one part."""

    part: str
    checks: list = field(default_factory=list)
    error: str | None = None  # the part could not be graded at all (timeout, crash, import)
    seconds: float = 0.0

    @property
    def n_total(self):
        return len(self.checks)

    @property
    def n_passed(self):
        return sum(c.passed for c in self.checks)

    @property
    def passed(self):
        return self.error is None and self.n_total > 0 and self.n_passed == self.n_total

    @property
    def score(self):
        """The fraction of the part's checks that passed."""
        return self.n_passed / self.n_total if self.n_total else 0.0

    @property
    def reason(self):
        """Why the part fails ("" when it passes): the error, or the first failed check."""
        if self.error:
            return self.error
        failed = [c for c in self.checks if not c.passed]
        return failed[0].detail if failed else ""


_SENTINEL = "MINIS2S-GRADE-RESULT "
_BOOTSTRAP = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_minis2s_grader', sys.argv[1])\n"
    "mod = importlib.util.module_from_spec(spec)\n"
    "sys.modules['_minis2s_grader'] = mod\n"
    "spec.loader.exec_module(mod)\n"
    "sys.exit(mod._child_main(sys.argv[2], sys.argv[3]))\n"
)


def _check_copy(dir):
    d = Path(dir)
    if not (d / "minis2s" / "__init__.py").is_file():
        raise ValueError(f"dir {str(dir)!r} is not a student copy: it has no "
                         "minis2s/__init__.py (make one with: minis2s assignment make OUT_DIR)")
    return d.resolve()


def _manifest_parts(d):
    try:
        parts = json.loads((d / MANIFEST).read_text(encoding="utf-8"))["parts"]
        return _check_parts(parts)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _child_env(d):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(d), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0",
               MINIS2S_BACKEND="numpy", MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _grade_one(d, part, timeout):
    import tempfile

    # -s: no user site-packages; -P (3.11+): no script/cwd directory on sys.path; the scrubbed
    # environment keeps only PYTHONPATH=<copy>, which puts the copy's minis2s first. The child
    # still checks where minis2s came from.
    flags = ["-s", "-B"] + (["-P"] if sys.version_info >= (3, 11) else [])
    cmd = [sys.executable, *flags, "-c", _BOOTSTRAP, str(Path(__file__).resolve()), str(d), part]
    names = [name for name, _ in _CHECKS[part]]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minis2s-grade-") as cwd:
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=_child_env(d), capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            reason = f"timed out after {timeout:g} s"
            return PartResult(part, [CheckResult(n, False, reason) for n in names], reason,
                              time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_SENTINEL)]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        reason = f"the grading process died (exit status {proc.returncode}): {tail}"[:200]
        return PartResult(part, [CheckResult(n, False, reason) for n in names], reason, seconds)
    data = json.loads(lines[-1][len(_SENTINEL):])
    checks = [CheckResult(c["name"], bool(c["passed"]), c.get("detail", "")) for c in
              data["checks"]]
    return PartResult(part, checks, data.get("error"), seconds)


def grade(dir, parts=None, timeout=300.0):
    """Grade the student copy in ``dir``, part by part.

    Each part runs in its own Python process (``sys.executable``, in an empty temporary
    folder, with user site-packages off and an environment whose only ``PYTHONPATH`` is
    ``dir``), which imports the copy's ``minis2s``, verifies that it did (and fails the part
    clearly otherwise), runs the part's checks and prints one JSON line. This process never
    imports the copy's code. Parts run two at a time at most.

    Args:
        dir: the copy (a folder holding ``minis2s/``), e.g. made by :func:`make`.
        parts: names from :data:`PARTS`; None: the parts in the copy's manifest, or all parts
            when it has none.
        timeout: seconds allowed to each part's process.

    Returns:
        A list of :class:`PartResult`, one per part, in the order of :data:`PARTS`.

    Raises:
        ValueError: ``dir`` holds no minis2s package (the message names it), unknown parts, or
            a timeout that is not positive.
    """
    d = _check_copy(dir)
    if parts is None:
        parts = _manifest_parts(d) or list(PARTS)
    parts = _check_parts(parts)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
    workers = max(1, min(len(parts), os.cpu_count() or 1, 2))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: _grade_one(d, p, float(timeout)), parts))


def grade_cli(dir, parts=None, timeout=300.0):
    """Grade ``dir`` (see :func:`grade`), print a score table, and return the exit status.

    Returns:
        0 when every graded part passes all of its checks, else 1.

    Raises:
        ValueError: as :func:`grade` (the command line turns it into one line and status 2).
    """
    t0 = time.perf_counter()
    results = grade(dir, parts=parts, timeout=timeout)
    width = max(len("part"), *(len(r.part) for r in results))
    print(f"grading {dir}")
    print(f"{'part':<{width}}  checks  score  result")
    for r in results:
        checks = f"{r.n_passed}/{r.n_total}"
        status = "pass" if r.passed else f"FAIL  {r.reason}"
        print(f"{r.part:<{width}}  {checks:>6}  {r.score:>5.0%}  {status}")
    n_pass = sum(r.n_passed for r in results)
    n_total = sum(r.n_total for r in results)
    parts_ok = sum(r.passed for r in results)
    score = n_pass / n_total if n_total else 0.0
    print(f"{'total':<{width}}  {f'{n_pass}/{n_total}':>6}  {score:>5.0%}  "
          f"{parts_ok} of {len(results)} parts pass ({time.perf_counter() - t0:.1f} s)")
    return 0 if parts_ok == len(results) else 1


# ----------------------------------------------------------------------------------------------
# The grading process (child side). Everything below runs in the child, with the student's
# minis2s on sys.path. It uses NumPy directly: it is the grader, not model math.
# ----------------------------------------------------------------------------------------------
TOL = 1e-6  # float64 gradient checks, as in the test suite


class _Fail(Exception):
    """A check failed for the reason in its message."""


def _np():
    import numpy

    return numpy


def _mod(name):
    import importlib

    return importlib.import_module(f"minis2s.{name}")


def _num_grad(f, x, h=1e-5):
    """Centred differences of the scalar f() with respect to the array x (perturbed in place)."""
    np = _np()
    g = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(*x.shape):
        old = x[ix]
        x[ix] = old + h
        fp = f()
        x[ix] = old - h
        fm = f()
        x[ix] = old
        g[ix] = (fp - fm) / (2 * h)
    return g


def _rel_error(a, n):
    """max |a − n| / max(max |a|, max |n|): the scale of the whole gradient (0 when both are 0)."""
    np = _np()
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(n), initial=0.0)))
    return float(np.max(np.abs(a - n), initial=0.0)) / scale if scale > 0 else 0.0


def _as64(name, a, shape):
    np = _np()
    if a is None:
        raise _Fail(f"{name} is None")
    a = np.asarray(a)
    if tuple(a.shape) != tuple(shape):
        raise _Fail(f"{name} has shape {tuple(a.shape)}; expected {tuple(shape)}")
    return a.astype(np.float64)


def _gradcheck(label, loss, inputs, analytic):
    """Compare analytic gradients with centred differences of loss() for each named input.

    ``analytic`` maps the same names to the gradients computed by the backward pass (before
    any perturbation).
    """
    worst = 0.0
    for name, x in inputs.items():
        a = _as64(f"{label} d{name}", analytic.get(name), x.shape)
        err = _rel_error(a, _num_grad(loss, x))
        if not err <= TOL:
            raise _Fail(f"{label} d{name} rel error {err:.1e}")
        worst = max(worst, err)
    return f"max rel error {worst:.1e}"


def _close(label, got, want, atol=1e-9):
    np = _np()
    got = _as64(label, got, want.shape)
    if not np.all(np.isfinite(got)):
        raise _Fail(f"{label} is not finite")
    err = float(np.max(np.abs(got - want), initial=0.0))
    if err > atol * max(1.0, float(np.max(np.abs(want), initial=0.0))):
        raise _Fail(f"{label} differs from the reference by {err:.1e}")
    return err


def _rng(seed=0):
    return _np().random.default_rng(seed)


def _dot(loss_out, dout):
    np = _np()
    return float(np.sum(np.asarray(loss_out, dtype=np.float64) * dout))


class _Adam:
    """Adam on a dict of float64 arrays (the grader's own, for the learning checks)."""

    def __init__(self, params, lr):
        np = _np()
        self.params, self.lr, self.t = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads):
        np = _np()
        self.t += 1
        for k, p in self.params.items():
            g = _as64(f"gradient of {k}", grads[k], p.shape)
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            mh = self.m[k] / (1 - 0.9 ** self.t)
            vh = self.v[k] / (1 - 0.999 ** self.t)
            p -= self.lr * mh / (np.sqrt(vh) + 1e-8)


def _learns(label, losses, factor=0.5):
    np = _np()
    first, last = losses[0], losses[-1]
    if not (np.isfinite(first) and np.isfinite(last)):
        raise _Fail(f"{label}: the loss is not finite ({first:.3g} -> {last:.3g})")
    if not last < factor * first:
        raise _Fail(f"{label}: the loss fell only from {first:.3g} to {last:.3g} in "
                    f"{len(losses) - 1} steps (needs < {factor:g}x)")
    return f"loss {first:.3g} -> {last:.3g} in {len(losses) - 1} steps"


def _softmax(e, axis=-1):
    np = _np()
    z = np.exp(e - e.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def _log_softmax(o):
    np = _np()
    s = o - o.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _masked_softmax(e, mask):
    """Softmax over the last axis where mask (broadcast) is true; exactly 0 elsewhere."""
    np = _np()
    z = np.where(mask, e, -np.inf)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _masked_softmax_backward(dalpha, alpha):
    return alpha * (dalpha - (alpha * dalpha).sum(axis=-1, keepdims=True))


def _sigmoid(a):
    np = _np()
    return 0.5 * (1 + np.tanh(0.5 * a))


def _lengths_mask(lengths, T):
    np = _np()
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


# --- linear ----------------------------------------------------------------------------------
def _linear_value():
    lin = _mod("functional.linear")
    r = _rng(1)
    x = r.standard_normal((3, 4, 5))
    x[2, 2:] = 0  # padded positions
    W, b = r.standard_normal((5, 4)), r.standard_normal(4)
    _close("linear_forward(x, W, b)", lin.linear_forward(x, W, b)[0], x @ W + b)
    _close("linear_forward(x, W, None)", lin.linear_forward(x, W, None)[0], x @ W)
    return "y = x W + b, with and without b"


def _linear_grad():
    lin = _mod("functional.linear")
    r = _rng(2)
    x = r.standard_normal((3, 4, 5))
    x[1, 3:] = 0
    W, b = r.standard_normal((5, 4)), r.standard_normal(4)
    dy = r.standard_normal((3, 4, 4))
    y, cache = lin.linear_forward(x, W, b)
    dx, dW, db = lin.linear_backward(dy, cache)
    analytic = {"x": _np().array(dx), "W": _np().array(dW), "b": _np().array(db)}
    return _gradcheck("linear_backward", lambda: _dot(lin.linear_forward(x, W, b)[0], dy),
                      {"x": x, "W": W, "b": b}, analytic)


def _linear_learns():
    lin = _mod("functional.linear")
    np = _np()
    r = _rng(3)
    X = r.standard_normal((32, 3))
    Y = X @ r.standard_normal((3, 2)) + r.standard_normal(2)
    p = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    opt, losses = _Adam(p, 0.1), []
    for _ in range(41):
        y, cache = lin.linear_forward(X, p["W"], p["b"])
        diff = np.asarray(y) - Y
        losses.append(0.5 * float((diff ** 2).sum()) / len(X))
        _, dW, db = lin.linear_backward(diff / len(X), cache)
        opt.step({"W": dW, "b": db})
    return _learns("least squares with linear_forward/backward", losses, 0.2)


# --- embedding -------------------------------------------------------------------------------
def _embedding_ids():
    np = _np()
    return np.array([[5, 3, 5, 4], [3, 3, 0, 0], [4, 0, 0, 0]])  # repeats and PAD (0)


def _embedding_value():
    emb = _mod("functional.embedding")
    ids = _embedding_ids()
    W = _rng(4).standard_normal((6, 3))
    _close("embedding_forward", emb.embedding_forward(ids, W)[0], W[ids])
    return "out = W[ids]"


def _embedding_grad():
    emb = _mod("functional.embedding")
    ids = _embedding_ids()
    r = _rng(5)
    W, dout = r.standard_normal((6, 3)), r.standard_normal((3, 4, 3))
    _, cache = emb.embedding_forward(ids, W)
    dW = _np().array(emb.embedding_backward(dout, cache))
    return _gradcheck("embedding_backward", lambda: _dot(emb.embedding_forward(ids, W)[0], dout),
                      {"W": W}, {"W": dW})


def _embedding_learns():
    emb = _mod("functional.embedding")
    np = _np()
    ids = _embedding_ids()
    r = _rng(6)
    target_rows = r.standard_normal((6, 3))
    target = target_rows[ids]
    p = {"W": np.zeros((6, 3))}
    opt, losses = _Adam(p, 0.1), []
    for _ in range(41):
        out, cache = emb.embedding_forward(ids, p["W"])
        diff = np.asarray(out) - target
        losses.append(0.5 * float((diff ** 2).sum()))
        opt.step({"W": emb.embedding_backward(diff, cache)})
    return _learns("fitting rows with embedding_forward/backward", losses, 0.2)


# --- loss ------------------------------------------------------------------------------------
def _ce_batch(seed):
    np = _np()
    r = _rng(seed)
    logits = r.standard_normal((3, 4, 5))
    targets = r.integers(1, 5, size=(3, 4))
    mask = _lengths_mask([4, 2, 1], 4)
    targets = np.where(mask, targets, 0)
    return logits, targets, mask


def _ce_reference(logits, targets, mask):
    np = _np()
    logp = _log_softmax(logits)
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return -(picked * mask).sum() / mask.sum()


def _loss_softmax_value():
    loss = _mod("functional.loss")
    np = _np()
    o = _rng(7).standard_normal((2, 3, 5))
    o[0, 0] = [1e4, -1e4, 0.0, 3.0, 1e4]  # extreme logits must stay finite
    _close("softmax", loss.softmax(o), _softmax(o))
    _close("log_softmax", loss.log_softmax(o), np.maximum(_log_softmax(o), -1e300), atol=1e-9)
    return "softmax and log_softmax, stable for logits of ±1e4"


def _loss_ce_value():
    loss = _mod("functional.loss")
    logits, targets, mask = _ce_batch(8)
    L, _ = loss.softmax_cross_entropy_forward(logits, targets, mask)
    _close("softmax_cross_entropy_forward", _np().asarray(L).reshape(()),
           _np().asarray(_ce_reference(logits, targets, mask)))
    return "mean NLL over the real (mask) tokens"


def _loss_ce_grad():
    loss = _mod("functional.loss")
    logits, targets, mask = _ce_batch(9)
    _, cache = loss.softmax_cross_entropy_forward(logits, targets, mask)
    d = _np().array(loss.softmax_cross_entropy_backward(cache, 0.7))
    return _gradcheck(
        "softmax_cross_entropy_backward",
        lambda: 0.7 * float(loss.softmax_cross_entropy_forward(logits, targets, mask)[0]),
        {"logits": logits}, {"logits": d})


def _loss_learns():
    loss = _mod("functional.loss")
    np = _np()
    r = _rng(10)
    X = r.standard_normal((3, 4, 6))
    _, targets, mask = _ce_batch(11)
    p = {"W": np.zeros((6, 5))}
    opt, losses = _Adam(p, 0.1), []
    for _ in range(41):
        logits = X @ p["W"]
        L, cache = loss.softmax_cross_entropy_forward(logits, targets, mask)
        losses.append(float(L))
        dlogits = np.asarray(loss.softmax_cross_entropy_backward(cache))
        opt.step({"W": np.einsum("btd,btv->dv", X, dlogits)})
    return _learns("a softmax classifier with softmax_cross_entropy_forward/backward", losses)


# --- gru -------------------------------------------------------------------------------------
def _gru_params(r, D, H, num_layers=1, dirs=1):
    p = {}
    for layer in range(num_layers):
        d_in = D if layer == 0 else H * dirs
        for d in range(dirs):
            k = f"l{layer}{'_reverse' if d else ''}"
            p[f"weight_ih_{k}"] = r.uniform(-0.6, 0.6, (3 * H, d_in))
            p[f"weight_hh_{k}"] = r.uniform(-0.6, 0.6, (3 * H, H))
            p[f"bias_ih_{k}"] = r.uniform(-0.6, 0.6, 3 * H)
            p[f"bias_hh_{k}"] = r.uniform(-0.6, 0.6, 3 * H)
    return p


def _ref_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    np = _np()
    H = h.shape[-1]
    gi, gh = x @ W_ih.T + b_ih, h @ W_hh.T + b_hh
    r = _sigmoid(gi[..., :H] + gh[..., :H])
    z = _sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
    n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
    return (1 - z) * n + z * h


def _ref_gru(x, h0, lengths, p, num_layers, dirs):
    """Row by row, each run alone over its real steps (packed-sequence semantics)."""
    np = _np()
    B, T, _ = x.shape
    H = p["weight_hh_l0"].shape[1]
    out = np.zeros((B, T, H * dirs))
    h_n = np.zeros((num_layers * dirs, B, H))
    for b in range(B):
        L = int(lengths[b])
        inp = x[b, :L]
        for layer in range(num_layers):
            outs = []
            for d in range(dirs):
                k = f"l{layer}{'_reverse' if d else ''}"
                w = [p[f"{n}_{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                h = np.zeros(H) if h0 is None else h0[layer * dirs + d, b]
                states = np.zeros((L, H))
                for t in (range(L - 1, -1, -1) if d else range(L)):
                    h = _ref_cell(inp[t], h, *w)
                    states[t] = h
                h_n[layer * dirs + d, b] = h
                outs.append(states)
            inp = np.concatenate(outs, axis=1)
        out[b, :L] = inp
    return out, h_n


def _gru_cell_value():
    gru = _mod("functional.gru")
    r = _rng(12)
    x, h = r.standard_normal((3, 4)), r.standard_normal((3, 5))
    w = [r.uniform(-0.6, 0.6, s) for s in ((15, 4), (15, 5), (15,), (15,))]
    _close("gru_cell_forward h", gru.gru_cell_forward(x, h, *w)[0], _ref_cell(x, h, *w))
    return "h' = (1 − z) n + z h"


def _gru_cell_grad():
    gru = _mod("functional.gru")
    np = _np()
    r = _rng(13)
    x, h = r.standard_normal((3, 4)), r.standard_normal((3, 5))
    w = [r.uniform(-0.6, 0.6, s) for s in ((15, 4), (15, 5), (15,), (15,))]
    dh = r.standard_normal((3, 5))
    _, cache = gru.gru_cell_forward(x, h, *w)
    got = [np.array(g) for g in gru.gru_cell_backward(dh, cache)]
    names = ["x", "h_prev", "W_ih", "W_hh", "b_ih", "b_hh"]
    return _gradcheck("gru_cell_backward", lambda: _dot(gru.gru_cell_forward(x, h, *w)[0], dh),
                      dict(zip(names, [x, h, *w])), dict(zip(names, got)))


def _gru_seq_setup(seed, num_layers, bidirectional, padded):
    np = _np()
    r = _rng(seed)
    B, T, D, H = 3, 4, 3, 3
    dirs = 2 if bidirectional else 1
    lengths = np.array([4, 2, 1]) if padded else np.full(B, T)
    x = r.standard_normal((B, T, D))
    x[~_lengths_mask(lengths, T)] = 0
    h0 = r.standard_normal((num_layers * dirs, B, H))
    p = _gru_params(r, D, H, num_layers, dirs)
    mask = _lengths_mask(lengths, T) if padded else None
    return x, h0, mask, lengths, p, dirs


def _gru_seq_value():
    gru = _mod("functional.gru")
    x, h0, mask, lengths, p, dirs = _gru_seq_setup(14, 2, True, True)
    out, h_n, _ = gru.gru_forward(x, h0, mask, p, 2, True)
    ref_out, ref_h = _ref_gru(x, h0, lengths, p, 2, dirs)
    _close("gru_forward out (2 layers, bidirectional, padded)", out, ref_out)
    _close("gru_forward h_n (2 layers, bidirectional, padded)", h_n, ref_h)
    return "out and h_n equal each row run alone"


def _gru_seq_grad(num_layers, bidirectional, padded):
    gru = _mod("functional.gru")
    np = _np()
    x, h0, mask, _, p, dirs = _gru_seq_setup(15 + num_layers, num_layers, bidirectional, padded)
    r = _rng(16)
    dout = r.standard_normal((3, 4, 3 * dirs))
    dh_n = r.standard_normal(h0.shape)

    def loss():
        out, h_n, _ = gru.gru_forward(x, h0, mask, p, num_layers, bidirectional)
        return _dot(out, dout) + _dot(h_n, dh_n)

    _, _, cache = gru.gru_forward(x, h0, mask, p, num_layers, bidirectional)
    dx, dh0, grads = gru.gru_backward(dout, dh_n, cache)
    grads = grads if isinstance(grads, dict) else {}
    analytic = {"x": np.array(dx), "h0": np.array(dh0)}
    analytic.update({k: np.array(v) for k, v in grads.items()})
    return _gradcheck("gru_backward", loss, {"x": x, "h0": h0, **p}, analytic)


def _gru_step_value_and_grad():
    gru = _mod("functional.gru")
    np = _np()
    r = _rng(17)
    B, D, H, L = 3, 4, 3, 2
    x, h = r.standard_normal((B, D)), r.standard_normal((L, B, H))
    p = _gru_params(r, D, H, L, 1)
    out, h_new, cache = gru.gru_stack_step_forward(x, h, p, L)
    ref = [_ref_cell(x, h[0], *(p[f"{n}_l0"] for n in ("weight_ih", "weight_hh", "bias_ih",
                                                         "bias_hh")))]
    ref.append(_ref_cell(ref[0], h[1], *(p[f"{n}_l1"] for n in ("weight_ih", "weight_hh",
                                                                 "bias_ih", "bias_hh"))))
    _close("gru_stack_step_forward h_new", h_new, np.stack(ref))
    _close("gru_stack_step_forward out_t", out, ref[1])
    dout, dh = r.standard_normal((B, H)), r.standard_normal((L, B, H))

    def loss():
        o, hn, _ = gru.gru_stack_step_forward(x, h, p, L)
        return _dot(o, dout) + _dot(hn, dh)

    dx, dh_prev, grads = gru.gru_stack_step_backward(dout, dh, cache)
    grads = grads if isinstance(grads, dict) else {}
    analytic = {"x_t": np.array(dx), "h": np.array(dh_prev)}
    analytic.update({k: np.array(v) for k, v in grads.items()})
    return _gradcheck("gru_stack_step_backward", loss, {"x_t": x, "h": h, **p}, analytic)


def _gru_learns():
    """A tiny seq2seq built from the GRU ops (one-hot inputs and a NumPy softmax read-out):
    reverse four padded sequences; the loss must fall."""
    gru = _mod("functional.gru")
    np = _np()
    r = _rng(18)
    V, H = 7, 10
    src = np.array([[3, 4, 5], [5, 6, 0], [4, 0, 0], [6, 3, 0]])
    lengths = (src != 0).sum(1)
    T = 5  # BOS, up to 3 tokens, EOS
    tgt = np.zeros((4, T), dtype=np.int64)
    for b in range(4):
        seq = [1] + list(src[b, :lengths[b]][::-1]) + [2]
        tgt[b, :len(seq)] = seq
    eye = np.eye(V)
    x, dec_in = eye[src], eye[tgt[:, :-1]]
    x[src == 0] = 0
    y, m = tgt[:, 1:], (tgt[:, 1:] != 0)
    enc, dec = _gru_params(r, V, H), _gru_params(r, V, H)
    params = {**{f"enc.{k}": v for k, v in enc.items()}, **{f"dec.{k}": v for k, v in dec.items()},
              "W_out": r.uniform(-0.3, 0.3, (H, V)), "b_out": np.zeros(V)}
    opt, losses = _Adam(params, 0.05), []
    for _ in range(61):
        _, h_n, ecache = gru.gru_forward(x, None, src != 0, enc, 1, False)
        h, outs, caches = np.asarray(h_n), [], []
        for t in range(T - 1):
            o, h, c = gru.gru_stack_step_forward(dec_in[:, t], h, dec, 1)
            outs.append(np.asarray(o))
            caches.append(c)
        O = np.stack(outs, axis=1)  # (B, T-1, H)
        logits = O @ params["W_out"] + params["b_out"]
        losses.append(float(_ce_reference(logits, y, m)))
        dlogits = _softmax(logits)
        np.put_along_axis(dlogits, y[..., None],
                          np.take_along_axis(dlogits, y[..., None], -1) - 1, -1)
        dlogits *= (m / m.sum())[..., None]
        grads = {"W_out": np.einsum("bth,btv->hv", O, dlogits), "b_out": dlogits.sum((0, 1))}
        dO = dlogits @ params["W_out"].T
        dh = np.zeros_like(h)
        dgrads = {k: np.zeros_like(v) for k, v in dec.items()}
        for t in range(T - 2, -1, -1):
            _, dh, g = gru.gru_stack_step_backward(dO[:, t], dh, caches[t])
            for k in dgrads:
                dgrads[k] += g[k]
        _, _, egrads = gru.gru_backward(None, dh, ecache)
        grads.update({f"enc.{k}": egrads[k] for k in enc})
        grads.update({f"dec.{k}": dgrads[k] for k in dec})
        opt.step(grads)
    return _learns("a tiny GRU encoder-decoder reversing padded sequences", losses)


# --- attention -------------------------------------------------------------------------------
def _att_setup(seed, score):
    np = _np()
    r = _rng(seed)
    B, T, S, H, A = 3, 2, 4, 3, 5
    Hs = 4 if score in ("general", "additive") else H
    h, hbar = r.standard_normal((B, T, H)), r.standard_normal((B, S, Hs))
    mask = _lengths_mask([4, 2, 1], S)  # hbar stays nonzero on padding: it must not leak
    shapes = {"dot": {}, "general": {"W": (H, Hs)},
              "additive": {"W1": (Hs, A), "W2": (H, A), "v": (A,)}, "cosine": {"scale": (1,)}}
    params = {k: r.uniform(-0.8, 0.8, s) for k, s in shapes[score].items()}
    if score == "cosine":
        params["scale"] = np.array([3.0])
    return h, hbar, mask, params


def _ref_attention(h, hbar, mask, score, p, eps):
    np = _np()
    if score == "dot":
        e = h @ hbar.transpose(0, 2, 1)
    elif score == "general":
        e = h @ (hbar @ p["W"].T).transpose(0, 2, 1)
    elif score == "additive":
        u = np.tanh((hbar @ p["W1"])[:, None, :, :] + (h @ p["W2"])[:, :, None, :])
        e = u @ p["v"]
    else:
        def unit(a):
            return a / np.sqrt((a * a).sum(-1, keepdims=True) + eps)

        e = p["scale"][0] * unit(h) @ unit(hbar).transpose(0, 2, 1)
    alpha = _masked_softmax(e, mask[:, None, :])
    return alpha @ hbar, alpha


def _att_scores():
    return tuple(getattr(_mod("functional.attention"), "SCORES", None)
                 or ("dot", "general", "additive", "cosine"))


def _att_value():
    att = _mod("functional.attention")
    np = _np()
    eps = float(getattr(att, "COSINE_EPS", 1e-8))
    for k, score in enumerate(_att_scores()):
        h, hbar, mask, p = _att_setup(20 + k, score)
        c, alpha, _ = att.attention_forward(h, hbar, mask, score, p)
        ref_c, ref_alpha = _ref_attention(h, hbar, mask, score, p, eps)
        _close(f"attention_forward ({score}) c", c, ref_c)
        _close(f"attention_forward ({score}) alpha", alpha, ref_alpha)
        if np.any(np.asarray(alpha)[~np.broadcast_to(mask[:, None, :], ref_alpha.shape)] != 0):
            raise _Fail(f"attention_forward ({score}): alpha is not exactly 0 on padding")
    return f"c and alpha for the scores {', '.join(_att_scores())}"


def _att_grad():
    att = _mod("functional.attention")
    np = _np()
    worst = []
    for k, score in enumerate(_att_scores()):
        h, hbar, mask, p = _att_setup(30 + k, score)
        r = _rng(40 + k)
        dc, dalpha = r.standard_normal((3, 2, hbar.shape[2])), r.standard_normal((3, 2, 4))

        def loss(h=h, hbar=hbar, mask=mask, p=p, dc=dc, dalpha=dalpha, score=score):
            c, alpha, _ = att.attention_forward(h, hbar, mask, score, p)
            return _dot(c, dc) + _dot(alpha, dalpha)

        _, _, cache = att.attention_forward(h, hbar, mask, score, p)
        dh, dhbar, dparams = att.attention_backward(dc, dalpha, cache)
        dparams = dparams if isinstance(dparams, dict) else {}
        analytic = {"h": np.array(dh), "hbar": np.array(dhbar)}
        analytic.update({n: np.array(v) for n, v in dparams.items()})
        worst.append(_gradcheck(f"attention_backward ({score})", loss,
                                {"h": h, "hbar": hbar, **p}, analytic))
    return "; ".join(f"{s}: {w}" for s, w in zip(_att_scores(), worst))


def _att_parts_grad():
    """masked_softmax and context, each on its own, with extreme scores."""
    att = _mod("functional.attention")
    np = _np()
    r = _rng(50)
    mask = _lengths_mask([4, 2, 1], 4)
    e = r.standard_normal((3, 2, 4))
    big = e * 1e4
    alpha_big, _ = att.masked_softmax_forward(big, mask)
    _close("masked_softmax_forward (scores ±1e4)", alpha_big,
           _masked_softmax(big, mask[:, None, :]))
    da = r.standard_normal((3, 2, 4))
    _, cache = att.masked_softmax_forward(e, mask)
    de = np.array(att.masked_softmax_backward(da, cache))
    out = [_gradcheck("masked_softmax_backward",
                      lambda: _dot(att.masked_softmax_forward(e, mask)[0], da), {"e": e},
                      {"e": de})]
    alpha, hbar = _masked_softmax(e, mask[:, None, :]), r.standard_normal((3, 4, 5))
    dc = r.standard_normal((3, 2, 5))
    _, cache = att.context_forward(alpha, hbar)
    dalpha, dhbar = att.context_backward(dc, cache)
    out.append(_gradcheck("context_backward",
                          lambda: _dot(att.context_forward(alpha, hbar)[0], dc),
                          {"alpha": alpha, "hbar": hbar},
                          {"alpha": np.array(dalpha), "hbar": np.array(dhbar)}))
    return "; ".join(out)


def _att_keys_path():
    """Step by step with reused keys, then one step-1 backward: same as the whole backward."""
    att = _mod("functional.attention")
    np = _np()
    for k, score in enumerate(_att_scores()):
        h, hbar, mask, p = _att_setup(60 + k, score)
        r = _rng(70 + k)
        dc = r.standard_normal((3, 2, hbar.shape[2]))
        c_all, _, cache = att.attention_forward(h, hbar, mask, score, p)
        dh_all, dhbar_all, dp_all = att.attention_backward(dc, None, cache)
        keys = att.transform_encoder_states(score, hbar, p)
        dhbar = np.zeros_like(hbar)
        dkeys = 0
        dp = {n: np.zeros_like(v) for n, v in p.items()}
        for t in range(h.shape[1]):
            c_t, _, cache_t = att.attention_forward(h[:, t:t + 1], hbar, mask, score, p,
                                                    keys=keys)
            _close(f"attention_forward ({score}, keys reused) c", c_t,
                   np.asarray(c_all)[:, t:t + 1])
            _, dhb, dk, dpt = att.attention_backward_to_keys(dc[:, t:t + 1], None, cache_t)
            dhbar += np.asarray(dhb)
            dkeys = dkeys + np.asarray(dk)
            for n, v in dpt.items():
                dp[n] += np.asarray(v)
        dhb, dpk = att.transform_encoder_states_backward(dkeys, keys)
        dhbar += np.asarray(dhb)
        for n, v in dpk.items():
            dp[n] += np.asarray(v)
        _close(f"attention_backward_to_keys + transform_encoder_states_backward ({score}) dhbar",
               dhbar, np.asarray(dhbar_all))
        for n in p:
            _close(f"step-by-step ({score}) d{n}", dp[n], np.asarray(dp_all[n]))
    return "per-step keys path matches the whole backward"


def _att_learns():
    """Learn the queries h and a general score's W so that each context picks out the
    encoder state at a target position."""
    att = _mod("functional.attention")
    np = _np()
    r = _rng(80)
    B, S, H = 4, 5, 4
    hbar = r.standard_normal((B, S, H))
    mask = _lengths_mask([5, 4, 3, 2], S)
    pos = np.array([3, 1, 2, 0])
    target = hbar[np.arange(B), pos][:, None, :]  # (B, 1, H)
    p = {"h": r.standard_normal((B, 1, H)) * 0.1, "W": r.standard_normal((H, H)) * 0.1}
    opt, losses = _Adam(p, 0.1), []
    for _ in range(61):
        c, _, cache = att.attention_forward(p["h"], hbar, mask, "general", {"W": p["W"]})
        diff = np.asarray(c) - target
        losses.append(0.5 * float((diff ** 2).sum()) / B)
        dh, _, dparams = att.attention_backward(diff / B, None, cache)
        opt.step({"h": dh, "W": dparams["W"]})
    return _learns("attention (general score) learning to point at a position", losses)


# --- pointer ---------------------------------------------------------------------------------
def _cov_setup(seed):
    np = _np()
    r = _rng(seed)
    B, S, H, A = 3, 4, 3, 5
    enc_keys, s = r.standard_normal((B, S, A)), r.standard_normal((B, H))
    mask = _lengths_mask([4, 3, 2], S)
    coverage = np.where(mask, r.uniform(0, 1.5, (B, S)), 0.0)
    w = {"W_s": r.uniform(-0.8, 0.8, (H, A)), "w_c": r.uniform(-0.8, 0.8, A),
         "b_attn": r.uniform(-0.8, 0.8, A), "v": r.uniform(-0.8, 0.8, A)}
    return enc_keys, s, coverage, mask, w


def _ptr_cov_attention():
    ptr = _mod("functional.pointer")
    np = _np()
    enc_keys, s, coverage, mask, w = _cov_setup(90)

    def fwd():
        return ptr.coverage_attention_forward(enc_keys, s, coverage, mask, w["W_s"], w["w_c"],
                                              w["b_attn"], w["v"])

    alpha, _, cache = fwd()
    u = np.tanh(enc_keys + (s @ w["W_s"])[:, None, :] + coverage[..., None] * w["w_c"]
                + w["b_attn"])
    _close("coverage_attention_forward alpha", alpha, _masked_softmax(u @ w["v"], mask))
    dalpha = _rng(91).standard_normal(alpha.shape)
    d_keys, ds, dcov, grads = ptr.coverage_attention_backward(dalpha, cache)
    grads = grads if isinstance(grads, dict) else {}
    analytic = {"enc_keys": np.array(d_keys), "s": np.array(ds), "coverage": np.array(dcov)}
    analytic.update({k: np.array(v) for k, v in grads.items()})
    return _gradcheck("coverage_attention_backward", lambda: _dot(fwd()[0], dalpha),
                      {"enc_keys": enc_keys, "s": s, "coverage": coverage, **w}, analytic)


def _ptr_cov_loss():
    ptr = _mod("functional.pointer")
    np = _np()
    r = _rng(92)
    # alpha and coverage kept apart (|a − c| >= 0.05), where min is differentiable
    alpha = r.uniform(0.0, 1.0, (3, 2, 4))
    coverage = alpha + np.where(r.random(alpha.shape) < 0.5, -1, 1) * r.uniform(0.05, 0.5,
                                                                                alpha.shape)
    weight = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    cov, cache = ptr.coverage_loss_forward(alpha, coverage, weight)
    _close("coverage_loss_forward", cov, np.minimum(alpha, coverage).sum(-1) * weight)
    dcov = r.standard_normal((3, 2))
    da, dc = ptr.coverage_loss_backward(dcov, cache)
    return _gradcheck("coverage_loss_backward",
                      lambda: _dot(ptr.coverage_loss_forward(alpha, coverage, weight)[0], dcov),
                      {"alpha": alpha, "coverage": coverage},
                      {"alpha": np.array(da), "coverage": np.array(dc)})


def _ptr_p_gen():
    ptr = _mod("functional.pointer")
    np = _np()
    r = _rng(93)
    B, T, Hs, H, D = 3, 2, 4, 3, 2
    ins = {"context": r.standard_normal((B, T, Hs)), "s": r.standard_normal((B, T, H)),
           "x": r.standard_normal((B, T, D))}
    w = {"w_h": r.standard_normal(Hs), "w_s": r.standard_normal(H), "w_x": r.standard_normal(D),
         "b_ptr": r.standard_normal(1)}
    args = [ins["context"], ins["s"], ins["x"], w["w_h"], w["w_s"], w["w_x"], w["b_ptr"]]
    p_gen, cache = ptr.p_gen_forward(*args)
    logit = ins["context"] @ w["w_h"] + ins["s"] @ w["w_s"] + ins["x"] @ w["w_x"] + w["b_ptr"]
    _close("p_gen_forward", p_gen, _sigmoid(logit))
    dp = r.standard_normal((B, T))
    dctx, ds, dx, grads = ptr.p_gen_backward(dp, cache)
    grads = grads if isinstance(grads, dict) else {}
    analytic = {"context": np.array(dctx), "s": np.array(ds), "x": np.array(dx)}
    analytic.update({k: np.array(v) for k, v in grads.items()})
    return _gradcheck("p_gen_backward", lambda: _dot(ptr.p_gen_forward(*args)[0], dp),
                      {**ins, **w}, analytic)


def _mixture_setup(seed):
    """A padded batch over V = 5 with OOV source words (ids 5, 6) and repeated words."""
    np = _np()
    r = _rng(seed)
    V = 5
    src = np.array([[4, 5, 4, 6], [3, 5, 0, 0], [6, 0, 0, 0]])
    mask = src != 0
    o = r.standard_normal((3, V))
    l = r.standard_normal(3)
    alpha = _masked_softmax(r.standard_normal((3, 4)), mask)
    return o, l, alpha, src, V


def _ref_log_p(o, l, alpha, src, y):
    np = _np()
    V = o.shape[1]
    logp = _log_softmax(o)
    rows = np.arange(len(y))
    log_sig = np.minimum(l, 0) - np.log1p(np.exp(-np.abs(l)))
    log_sig_neg = np.minimum(-l, 0) - np.log1p(np.exp(-np.abs(l)))
    a = np.where(y < V, log_sig + logp[rows, np.minimum(y, V - 1)], -np.inf)
    pc = (alpha * (src == y[:, None])).sum(-1)
    with np.errstate(divide="ignore"):
        b = np.where(pc > 0, log_sig_neg + np.log(np.where(pc > 0, pc, 1)), -np.inf)
    return np.logaddexp(a, b)


def _ptr_final_distribution():
    ptr = _mod("functional.pointer")
    np = _np()
    o, l, alpha, src, V = _mixture_setup(94)
    n_ext = 7
    P, cache = ptr.final_distribution_forward(o, l, alpha, src, n_ext)
    p = _sigmoid(l)
    ref = np.zeros((3, n_ext))
    ref[:, :V] = p[:, None] * _softmax(o)
    for b in range(3):
        for i in range(4):
            ref[b, src[b, i]] += (1 - p[b]) * alpha[b, i]
    _close("final_distribution_forward P", P, ref)
    dP = _rng(95).standard_normal((3, n_ext))
    do, dl, da = ptr.final_distribution_backward(dP, cache)
    return _gradcheck(
        "final_distribution_backward",
        lambda: _dot(ptr.final_distribution_forward(o, l, alpha, src, n_ext)[0], dP),
        {"vocab_logits": o, "p_gen_logit": l, "alpha": alpha},
        {"vocab_logits": np.array(do), "p_gen_logit": np.array(dl), "alpha": np.array(da)})


def _ptr_nll():
    ptr = _mod("functional.pointer")
    np = _np()
    o, l, alpha, src, V = _mixture_setup(96)
    y = np.array([4, 2, 6])  # in the vocabulary and in the source; vocabulary only; OOV copy
    weight = np.array([1.0, 1.0, 1.0])
    nll, cache = ptr.pointer_nll_forward(o, l, alpha, src, y, weight)
    _close("pointer_nll_forward", nll, -_ref_log_p(o, l, alpha, src, y))
    l_sat = np.array([50.0, -50.0, 50.0])  # saturated p_gen: still finite and exact
    nll_sat, _ = ptr.pointer_nll_forward(o, l_sat, alpha, src, y, weight)
    _close("pointer_nll_forward (p_gen logit ±50)", nll_sat, -_ref_log_p(o, l_sat, alpha, src, y))
    w2 = np.array([1.0, 0.0, 1.0])  # a PAD target
    dnll = _rng(97).standard_normal(3)
    _, cache = ptr.pointer_nll_forward(o, l, alpha, src, y, w2)
    do, dl, da = ptr.pointer_nll_backward(dnll, cache)
    return _gradcheck(
        "pointer_nll_backward",
        lambda: _dot(ptr.pointer_nll_forward(o, l, alpha, src, y, w2)[0], dnll),
        {"vocab_logits": o, "p_gen_logit": l, "alpha": alpha},
        {"vocab_logits": np.array(do), "p_gen_logit": np.array(dl), "alpha": np.array(da)})


def _ptr_learns():
    """Fit vocabulary logits, p_gen logits and attention scores to targets that need both the
    vocabulary and copying (OOV) through pointer_nll_forward/backward."""
    ptr = _mod("functional.pointer")
    np = _np()
    r = _rng(98)
    _, _, _, src, V = _mixture_setup(99)
    mask = src != 0
    y = np.array([5, 2, 6])
    p = {"o": r.standard_normal((3, V)) * 0.1, "l": np.zeros(3),
         "e": r.standard_normal((3, 4)) * 0.1}
    opt, losses = _Adam(p, 0.1), []
    for _ in range(41):
        alpha = _masked_softmax(p["e"], mask)
        nll, cache = ptr.pointer_nll_forward(p["o"], p["l"], alpha, src, y, np.ones(3))
        losses.append(float(np.mean(nll)))
        do, dl, da = ptr.pointer_nll_backward(np.full(3, 1 / 3), cache)
        opt.step({"o": do, "l": dl, "e": _masked_softmax_backward(np.asarray(da), alpha)})
    return _learns("the pointer mixture learning to generate and to copy", losses)


#: part -> [(check name, check function)]; a check returns a detail string or raises.
_CHECKS = {
    "linear": [
        ("linear_forward value", _linear_value),
        ("linear_backward gradients", _linear_grad),
        ("linear learns", _linear_learns),
    ],
    "embedding": [
        ("embedding_forward value", _embedding_value),
        ("embedding_backward gradient", _embedding_grad),
        ("embedding learns", _embedding_learns),
    ],
    "loss": [
        ("softmax and log_softmax values", _loss_softmax_value),
        ("softmax_cross_entropy_forward value", _loss_ce_value),
        ("softmax_cross_entropy_backward gradient", _loss_ce_grad),
        ("cross-entropy learns", _loss_learns),
    ],
    "gru": [
        ("gru_cell_forward value", _gru_cell_value),
        ("gru_cell_backward gradients", _gru_cell_grad),
        ("gru_forward value (padded, 2 layers, bidirectional)", _gru_seq_value),
        ("gru_backward gradients (1 layer, no padding)", lambda: _gru_seq_grad(1, False, False)),
        ("gru_backward gradients (padded, 2 layers, bidirectional)",
         lambda: _gru_seq_grad(2, True, True)),
        ("gru_stack_step value and gradients", _gru_step_value_and_grad),
        ("GRU encoder-decoder learns", _gru_learns),
    ],
    "attention": [
        ("attention_forward values (every score)", _att_value),
        ("attention_backward gradients (every score)", _att_grad),
        ("masked_softmax and context gradients", _att_parts_grad),
        ("step-by-step keys path", _att_keys_path),
        ("attention learns", _att_learns),
    ],
    "pointer": [
        ("coverage attention value and gradients", _ptr_cov_attention),
        ("coverage loss value and gradients", _ptr_cov_loss),
        ("p_gen value and gradients", _ptr_p_gen),
        ("final distribution value and gradients", _ptr_final_distribution),
        ("pointer NLL value and gradients", _ptr_nll),
        ("pointer mixture learns", _ptr_learns),
    ],
}


def _short(e, copy_dir):
    """'Type: message' of an exception, with where in the copy it was raised."""
    msg = str(e).replace("\n", " ").strip()
    if isinstance(e, _Fail):
        return msg
    text = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    if not isinstance(e, (NotImplementedError, _Fail)):
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if Path(f.filename).resolve().is_relative_to(copy_dir)]
        if frames:
            f = frames[-1]
            rel = Path(f.filename).resolve().relative_to(copy_dir).as_posix()
            text += f" (at {rel}:{f.lineno} in {f.name})"
    return text if len(text) <= 220 else text[:217] + "..."


def _child_main(copy_dir, part):
    """The grading process: import the copy's minis2s, run one part's checks, print JSON."""
    copy_dir = Path(copy_dir).resolve()
    checks = _CHECKS[part]
    result = {"part": part, "error": None, "checks": []}
    try:
        import minis2s

        where = Path(minis2s.__file__).resolve()
        if not where.is_relative_to(copy_dir):
            raise RuntimeError(f"imported minis2s from {where.parent}, not from the copy at "
                               f"{copy_dir}; grading stopped")
    except Exception as e:  # the copy does not import (a syntax error...): every check fails
        result["error"] = f"import minis2s failed: {_short(e, copy_dir)}"
        result["checks"] = [{"name": n, "passed": False, "detail": result["error"]}
                            for n, _ in checks]
    else:
        import warnings

        import numpy

        warnings.simplefilter("ignore")
        numpy.seterr(all="ignore")
        for name, fn in checks:
            try:
                detail, passed = fn(), True
            except Exception as e:
                detail, passed = _short(e, copy_dir), False
            result["checks"].append({"name": name, "passed": passed, "detail": str(detail)})
    print(_SENTINEL + json.dumps(result), flush=True)
    return 0
