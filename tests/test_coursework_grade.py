"""Coursework grading: isolated processes per part, partial credit, reasons, timeouts, many
submissions and their CSV, JSON and Gradescope reports; the oracle the checks compare with."""

import csv
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import minis2s
from minis2s import coursework
from minis2s.coursework import PARTS, checks, oracle
from minis2s.coursework import _child as child

PKG = pathlib.Path(minis2s.__file__).resolve().parent
REPO = PKG.parent
ALL = list(PARTS)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "minis2s", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """A student copy and an answer copy of every part."""
    root = tmp_path_factory.mktemp("grade")
    student, answers = root / "student", root / "answers"
    coursework.make(student)
    coursework.make(answers, solutions=True)
    return student, answers


def submission(answers, tmp_path, module, text):
    """A copy of the answer copy whose functional/<module>.py ends with ``text`` (which may
    wrap the right function, kept as ``_right``, by a wrong one)."""
    out = tmp_path / "sub"
    shutil.copytree(answers, out)
    with open(out / "minis2s" / "functional" / f"{module}.py", "a") as f:
        f.write(text)
    return out


# --- the checks in this process, on the reference ------------------------------------------
@pytest.fixture
def on_numpy():
    """The NumPy backend for the test, as the grader's child process has it
    (``MINIS2S_BACKEND=numpy``: the checks compare host arrays in float64)."""
    from minis2s import backend

    before = backend.name
    backend.use("numpy")
    yield
    backend.use(before)


@pytest.mark.parametrize("part", ALL)
def test_every_check_passes_on_the_reference(part, on_numpy):
    for c in checks.load(part):
        fraction, detail = checks.run_one(c.run)
        assert fraction == 1.0, f"{part}: {c.name}: {detail}"
        assert c.points > 0 and c.impl in (None, "reference")


def test_check_names_are_unique_and_each_part_has_a_model_check():
    for part in ALL:
        names = [c.name for c in checks.load(part)]
        assert len(names) == len(set(names)) >= 2
    assert {c.impl for p in ("gru", "attention", "pointer") for c in checks.load(p)} == {
        None, "reference"}


# --- whole copies, each part in its own process -------------------------------------------
def test_full_marks_for_the_answers_zero_for_the_blanks_and_the_reports(copies, tmp_path):
    """Every part of both copies, graded once (the slowest test here: a few seconds)."""
    student, answers = copies
    subs = coursework.grade_many([student, answers])
    graded, good = subs
    assert [p.part for p in good.parts] == [p.part for p in graded.parts] == ALL
    assert good.passed and good.score == good.max_score > 0
    assert not graded.passed and graded.score == 0 and graded.max_score == good.max_score
    for r in graded.parts:  # a blanked part scores 0, and each check says why
        assert not r.passed and r.score == 0 and r.n_passed == 0
        for c in r.checks:
            assert "NotImplementedError: TODO: implement" in c.detail, (r.part, c.name)
        # (the pointer's coverage attention calls the attention part's additive score first)
        assert any(f"(part {r.part})" in c.detail for c in r.checks), r.part
    # the table lists every lost point with its reason
    lines = coursework.table(graded)
    assert lines[0] == f"grading {graded.dir}"
    assert len([ln for ln in lines if ln.startswith("    ")]) == sum(p.n_total for p in
                                                                      graded.parts)
    assert lines[-1].startswith("total") and "0 of 6 parts pass" in lines[-1]
    assert "6 of 6 parts pass" in coursework.table(good)[-1]
    # CSV: one row per submission; JSON: every check; Gradescope: one results.json each
    coursework.write_csv(subs, tmp_path / "grades.csv")
    coursework.write_json(subs, tmp_path / "grades.json")
    written = coursework.write_gradescope(subs, tmp_path / "gradescope")
    rows = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert [r["name"] for r in rows] == ["student", "answers"]
    assert rows[1]["percent"] == "100.0" and rows[1]["failed"] == ""
    assert float(rows[0]["score"]) == 0 and "gru/gru_cell_forward value:" in rows[0]["failed"]
    assert float(rows[1]["gru"]) == good.parts[ALL.index("gru")].max_score
    data = json.load(open(tmp_path / "grades.json"))
    assert [s["name"] for s in data["submissions"]] == ["student", "answers"]
    check = data["submissions"][0]["parts"][0]["checks"][0]
    assert set(check) == {"name", "score", "max_score", "passed", "output"}
    assert written == [tmp_path / "gradescope" / n / "results.json" for n in ("student",
                                                                              "answers")]
    for path, sub in zip(written, subs):
        gs = json.load(open(path))
        assert gs["score"] == pytest.approx(sum(t["score"] for t in gs["tests"]))
        assert gs["score"] == pytest.approx(sub.score)
        assert len(gs["tests"]) == sum(p.n_total for p in sub.parts)
        for t in gs["tests"]:
            assert {"name", "score", "max_score", "output", "status"} <= set(t)
            assert t["status"] == ("passed" if t["score"] == t["max_score"] else "failed")
    one = coursework.write_gradescope(subs[:1], tmp_path / "results.json")
    assert one == [tmp_path / "results.json"] and json.load(open(one[0]))["score"] == 0


