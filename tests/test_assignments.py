"""Coursework tooling: markers, student copies, and grading in isolated processes."""

import json
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

import minis2s
from minis2s import assignments
from minis2s.assignments import PART_FILES, PARTS, MarkerError

PKG = pathlib.Path(minis2s.__file__).resolve().parent
REFERENCE = PKG.parent  # the folder holding the reference package
ALL = list(PARTS)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "minis2s", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("copy") / "student"
    manifest = assignments.make(out)
    return out, manifest


@pytest.fixture(scope="module")
def student_grades(student_copy):
    return {r.part: r for r in assignments.grade(student_copy[0], parts=ALL)}


# --- the package's own markers -------------------------------------------------------------
def test_the_package_markers_are_well_formed_and_assigned():
    assert assignments.check_markers() == []
    assert set(PART_FILES) == set(PARTS)
    assert {"linear", "embedding", "loss", "gru", "attention", "pointer"} <= set(PARTS)


# --- grading the reference and a fresh copy ------------------------------------------------
def test_the_reference_package_passes_every_part():
    results = assignments.grade(REFERENCE, parts=ALL)
    assert [r.part for r in results] == ALL
    for r in results:
        assert r.passed, f"{r.part}: {r.reason}"
        assert r.n_total >= 3 and r.score == 1.0 and r.reason == ""


def test_a_fresh_copy_fails_every_part(student_copy, student_grades):
    out, manifest = student_copy
    assert manifest["parts"] == ALL
    for part, r in student_grades.items():
        assert not r.passed, part
        assert r.n_passed < r.n_total
        assert "NotImplementedError: TODO: implement" in r.reason
        assert f"(part {part})" in r.reason


def test_the_copy_holds_stubs_and_no_solution_markers(student_copy):
    out, manifest = student_copy
    written = json.loads((out / assignments.MANIFEST).read_text())
    assert written == manifest
    assert written["minis2s_version"] == minis2s.__version__
    assert "minis2s/__init__.py" in written["files"]
    assert "tests/test_assignments.py" not in written["files"]
    assert not (out / "tests" / "test_assignments.py").exists()
    for part in ALL:
        main = f"minis2s/{PART_FILES[part][0]}"
        assert any(s.startswith(main + ":") for s in written["stubbed"][part]), part
        text = (out / main).read_text()
        compile(text, main, "exec")
        assert assignments.find_regions(text) == []
        assert 'raise NotImplementedError("TODO: implement' in text
        assert "# TODO: " in text
    for f in written["files"]:
        assert (out / f).is_file(), f


def test_a_stub_keeps_the_indentation_and_names_the_function(student_copy):
    out, _ = student_copy
    lines = (out / "minis2s/functional/gru.py").read_text().splitlines()
    i = next(k for k, ln in enumerate(lines)
             if 'raise NotImplementedError("TODO: implement gru_cell_backward (part gru)")' in ln)
    assert lines[i].startswith("    raise")
    assert lines[i - 1].startswith("    # TODO: gru_cell_backward: Backward of gru_cell_forward")


def test_restoring_one_part_makes_exactly_that_part_pass(student_copy, student_grades, tmp_path):
    out = tmp_path / "student"
    shutil.copytree(student_copy[0], out)
    part = "attention"
    for spec in PART_FILES[part]:
        rel = spec.partition("::")[0]
        if (PKG / rel).is_file():
            shutil.copyfile(PKG / rel, out / "minis2s" / rel)
    results = {r.part: r for r in assignments.grade(out, parts=ALL)}
    assert results[part].passed, results[part].reason
    for other in ALL:
        if other != part:
            assert not results[other].passed, other
            assert results[other].n_passed == student_grades[other].n_passed


def test_a_wrong_gradient_fails_with_the_parameter_and_the_error(student_copy, tmp_path):
    out = tmp_path / "student"
    shutil.copytree(student_copy[0], out)
    (out / "minis2s/functional/linear.py").write_text(textwrap.dedent('''\
        from typing import NamedTuple


        class LinearCache(NamedTuple):
            x: object
            W: object


        def linear_forward(x, W, b=None):
            y = x @ W
            if b is not None:
                y = y + b
            return y, LinearCache(x, W)


        def linear_backward(dy, cache):
            x, W = cache
            dx = dy @ W.T
            dW = 1.5 * x.reshape(-1, W.shape[0]).T @ dy.reshape(-1, W.shape[1])
            return dx, dW, dy.reshape(-1, W.shape[1]).sum(0)
        '''))
    (r,) = assignments.grade(out, parts=["linear"])
    assert not r.passed
    assert r.reason.startswith("linear_backward dW rel error")
    assert [c.passed for c in r.checks][0] is True  # the forward value is right


