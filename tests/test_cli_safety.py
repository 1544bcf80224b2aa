"""The command line's safety with files: a bad backend in the environment, file permissions,
an --out that holds a run, two runs into one --out, a run killed while it saves best.ckpt, and a
full disk."""

import errno
import importlib.util
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from minis2s import backend
from minis2s.checkpoint import load_checkpoint
from minis2s.cli import main
from minis2s.train import RunLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(out, model="seq2seq", *extra):
    """A run of a second or so."""
    return ["train", "--task", "reverse", "--model", model, "--n-train", "64", "--n-val", "8",
            "--n-test", "8", "--epochs", "1", "--batch-size", "32", "--hidden-dim", "8",
            "--embed-dim", "4", "--no-progress", "--out", str(out), *extra]


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("minis2s: error: ") and "Traceback" not in err
    return err


def run_module(*args, env=None):
    return subprocess.run([sys.executable, "-m", "minis2s", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, **(env or {})})


# --- MINIS2S_BACKEND and friends -----------------------------------------------------------------
@pytest.mark.parametrize("variable, value, says", [
    ("MINIS2S_BACKEND", "foo", "unknown backend 'foo'"),
    ("MINIS2S_BACKEND", "cupy", "cupy"),
    ("MINIS2S_IMPL", "slow", "impl must be one of"),
])
def test_a_bad_environment_variable_is_one_line_and_status_2(variable, value, says):
    if value == "cupy" and importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here: MINIS2S_BACKEND=cupy may well work")
    r = run_module("gradcheck", env={variable: value, "MINIS2S_DEBUG": ""})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"minis2s: error: {variable}={value}: ") and says in lines[0]


def test_the_library_still_raises_a_bad_environment_variable():
    code = ("import sys\ntry:\n    import minis2s\nexcept RuntimeError as e:\n"
            "    print(type(e).__name__)\n    sys.exit(0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=ROOT, env={**os.environ, "MINIS2S_BACKEND": "foo"})
    assert r.returncode == 0 and r.stdout.strip() == "BackendError", r.stderr


# --- permissions ---------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_file_of_a_run_follows_the_umask(tmp_path, umask, capsys):
    old = os.umask(umask)
    try:
        assert main(tiny(tmp_path / "run", "attention")) == 0
    finally:
        os.umask(old)
    files = sorted(p for p in (tmp_path / "run").iterdir())
    names = {p.name for p in files}
    assert {"best.ckpt", "last.ckpt", "loss_curve.png", "metrics.json", "attention_0.png"} <= names
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p.name


# --- an --out that holds a run -------------------------------------------------------------------
def test_an_out_holding_a_run_is_refused_and_force_removes_the_stale_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny(out, "attention")) == 0
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "attention_0.png" in before
    capsys.readouterr()
    assert main(tiny(out, "seq2seq")) == 2
    err = one_line_error(capsys)
    assert f"--out {out} already holds a run" in err and "--force" in err and "--resume" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    assert main(tiny(out, "seq2seq", "--force")) == 0
    assert "--force: removed the" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.startswith("attention_")]  # nothing stale
    assert {"best.ckpt", "last.ckpt", "loss_curve.png", "metrics.json", "notes.txt"} == names
    assert type(load_checkpoint(out / "best.ckpt").model).__name__ == "Seq2Seq"


def test_a_refused_run_leaves_no_new_directory(tmp_path, capsys):
    out = tmp_path / "new"
    assert main(tiny(out, "seq2seq", "--coverage")) == 2
    assert main(tiny(out, "seq2seq") + ["--task", "poetry"]) == 2
    assert not out.exists()


# --- two runs into one --out ---------------------------------------------------------------------
def test_a_second_run_into_a_locked_out_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        assert main(tiny(out)) == 2
        err = one_line_error(capsys)
        assert f"{out} is in use by another minis2s run (pid {os.getpid()})" in err
        assert not (out / "last.ckpt").exists()
    assert main(tiny(out)) == 0  # released
    assert not (out / ".minis2s.lock").exists()