def test_the_reference_checkout_gets_full_marks():
    for r in coursework.grade(REPO, parts=["linear", "loss"]):  # a checkout: no manifest
        assert r.passed and r.reason == "" and r.score == r.max_score


def test_restoring_one_part_makes_exactly_that_part_pass(copies, tmp_path):
    student, _ = copies
    out = tmp_path / "student"
    shutil.copytree(student, out)
    for spec in coursework.PART_FILES["embedding"]:
        rel = spec.partition("::")[0]
        shutil.copyfile(PKG / rel, out / "minis2s" / rel)
    results = {r.part: r for r in coursework.grade(out, parts=["linear", "embedding"])}
    assert results["embedding"].passed, results["embedding"].reason
    assert results["linear"].score == 0


def test_a_wrong_gradient_earns_partial_credit_and_names_the_worst_element(copies, tmp_path):
    out = submission(copies[1], tmp_path, "linear", "\n\n_right = linear_backward\n\n\n"
                     "def linear_backward(dy, cache):\n"
                     "    dx, dW, db = _right(dy, cache)\n"
                     "    dW = dW.copy()\n"
                     "    dW[2, 1] += 3.0\n"
                     "    return dx, dW, db\n")
    (r,) = coursework.grade(out, parts=["linear"])
    by_name = {c.name: c for c in r.checks}
    assert by_name["linear_forward value"].passed  # the forward is right
    grad = by_name["linear_backward gradients"]
    assert grad.score == pytest.approx(grad.max_score * 2 / 3)  # dx and db right, dW wrong
    assert grad.detail.startswith("2 of 3 gradients right; linear_backward dW rel error")
    assert "worst at dW[2, 1]: yours " in grad.detail and "numerical " in grad.detail
    assert 0 < r.score < r.max_score and not r.passed
    assert r.reason == grad.detail


def test_a_wrong_value_names_the_worst_element(copies, tmp_path):
    out = submission(copies[1], tmp_path, "embedding", "\n\n_right = embedding_forward\n\n\n"
                     "def embedding_forward(ids, W):\n"
                     "    out, cache = _right(ids, W)\n"
                     "    out = out.copy()\n"
                     "    out[1, 0, 2] = 100.0\n"
                     "    return out, cache\n")
    (r,) = coursework.grade(out, parts=["embedding"])
    value = r.checks[0]
    assert value.score == 0
    assert value.detail.startswith("embedding_forward out differs from the reference: rel error")
    assert "(worst at [1, 0, 2]: yours 100, expected " in value.detail


def test_a_copy_that_does_not_import_fails_clearly(copies, tmp_path):
    out = submission(copies[1], tmp_path, "embedding", "\ndef broken(:\n")
    (r,) = coursework.grade(out, parts=["embedding"])
    assert not r.passed and r.score == 0 and r.n_total == len(checks.load("embedding"))
    assert r.reason.startswith("import minis2s failed: SyntaxError")


def test_a_part_that_runs_too_long_is_stopped_and_the_others_are_graded(copies, tmp_path):
    out = submission(copies[1], tmp_path, "loss",
                     "\n\ndef softmax_cross_entropy_forward(logits, targets, mask):\n"
                     "    while True:\n"
                     "        pass\n")
    results = {r.part: r for r in coursework.grade(out, parts=["linear", "loss"], timeout=3)}
    assert results["linear"].passed
    loss = results["loss"]
    assert loss.reason == "timed out after 3 s (the part's process was stopped)"
    assert loss.score == 0 and loss.max_score == sum(c.points for c in checks.load("loss"))
    assert all(c.detail == loss.reason for c in loss.checks)


def test_a_result_line_printed_by_the_copy_does_not_count(copies, tmp_path):
    forged = {"part": "linear", "error": None,
              "checks": [{"name": "forged", "score": 99, "max_score": 99, "detail": ""}]}
    out = submission(copies[0], tmp_path, "linear",
                     f"\nprint({child.SENTINEL!r} + {json.dumps(forged)!r}, flush=True)\n"
                     "import os\nos._exit(0)\n")
    (r,) = coursework.grade(out, parts=["linear"])
    assert r.score == 0 and [c.name for c in r.checks] == [c.name for c in checks.load("linear")]
    assert r.reason.startswith("the grading process died (exit status 0)")


