"""Coursework tooling: solution markers, student and answer copies, and the copy detection of
the command line. Grading is in test_coursework_grade.py."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

import minis2s
from minis2s import coursework
from minis2s.coursework import MANIFEST, PART_FILES, PARTS, MarkerError

PKG = pathlib.Path(minis2s.__file__).resolve().parent
REPO = PKG.parent  # the checkout holding the reference package
ALL = list(PARTS)


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "minis2s", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


def reference_env(**extra):
    """An environment whose ``import minis2s`` finds the reference package first."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


# --- the package's own markers -------------------------------------------------------------
def test_the_package_markers_are_sound_and_hold_textbook_code_only():
    assert coursework.check_markers() == []


def test_every_part_owns_reference_tier_files_only():
    assert set(PART_FILES) == set(PARTS) == {"linear", "embedding", "loss", "gru", "attention",
                                             "pointer"}
    for part, specs in PART_FILES.items():
        assert specs[0] == f"functional/{part}.py"
        for spec in specs:
            assert spec.startswith("functional/") and "fast/" not in spec, spec
            assert (PKG / spec.partition("::")[0]).is_file(), spec


def test_the_old_module_name_still_works():
    from minis2s import assignments

    assert assignments.make is coursework.make and assignments.grade is coursework.grade


# --- the marker parser ---------------------------------------------------------------------
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
        coursework.find_regions(text)
    assert f"{where}: " in str(info.value) and what in str(info.value)
    assert isinstance(info.value, ValueError) and len(info.value.problems) == 1