def test_a_run_that_was_killed_holds_no_lock(tmp_path, capsys):
    out = tmp_path / "run"
    code = textwrap.dedent(f"""
        import os, signal
        from minis2s.train import RunLock
        RunLock({str(out)!r}).acquire() if os.path.isdir({str(out)!r}) else None
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out.mkdir()
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
    assert r.returncode == -signal.SIGKILL
    assert (out / ".minis2s.lock").exists()  # left behind, but nobody holds it
    assert main(tiny(out)) == 0


def test_run_lock_refuses_a_second_holder(tmp_path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(ValueError, match="in use by another minis2s run"):
        RunLock(tmp_path).acquire()
    first.release()
    RunLock(tmp_path).acquire().release()


# --- killed while saving best.ckpt ---------------------------------------------------------------
def test_a_run_killed_while_it_writes_best_ckpt_keeps_the_previous_best(tmp_path):
    """fit writes last.ckpt then best.ckpt after every epoch (every epoch is "best" without
    validation data). The process is killed with SIGKILL in the middle of epoch 2's best.ckpt:
    the data is in the temporary file, not yet renamed. best.ckpt must still be epoch 1's."""
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, signal
        import minis2s.files as files
        import minis2s.train as train
        from minis2s import optim
        from minis2s.data import Vocab, encode_pairs, make_splits
        from minis2s.models import Seq2Seq

        writes = []
        real_fsync = os.fsync
        def fsync(fd):  # the 2nd write of best.ckpt dies before its rename
            name = os.readlink(f"/proc/self/fd/{{fd}}")
            if os.path.basename(name).startswith(".best.ckpt."):
                writes.append(name)
                if len(writes) == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
            real_fsync(fd)
        files.os.fsync = fsync
        pairs, _, _ = make_splits("reverse", (64, 0, 0), seed=0)
        v = Vocab.build([s for s, _ in pairs])
        ex = encode_pairs(pairs, v, v)
        model = Seq2Seq(len(v), len(v), embed_dim=4, hidden_dim=8)
        opt = optim.Adam(model.params, model.grads)
        train.fit(model, opt, ex, None, epochs=3, batch_size=32, out_dir={str(out)!r},
                  vocabs={{"src": v, "tgt": v}}, progress=False, log=None)
    """)
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to name the file being written")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr  # it really died, mid-save
    best, last = load_checkpoint(out / "best.ckpt"), load_checkpoint(out / "last.ckpt")
    assert best.extra["epoch"] == 1 and last.extra["epoch"] == 2
    assert best.optimizer is not None and best.vocabs["src"] == last.vocabs["src"]
    leftovers = [p.name for p in out.iterdir()
                 if p.name not in ("best.ckpt", "last.ckpt", "loss_curve.png")]
    assert all(n.startswith(".best.ckpt.") and n.endswith(".part") for n in leftovers)
    assert len(leftovers) == 1  # the orphaned temporary file, never read as a checkpoint


# --- a full disk ---------------------------------------------------------------------------------
class _FullDisk:
    """Stands in for the ``os`` module inside minis2s.files: every write fails with ENOSPC."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fdopen(fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)

        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

            def __getattr__(self, name):
                return getattr(f, name)

        return Full()


def test_a_full_disk_is_one_line_naming_the_path_and_nothing_is_half_written(
        tmp_path, capsys, monkeypatch):
    import minis2s.files

    out = tmp_path / "run"
    assert main(tiny(out)) == 0
    before = (out / "last.ckpt").read_bytes()
    monkeypatch.setattr(minis2s.files, "os", _FullDisk())
    args = tiny(out, "seq2seq", "--resume")
    args[args.index("--epochs") + 1] = "2"
    capsys.readouterr()
    assert main(args) == 2
    err = one_line_error(capsys)
    assert err == (f"minis2s: error: cannot write {str(out / 'last.ckpt')!r}: no space left on "
                   "the device")
    monkeypatch.undo()
    assert (out / "last.ckpt").read_bytes() == before  # the previous checkpoint, intact
    assert load_checkpoint(out / "last.ckpt").extra["epoch"] == 1
    assert not [p.name for p in out.iterdir() if p.name.endswith(".part")]  # no temp file
    assert not (out / ".minis2s.lock").exists()


def test_a_full_disk_on_a_first_run_leaves_no_checkpoint(tmp_path, capsys, monkeypatch):
    import minis2s.files

    monkeypatch.setattr(minis2s.files, "os", _FullDisk())
    assert main(tiny(tmp_path / "run")) == 2
    assert "no space left on the device" in one_line_error(capsys)
    monkeypatch.undo()
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_backend_and_tier_are_restored_after_a_command(tmp_path, capsys):
    before = backend.impl()  # "fast", or "reference" under MINIS2S_IMPL=reference
    name = backend.name  # "numpy", or "cupy" under MINIS2S_BACKEND=cupy
    assert main(["--impl", "reference", "gradcheck", "--layers", "1"]) == 0
    assert backend.impl() == before and backend.name == name
    assert main(["--impl", "fast", "gradcheck", "--layers", "1"]) == 0
    assert backend.impl() == before