def test_a_copy_that_does_not_import_fails_clearly(student_copy, tmp_path):
    out = tmp_path / "student"
    shutil.copytree(student_copy[0], out)
    with open(out / "minis2s/functional/embedding.py", "a") as f:
        f.write("\ndef broken(:\n")
    (r,) = assignments.grade(out, parts=["embedding"])
    assert not r.passed and r.n_passed == 0 and r.n_total == 3
    assert r.reason.startswith("import minis2s failed: SyntaxError")


def test_a_timeout_fails_the_part(student_copy):
    (r,) = assignments.grade(student_copy[0], parts=["loss"], timeout=0.01)
    assert not r.passed and r.reason == "timed out after 0.01 s"
    assert r.n_total == len(assignments._CHECKS["loss"])


def test_the_child_refuses_a_minis2s_from_elsewhere(tmp_path, capsys):
    # In this process minis2s is the reference package, not tmp_path's: the child must say so.
    assignments._child_main(str(tmp_path), "linear")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    data = json.loads(line.removeprefix(assignments._SENTINEL))
    assert "not from the copy" in data["error"]
    assert all(not c["passed"] for c in data["checks"])


# --- make: options and refusals ------------------------------------------------------------
def test_make_some_parts_keeps_the_others_code_without_markers(tmp_path):
    out = tmp_path / "copy"
    manifest = assignments.make(out, parts=["linear"])
    assert manifest["parts"] == ["linear"] and list(manifest["stubbed"]) == ["linear"]
    assert "NotImplementedError" in (out / "minis2s/functional/linear.py").read_text()
    original = (PKG / "functional/gru.py").read_text().splitlines()
    kept = (out / "minis2s/functional/gru.py").read_text().splitlines()
    assert kept == [ln for ln in original if ln.strip() not in ("### BEGIN SOLUTION",
                                                                "### END SOLUTION")]
    results = assignments.grade(out)  # parts=None: the manifest's parts
    assert [r.part for r in results] == ["linear"] and not results[0].passed


def test_make_validates_parts_and_out_dir(tmp_path):
    with pytest.raises(ValueError, match="unknown part 'grus'; choose from linear, embedding"):
        assignments.make(tmp_path / "a", parts=["grus"])
    with pytest.raises(ValueError, match="at least one part"):
        assignments.make(tmp_path / "a", parts=[])
    out = tmp_path / "b"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"out_dir '.*b' is not empty; pass force=True"):
        assignments.make(out, parts=["loss"])
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assignments.make(out, parts=["loss"], force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / assignments.MANIFEST).is_file()
    with pytest.raises(ValueError, match="would overwrite the source"):
        assignments.make(PKG.parent, force=True)
    with pytest.raises(ValueError, match="would overwrite the source"):
        assignments.make(PKG / "functional" / "hw")


def test_grade_rejects_a_folder_without_a_copy(tmp_path):
    with pytest.raises(ValueError, match=r"dir '.*' is not a student copy"):
        assignments.grade(tmp_path)
    with pytest.raises(ValueError, match="unknown part"):
        assignments.grade(REFERENCE, parts=["nope"])
    with pytest.raises(ValueError, match="timeout"):
        assignments.grade(REFERENCE, parts=["linear"], timeout=0)


# --- the marker parser ---------------------------------------------------------------------
def _code(body):
    return textwrap.dedent(body)