def test_the_child_refuses_a_minis2s_from_elsewhere(tmp_path):
    # In this process minis2s is the reference package, not tmp_path's: the child must say so.
    data = child.run(str(tmp_path), "linear")
    assert "not from the copy" in data["error"]
    assert all(c["score"] == 0 for c in data["checks"])


def test_grading_with_the_reference_tier_trains_the_copys_own_model(copies):
    student, answers = copies
    (graded, good) = coursework.grade_many([student, answers], parts=["gru"], impl="reference")
    model = [c for c in good.parts[0].checks if "reference tier" in c.name]
    assert len(model) == 1 and model[0].passed, model[0].detail
    assert "Seq2Seq (reference tier) reversed" in model[0].detail
    assert graded.parts[0].checks[-1].name == model[0].name
    assert "NotImplementedError: TODO: implement" in graded.parts[0].checks[-1].detail


def test_grade_validates_its_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"dir '.*nowhere' does not exist"):
        coursework.grade(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"dir '.*' is not a student copy"):
        coursework.grade(tmp_path)
    with pytest.raises(ValueError, match="unknown part"):
        coursework.grade(REPO, parts=["nope"])
    with pytest.raises(ValueError, match="timeout"):
        coursework.grade(REPO, parts=["linear"], timeout=0)
    with pytest.raises(ValueError, match="impl"):
        coursework.grade(REPO, parts=["linear"], impl="fast")


# --- the command line ----------------------------------------------------------------------
def test_cli_grades_many_and_writes_the_reports(copies, tmp_path):
    student, answers = copies
    r = run_cli("assignment", "grade", str(student), str(answers), "--parts", "linear,loss",
                "--csv", str(tmp_path / "g.csv"), "--json", str(tmp_path / "g.json"),
                "--gradescope", str(tmp_path / "gs"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 of 2 submissions pass every part" in r.stdout
    assert any(ln.startswith("linear") and "FAIL" in ln for ln in r.stdout.splitlines())
    assert len(list(csv.DictReader(open(tmp_path / "g.csv")))) == 2
    assert json.load(open(tmp_path / "g.json"))["submissions"][1]["passed"] is True
    assert (tmp_path / "gs" / "answers" / "results.json").is_file()
    r = run_cli("assignment", "grade", str(answers), "--parts", "embedding")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of 1 parts pass" in r.stdout


def test_cli_grade_errors_are_one_line_with_exit_2(tmp_path):
    r = run_cli("assignment", "grade", str(tmp_path / "nonexistent"))
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "does not exist" in line and "not a student copy" not in line
    r = run_cli("assignment", "grade", str(tmp_path))
    assert r.returncode == 2 and "is not a student copy" in r.stderr


# --- the oracle ----------------------------------------------------------------------------
def test_the_oracles_finite_differences_and_errors():
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    g = oracle.numerical_gradient(lambda: float(np.sum(np.sin(x) * x)), x)
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-8)
    assert oracle.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert oracle.rel_error([1.0, 2.0], [1.0, 1.0]) == pytest.approx(0.5)
    assert oracle.worst([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [0.0, 4.0]]) == ((1, 0), 3.0, 0.0)
    p = {"w": np.array([5.0])}
    opt = oracle.Adam(p, 0.1)
    for _ in range(200):
        opt.step({"w": 2 * p["w"]})
    assert abs(p["w"][0]) < 0.1


def test_the_oracles_sigmoid_and_masked_softmax_are_stable():
    s = oracle.sigmoid(np.array([-800.0, 0.0, 800.0]))
    assert s.tolist() == [0.0, 0.5, 1.0]
    e = np.array([[1e4, -1e4, 5.0]])
    alpha = oracle.masked_softmax(e, np.array([[False, True, True]]))
    assert alpha[0, 0] == 0 and np.isfinite(alpha).all() and alpha.sum() == pytest.approx(1)


def test_the_oracles_reverse_task():
    src, tgt = oracle.reverse_task(np.random.default_rng(0), 8, 5, 1, 4)
    for s, t in zip(src, tgt):
        seq = [int(v) for v in s if v]
        assert t[0] == oracle.BOS and [int(v) for v in t[1:len(seq) + 1]] == seq[::-1]
        assert t[len(seq) + 1] == oracle.EOS and not t[len(seq) + 2:].any()
