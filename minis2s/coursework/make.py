"""Write a student copy (solutions blanked out) or an answer copy of a minis2s checkout.

A copy is made from a *checkout* (a clone of the repository: ``pyproject.toml`` naming minis2s
beside the package), never from a plain ``pip install .``, which holds the package alone and
none of the tests, notebooks and docs a student needs.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from ..files import atomic_write
from .markers import (
    MarkerError,
    missing_part_regions,
    plan_package,
    stub_notebook,
    stub_source,
    walk,
)
from .parts import MANIFEST, check_parts

__all__ = ["make", "checkout", "foreign_copy_message", "read_manifest"]

#: Folders of the checkout copied beside the package (when present): docs hold the derivations
#: that the docstrings link to; the lint test also checks benchmarks/.
_REPO_DIRS = ("tests", "notebooks", "docs", "benchmarks")
_REPO_FILES = ("pyproject.toml", "README.md")
#: Not copied: the tests of this tool need the solutions.
_NOT_COPIED = re.compile(r"tests/test_(coursework|assignments)\w*\.py")


def _is_checkout(root):
    pyproject = root / "pyproject.toml"
    return ((root / "minis2s" / "__init__.py").is_file() and pyproject.is_file()
            and re.search(r'(?m)^name\s*=\s*"minis2s"', pyproject.read_text(encoding="utf-8"))
            is not None)


def checkout(source=None):
    """The root of the checkout to copy: ``source``, or the one this package was imported from.

    ``source`` may be the checkout or its ``minis2s/`` folder.

    Raises:
        ValueError: ``source`` does not exist or is not a checkout, or (``source`` None) the
            imported minis2s is an installed package rather than a checkout; the message says
            what to pass.
    """
    if source is None:
        pkg = Path(__file__).resolve().parents[1]
        if _is_checkout(pkg.parent):
            return pkg.parent
        raise ValueError(f"the minis2s imported from {pkg} is an installed package, not a "
                         "checkout (a plain 'pip install .' copies the package alone, without "
                         "the tests, notebooks and docs of a copy); pass the repository: "
                         "--source PATH (source=PATH), e.g. a 'git clone' of minis2s")
    root = Path(source)
    if not root.exists():
        raise ValueError(f"source {str(source)!r} does not exist")
    for cand in (root, root.parent):
        if _is_checkout(cand) and (cand == root or root.name == "minis2s"):
            return cand.resolve()
    raise ValueError(f"source {str(source)!r} is not a minis2s checkout: it needs "
                     "pyproject.toml (naming minis2s) beside minis2s/__init__.py")


def _version(pkg):
    m = re.search(r'(?m)^__version__\s*=\s*["\']([^"\']+)["\']',
                  (pkg / "__init__.py").read_text(encoding="utf-8"))
    return m.group(1) if m else "unknown"


def _prepare_out(out, force, repo):
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a directory")
    resolved = out.resolve()
    if resolved == repo or resolved in repo.parents or repo / "minis2s" in resolved.parents \
            or resolved == repo / "minis2s":
        raise ValueError(f"out_dir {str(out)!r} would overwrite the source at {str(repo)!r}; "
                         "choose another directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ValueError(f"out_dir {str(out)!r} is not empty; pass force=True (--force) to "
                             "write over it")
        # Remove only what a copy consists of, so that a wrong --force cannot wipe other files.
        for name in ("minis2s",) + _REPO_DIRS:
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        for name in _REPO_FILES + (MANIFEST,):
            if (out / name).is_file():
                (out / name).unlink()
    out.mkdir(parents=True, exist_ok=True)


def _readme_note(parts, solutions):
    if solutions:
        return ("> **Answer copy** (instructors only), made by `minis2s assignment make "
                f"--solutions` for the parts {', '.join(parts)}: the student copy's files with "
                "the solutions in place. Grade it with `minis2s assignment grade .`: every "
                "part passes.\n\n")
    return ("> **Student copy**, made by `minis2s assignment make` for the parts "
            f"{', '.join(parts)}. The `minis2s/` folder here is *your* code. Run it from this "
            "folder as `python -m minis2s ...`, or install this copy with `pip install -e .` "
            "(a `minis2s` command installed from elsewhere runs that other package, and says "
            "so when it is started in here). Grade yourself with `minis2s assignment grade .` "
            "(see docs/coursework.md).\n\n")


def make(out_dir, parts=None, force=False, *, source=None, solutions=False):
    """Write a student copy of a checkout to ``out_dir``, with the solutions of ``parts`` blanked
    out (or, with ``solutions``, an answer copy that keeps them).

    The copy holds the ``minis2s`` package and the checkout's ``tests/`` (without the
    coursework tool's own tests), ``notebooks/``, ``docs/``, ``benchmarks/``,
    ``pyproject.toml`` and ``README.md`` (with a note on top saying what the copy is). In the
    files of the chosen parts each solution region becomes, at the region's indentation,
    ``# TODO: <function>: <its docstring's first sentence> ...`` and
    ``raise NotImplementedError("TODO: implement <function> (part <part>)")``. The regions of
    the other parts keep their code; every marker line is removed. Code cells of notebooks
    have their regions stubbed and their outputs cleared. The manifest, ``MANIFEST``, records
    the version, the parts, the regions and the files.

    Args:
        out_dir: the folder to write (created if needed).
        parts: names from ``PARTS`` (a list or a comma-separated string); None: all.
        force: write into a non-empty ``out_dir``: its previous copy (``minis2s/``, the
            checkout's folders and top files) is replaced; other files are kept.
        source: the checkout to copy (its root or its ``minis2s/``); None: the checkout this
            package was imported from (an installed package is refused).
        solutions: write an answer copy: the same files, every region's code kept.

    Returns:
        The manifest, a dict.

    Raises:
        ValueError: unknown parts (the message lists the choices), a ``source`` that is no
            checkout, or a non-empty ``out_dir`` without ``force``.
        MarkerError: broken markers anywhere in the package, markers outside ``functional/``,
            a region of no part, or a chosen part's main file without a region.
    """
    parts = check_parts(parts)
    repo = checkout(source)
    pkg = repo / "minis2s"
    out = Path(out_dir)
    plans, problems = plan_package(pkg)
    problems += missing_part_regions(pkg, plans, parts)
    stub_parts = set() if solutions else set(parts)
    # Everything is transformed in memory first: nothing is written when a marker is broken.
    files = {}  # relative path in the copy -> new text, or the source path to copy
    regions = {p: [] for p in parts}
    for path in walk(pkg):
        rel = path.relative_to(pkg).as_posix()
        dest = f"minis2s/{rel}"
        files[dest] = path
        if rel in plans:
            new, starts = stub_source(path.read_text(encoding="utf-8"), plans[rel], stub_parts)
            try:
                compile(new, dest, "exec")
            except SyntaxError as e:
                problems.append(f"{dest}:{e.lineno}: the stubbed file does not compile "
                                f"({e.msg}); a region must hold whole statements")
            files[dest] = new
            for p, line in zip(plans[rel], starts):  # where each region is in the copy
                if p.part in regions:
                    regions[p.part].append(f"{dest}:{line} {p.qualname}")
    for d in _REPO_DIRS:
        if (repo / d).is_dir():
            for path in walk(repo / d):
                rel = path.relative_to(repo).as_posix()
                if _NOT_COPIED.fullmatch(rel):
                    continue
                files[rel] = path
                if path.suffix == ".ipynb":
                    new, probs = stub_notebook(path.read_text(encoding="utf-8"), rel,
                                               keep=solutions)
                    problems += probs
                    if new is not None:
                        files[rel] = new
    for f in _REPO_FILES:
        if (repo / f).is_file():
            files[f] = repo / f
    if "README.md" in files:
        files["README.md"] = (_readme_note(parts, solutions)
                              + (repo / "README.md").read_text(encoding="utf-8"))
    if problems:
        raise MarkerError(problems)
    _prepare_out(out, force, repo)
    for rel, what in files.items():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, Path):
            shutil.copyfile(what, dest)
        else:
            dest.write_text(what, encoding="utf-8")
    manifest = {
        "tool": "minis2s assignment make" + (" --solutions" if solutions else ""),
        "minis2s_version": _version(pkg),
        "parts": parts,
        "solutions": bool(solutions),
        "markers": ("removed, the solutions kept" if solutions else
                    "stubbed in the parts listed; removed (code kept) elsewhere"),
        ("regions" if solutions else "stubbed"): regions,
        "files": sorted(files),
    }
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(copy_dir):
    """The manifest of the copy in ``copy_dir`` (a dict), or None when it has none."""
    try:
        data = json.loads((Path(copy_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def foreign_copy_message(cwd=None, imported=None):
    """A one-line warning when ``cwd`` lies in a copy whose ``minis2s`` is not the imported one.

    ``minis2s train``, ``gradcheck``, ... run the package they were installed from. Started
    inside a student copy, they would silently run the installed solution instead of the
    student's code; the command line calls this first and stops with the message.

    Args:
        cwd: the folder to look from (default: the current directory); its parents count too.
        imported: the ``minis2s`` package directory in use (default: this package's).

    Returns:
        The message, or None when ``cwd`` is in no copy or the copy's package is the one in use.
    """
    here = Path.cwd() if cwd is None else Path(cwd)
    imported = (Path(__file__).resolve().parents[1] if imported is None
                else Path(imported).resolve())
    try:
        here = here.resolve()
    except OSError:
        return None
    for d in (here, *here.parents):
        if (d / MANIFEST).is_file() and (d / "minis2s" / "__init__.py").is_file():
            if (d / "minis2s").resolve() == imported:
                return None
            return (f"{d} is a copy made by 'minis2s assignment make', but this minis2s "
                    f"command runs the package in {imported}, not the copy's; run "
                    f"'python -m minis2s ...' in {d}, or 'pip install -e {d}'")
    return None