@pytest.mark.parametrize("text, where, what", [
    ("def f():\n    x = 1\n    ### END SOLUTION\n", "<text>:3", "without a '### BEGIN"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "<text>:2", "has no matching"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n"
     "    ### END SOLUTION\n    ### END SOLUTION\n", "<text>:3", "cannot nest"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n  ### END SOLUTION\n", "<text>:4",
     "indented differently"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n", "<text>:2", "empty"),
    ("def f():\n    if 1:\n        ### BEGIN SOLUTION\n        x = 1\n    y = 2\n"
     "        ### END SOLUTION\n", "<text>:5", "indented less"),
    ("x = 1  ### BEGIN SOLUTION\n", "<text>:1", "stand alone"),
])
def test_broken_markers_are_reported_with_the_line(text, where, what):
    with pytest.raises(MarkerError) as info:
        assignments.find_regions(text)
    assert f"{where}: " in str(info.value) and what in str(info.value)
    assert isinstance(info.value, ValueError)


def test_regions_are_found_and_strings_are_not_markers():
    text = _code('''\
        def f(x):
            """Doc.

            ### BEGIN SOLUTION
            """
            s = "### END SOLUTION"
            for i in range(3):
                ### BEGIN SOLUTION
                x = x + i
                ### END SOLUTION
            return x
        ''')
    (r,) = assignments.find_regions(text, "f.py")
    assert (r.path, r.begin, r.end, r.indent) == ("f.py", 8, 10, "        ")


def _fake_package(root, files):
    pkg = root / "minis2s"
    (pkg / "functional").mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "9.9"\n')
    for rel, text in files.items():
        (pkg / rel).write_text(textwrap.dedent(text))
    return pkg


GOOD_LINEAR = '''\
    def linear_forward(x, W):
        """y = x W, the affine map.

        More text.
        """
        ### BEGIN SOLUTION
        y = x @ W
        ### END SOLUTION
        return y, (x, W)
    '''


def test_a_fake_package_reports_each_problem_with_file_and_line(tmp_path):
    _fake_package(tmp_path, {
        "functional/linear.py": GOOD_LINEAR,
        "functional/gru.py": "def gru_forward():\n    ### BEGIN SOLUTION\n    return 1\n",
        "optim.py": "def step():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n",
    })
    problems = assignments.check_markers(tmp_path)
    text = "\n".join(problems)
    assert "minis2s/functional/gru.py:2: '### BEGIN SOLUTION' has no matching" in text
    assert "minis2s/functional/embedding.py:1: missing; part 'embedding' needs it" in text
    assert "minis2s/optim.py:2: this region belongs to no part" in text
    assert not any("linear.py" in p for p in problems)
    out = tmp_path / "out"
    with pytest.raises(MarkerError, match=r"minis2s/functional/gru\.py:2: "):
        assignments.make(out, parts=["linear"], source=tmp_path)
    assert not out.exists()  # nothing is written when a marker is broken


def test_make_on_a_fake_package_stubs_with_a_hint(tmp_path):
    src = tmp_path / "src"
    _fake_package(src, {"functional/linear.py": GOOD_LINEAR})
    out = tmp_path / "out"
    manifest = assignments.make(out, parts=["linear"], source=src)
    assert manifest["minis2s_version"] == "9.9"
    assert manifest["stubbed"] == {"linear": ["minis2s/functional/linear.py:6 linear_forward"]}
    text = (out / "minis2s/functional/linear.py").read_text()
    assert ("    # TODO: linear_forward: y = x W, the affine map. Compute y (used below).\n"
            '    raise NotImplementedError("TODO: implement linear_forward (part linear)")\n'
            "    return y, (x, W)\n") in text
    # a part whose functional module has no region cannot be made
    with pytest.raises(MarkerError, match=r"minis2s/functional/gru\.py:1: missing"):
        assignments.make(tmp_path / "out2", parts=["gru"], source=src)


def test_notebook_cells_are_stubbed_and_their_outputs_cleared(tmp_path):
    src = tmp_path / "repo"
    _fake_package(src, {"functional/linear.py": GOOD_LINEAR})
    (src / "pyproject.toml").write_text('[project]\nname = "minis2s"\n')
    (src / "notebooks").mkdir()
    cell = {"cell_type": "code", "execution_count": 3, "metadata": {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["42\n"]}],
            "source": ["x = 1\n", "### BEGIN SOLUTION\n", "y = x + 41\n", "### END SOLUTION\n",
                       "print(y)"]}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (src / "notebooks" / "01_intro.ipynb").write_text(json.dumps(nb))
    out = tmp_path / "out"
    manifest = assignments.make(out, parts=["linear"], source=src)
    assert "pyproject.toml" in manifest["files"]
    cell = json.loads((out / "notebooks" / "01_intro.ipynb").read_text())["cells"][0]
    source = "".join(cell["source"])
    assert "y = x + 41" not in source and "BEGIN SOLUTION" not in source
    assert 'raise NotImplementedError("TODO: complete cell 1 of 01_intro.ipynb")' in source
    assert cell["outputs"] == [] and cell["execution_count"] is None


# --- the command line ----------------------------------------------------------------------
def test_cli_make_then_grade_exits_1_and_prints_a_table(tmp_path):
    out = tmp_path / "copy"
    r = run_cli("assignment", "make", str(out), "--parts", "linear,loss")
    assert r.returncode == 0, r.stderr
    assert (out / assignments.MANIFEST).is_file()
    r = run_cli("assignment", "grade", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(ln.startswith("linear") and "FAIL" in ln and "NotImplementedError" in ln
               for ln in lines)
    assert lines[-1].startswith("total") and "0 of 2 parts pass" in lines[-1]


def test_cli_grade_of_the_reference_exits_0():
    r = run_cli("assignment", "grade", str(REFERENCE), "--parts", "embedding")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of 1 parts pass" in r.stdout


def test_cli_errors_are_one_line_with_exit_2(tmp_path):
    r = run_cli("assignment", "grade", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "is not a student copy" in r.stderr
    r = run_cli("assignment", "make", str(tmp_path / "x"), "--parts", "gru,nope")
    assert r.returncode == 2 and "unknown part 'nope'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
