"""The tutorial notebooks in notebooks/: committed in shape, and executable top to bottom.

Every ``notebooks/*.ipynb`` is picked up automatically.

- The cheap test reads each committed notebook as JSON: a title cell that names the article
  section it follows (§), an "Exercises" section at the end, outputs from one clean top-to-bottom
  run with no errors, from a normal run (not small mode), and support for the small-mode switch.
- The slow test executes each notebook with nbclient in a temporary copy, with
  ``MINIS2S_NOTEBOOK_SMALL=1`` (every training cell tiny) and ``MPLBACKEND=Agg``, and fails on
  the first cell that raises.
"""

import json
import os
import pathlib
import re
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
CELL_TIMEOUT = 300  # seconds per cell
SMALL_ENV = "MINIS2S_NOTEBOOK_SMALL"
HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$")


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _text_outputs(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(_source({"source": o.get("text", "")}))
        elif "data" in o and "text/plain" in o["data"]:
            out.append(_source({"source": o["data"]["text/plain"]}))
    return "".join(out)


def _errors(nb):
    return [
        f"cell {k + 1}: {o.get('ename')}: {o.get('evalue')}"
        for k, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
        for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]


def test_the_tutorial_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    for name in ("00_setup_and_backends.ipynb", "01_seq2seq_and_the_encoder.ipynb",
                 "02_the_decoder.ipynb", "03_attention.ipynb", "04_pointer_generator.ipynb",
                 "05_training_and_inference.ipynb", "06_gradient_checking.ipynb",
                 "07_translation.ipynb"):
        assert name in names, f"notebooks/{name} is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_in_shape(path):
    nb = _load(path)
    cells = nb["cells"]
    assert nb.get("metadata", {}).get("kernelspec", {}).get("name") == "python3"

    # A title that names the article section(s) it follows.
    markdown = [c for c in cells if c["cell_type"] == "markdown"]
    assert markdown and cells[0] is markdown[0], "the first cell must be markdown (the title)"
    first = _source(cells[0])
    assert first.lstrip().startswith("# "), "the first cell must start with a '# ' title"
    assert "§" in first, "the first markdown cell must name the article section it follows (§)"

    # A note near the top says which tier of the library it shows (reference or fast).
    top = " ".join(_source(c) for c in markdown[:3]).lower()
    assert "tier" in top, "a note near the top must say which tier (reference or fast) it shows"

    # It ends with an Exercises section.
    headings = [m.group(1) for c in markdown for line in _source(c).splitlines()
                if (m := HEADING.match(line))]
    assert headings and "exercises" in headings[-1].lower(), (
        f"the last heading must be 'Exercises'; it is {headings[-1:]!r}")
    assert cells[-1]["cell_type"] == "markdown" and "Exercises" in _source(cells[-1])

    # Committed with outputs, from one clean run top to bottom, without errors.
    code = [c for c in cells if c["cell_type"] == "code" and _source(c).strip()]
    assert code, "a notebook without code"
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"execution counts {counts}: run the notebook top to bottom in a fresh kernel and "
        "commit it with its outputs")
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 2
    assert not _errors(nb), _errors(nb)

    # It honours the small-mode switch, and its committed outputs come from a normal run.
    all_code = "\n".join(_source(c) for c in code)
    assert SMALL_ENV in all_code, f"the notebook must read {SMALL_ENV} (tiny training runs)"
    assert "small mode: True" not in "".join(_text_outputs(c) for c in code), (
        "the committed outputs come from a small-mode run; re-run without "
        f"{SMALL_ENV}=1 before committing")


def _kernel_available():
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return False
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_executes_in_small_mode(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    if not _kernel_available():
        pytest.skip("no 'python3' Jupyter kernel (pip install ipykernel)")

    # The kernel inherits this environment.
    monkeypatch.setenv(SMALL_ENV, "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        # small matrices: one BLAS thread is fastest, and far faster on a busy machine
        if var not in os.environ:
            monkeypatch.setenv(var, "1")

    # A temporary copy (with any helper modules beside the notebooks), run from there, so
    # nothing a notebook writes lands in the repository.
    work = tmp_path / path.name
    shutil.copyfile(path, work)
    for helper in NOTEBOOK_DIR.glob("*.py"):
        shutil.copyfile(helper, tmp_path / helper.name)

    nb = nbformat.read(work, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name}: a cell raised:\n{e}", pytrace=False)
    assert not _errors(nb), _errors(nb)
    printed = "".join(_text_outputs(c) for c in nb.cells if c.cell_type == "code")
    assert "small mode: True" in printed or "small mode:" not in printed