def test_regions_are_found_and_strings_are_not_markers():
    text = textwrap.dedent('''\
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
    (r,) = coursework.find_regions(text, "f.py")
    assert (r.path, r.begin, r.end, r.indent) == ("f.py", 8, 10, "        ")


# --- fake checkouts ------------------------------------------------------------------------
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


def fake_checkout(root, files, readme="# fake\n"):
    """A folder that looks like a minis2s checkout: pyproject.toml, README.md, minis2s/."""
    pkg = root / "minis2s"
    (pkg / "functional").mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "9.9"\n')
    (root / "pyproject.toml").write_text('[project]\nname = "minis2s"\n')
    (root / "README.md").write_text(readme)
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(textwrap.dedent(text))
    return root


def test_a_fake_checkout_reports_each_problem_with_file_and_line(tmp_path):
    fake_checkout(tmp_path, {
        "functional/linear.py": GOOD_LINEAR,
        "functional/gru.py": "def gru_forward():\n    ### BEGIN SOLUTION\n    return 1\n",
        "functional/extra.py": "def f():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n",
        "models/m.py": "def step():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n",
        "functional/loss.py": "def g(a, b):\n    ### BEGIN SOLUTION\n    b += a\n"
                              "    xp.exp(a, out=a)\n    ### END SOLUTION\n",
    })
    text = "\n".join(coursework.check_markers(tmp_path))
    assert "minis2s/functional/gru.py:2: '### BEGIN SOLUTION' has no matching" in text
    assert "minis2s/functional/embedding.py:1: missing; part 'embedding' needs it" in text
    assert "minis2s/functional/extra.py:2: this region belongs to no part" in text
    assert ("minis2s/models/m.py:2: solution markers belong in minis2s/functional/ only"
            in text)
    assert "minis2s/functional/loss.py:2: the region of g holds fast-tier code ('out=')" in text
    assert "linear.py" not in text
    out = tmp_path / "out"
    with pytest.raises(MarkerError, match=r"minis2s/functional/gru\.py:2: "):
        coursework.make(out, parts=["linear"], source=tmp_path)
    assert not out.exists()  # nothing is written when a marker is broken


def test_make_on_a_fake_checkout_stubs_with_a_hint(tmp_path):
    src = fake_checkout(tmp_path / "src", {"functional/linear.py": GOOD_LINEAR})
    out = tmp_path / "out"
    manifest = coursework.make(out, parts=["linear"], source=src)
    assert manifest["minis2s_version"] == "9.9" and manifest["solutions"] is False
    assert manifest["stubbed"] == {"linear": ["minis2s/functional/linear.py:6 linear_forward"]}
    text = (out / "minis2s/functional/linear.py").read_text()
    assert ("    # TODO: linear_forward: y = x W, the affine map. Compute y (used below).\n"
            '    raise NotImplementedError("TODO: implement linear_forward (part linear)")\n'
            "    return y, (x, W)\n") in text
    readme = (out / "README.md").read_text()
    assert readme.startswith("> **Student copy**") and "python -m minis2s" in readme
    assert readme.endswith("# fake\n")
    # the package folder of a checkout is accepted as the source too
    coursework.make(tmp_path / "out2", parts=["linear"], source=src / "minis2s")
    # a part whose functional module has no region cannot be made
    with pytest.raises(MarkerError, match=r"minis2s/functional/gru\.py:1: missing"):
        coursework.make(tmp_path / "out3", parts=["gru"], source=src)


def test_notebook_cells_are_stubbed_and_their_outputs_cleared(tmp_path):
    src = fake_checkout(tmp_path / "repo", {"functional/linear.py": GOOD_LINEAR})
    (src / "notebooks").mkdir()
    cell = {"cell_type": "code", "execution_count": 3, "metadata": {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["42\n"]}],
            "source": ["x = 1\n", "### BEGIN SOLUTION\n", "y = x + 41\n", "### END SOLUTION\n",
                       "print(y)"]}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (src / "notebooks" / "01_intro.ipynb").write_text(json.dumps(nb))
    coursework.make(tmp_path / "out", parts=["linear"], source=src)
    cell = json.loads((tmp_path / "out/notebooks/01_intro.ipynb").read_text())["cells"][0]
    source = "".join(cell["source"])
    assert "y = x + 41" not in source and "BEGIN SOLUTION" not in source
    assert 'raise NotImplementedError("TODO: complete cell 1 of 01_intro.ipynb")' in source
    assert cell["outputs"] == [] and cell["execution_count"] is None
    coursework.make(tmp_path / "answers", parts=["linear"], source=src, solutions=True)
    cell = json.loads((tmp_path / "answers/notebooks/01_intro.ipynb").read_text())["cells"][0]
    assert "".join(cell["source"]) == "x = 1\ny = x + 41\nprint(y)" and cell["outputs"]


# --- make from the real checkout -----------------------------------------------------------
@pytest.fixture(scope="module")
def linear_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("copy") / "hw"
    return out, coursework.make(out, parts=["linear"])


def test_a_copy_stubs_its_parts_and_keeps_the_others_code_without_markers(linear_copy):
    out, manifest = linear_copy
    assert manifest["parts"] == ["linear"] and list(manifest["stubbed"]) == ["linear"]
    assert json.loads((out / MANIFEST).read_text()) == manifest
    assert manifest["minis2s_version"] == minis2s.__version__
    text = (out / "minis2s/functional/linear.py").read_text()
    compile(text, "linear.py", "exec")
    assert 'raise NotImplementedError("TODO: implement' in text and "# TODO: " in text
    for entry in manifest["stubbed"]["linear"]:  # "file:line function", the copy's lines
        where, name = entry.split(" ")
        file, line = where.rsplit(":", 1)
        todo = (out / file).read_text().splitlines()[int(line) - 1]
        assert todo.strip().startswith(f"# TODO: {name}: "), entry
    for rel in ("functional/gru.py", "functional/attention.py"):
        original = (PKG / rel).read_text().splitlines()
        kept = (out / "minis2s" / rel).read_text().splitlines()
        assert kept == [ln for ln in original if ln.strip() not in ("### BEGIN SOLUTION",
                                                                    "### END SOLUTION")]
    for f in manifest["files"]:
        assert (out / f).is_file(), f
    assert "minis2s/coursework/oracle.py" in manifest["files"]
    assert (out / "tests").is_dir() and (out / "docs").is_dir()
    assert not list((out / "tests").glob("test_coursework*.py"))  # they need the solutions


def test_make_validates_parts_source_and_out_dir(tmp_path):
    with pytest.raises(ValueError, match="unknown part 'grus'; choose from linear, embedding"):
        coursework.make(tmp_path / "a", parts=["grus"])
    with pytest.raises(ValueError, match="at least one part"):
        coursework.make(tmp_path / "a", parts=[])
    with pytest.raises(ValueError, match=r"source '.*nowhere' does not exist"):
        coursework.make(tmp_path / "a", source=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="is not a minis2s checkout"):
        coursework.make(tmp_path / "a", source=tmp_path)
    out = tmp_path / "b"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"out_dir '.*b' is not empty; pass force=True"):
        coursework.make(out, parts=["loss"])
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    coursework.make(out, parts=["loss"], force=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / MANIFEST).is_file()
    with pytest.raises(ValueError, match="would overwrite the source"):
        coursework.make(REPO, force=True)
    with pytest.raises(ValueError, match="would overwrite the source"):
        coursework.make(PKG / "functional" / "hw")


def test_an_answer_copy_keeps_every_solution(tmp_path):
    out = tmp_path / "answers"
    manifest = coursework.make(out, parts=["gru", "pointer"], solutions=True)
    assert manifest["solutions"] is True and "stubbed" not in manifest
    assert manifest["regions"]["gru"] and manifest["regions"]["pointer"]
    for rel in ("functional/gru.py", "functional/pointer.py"):
        original = (PKG / rel).read_text().splitlines()
        kept = (out / "minis2s" / rel).read_text().splitlines()
        assert kept == [ln for ln in original if ln.strip() not in ("### BEGIN SOLUTION",
                                                                    "### END SOLUTION")]
    assert "TODO: implement" not in (out / "minis2s/functional/gru.py").read_text()
    assert (out / "README.md").read_text().startswith("> **Answer copy**")


# --- the command line: make, and the copies it does not run --------------------------------
def test_make_refuses_an_installed_package_and_takes_a_source(tmp_path):
    site = tmp_path / "site"  # the package alone, as a plain `pip install .` leaves it
    shutil.copytree(PKG, site / "minis2s", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(site), MINIS2S_BACKEND="numpy")  # (no CuPy needed)
    r = run_cli("assignment", "make", str(tmp_path / "hw"), "--parts", "linear", cwd=tmp_path,
                env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "is an installed package, not a checkout" in r.stderr and "--source" in r.stderr
    assert not (tmp_path / "hw").exists()
    r = run_cli("assignment", "make", str(tmp_path / "hw"), "--parts", "linear", "--source",
                str(REPO), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "wrote a student copy of the parts linear" in r.stdout
    assert (tmp_path / "hw" / "tests").is_dir() and (tmp_path / "hw" / "pyproject.toml").is_file()


def test_make_errors_are_one_line_with_exit_2(tmp_path):
    r = run_cli("assignment", "make", str(tmp_path / "x"), "--parts", "gru,nope")
    assert r.returncode == 2 and "unknown part 'nope'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_foreign_copy_message(linear_copy, tmp_path):
    out, _ = linear_copy
    msg = coursework.foreign_copy_message(cwd=out / "minis2s" / "functional")
    assert msg.startswith(f"{out.resolve()} is a copy made by 'minis2s assignment make'")
    assert "python -m minis2s" in msg and "pip install -e" in msg and "\n" not in msg
    assert coursework.foreign_copy_message(cwd=out, imported=out / "minis2s") is None
    assert coursework.foreign_copy_message(cwd=tmp_path) is None
    assert coursework.foreign_copy_message(cwd=REPO) is None


def test_the_installed_command_refuses_to_run_inside_a_copy(linear_copy):
    out, _ = linear_copy
    # `minis2s gradcheck` started inside the copy, but importing the reference package (as an
    # installed command does): it must not print PASSED for the blanked code.
    code = "import sys; from minis2s.cli import main; sys.exit(main(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-P", "-c", code, "gradcheck"], cwd=out,
                       capture_output=True, text=True, timeout=300, env=reference_env())
    assert r.returncode == 2, r.stdout + r.stderr
    assert "PASSED" not in r.stdout
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("minis2s: error: ") and "python -m minis2s" in line
    # `python -m minis2s` inside the copy runs the copy's own (blanked) code
    r = run_cli("gradcheck", "--model", "seq2seq", cwd=out, env=reference_env())
    assert r.returncode != 0 and "PASSED" not in r.stdout
    assert "NotImplementedError: TODO: implement" in r.stderr
