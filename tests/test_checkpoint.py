"""Checkpoints: round trips, atomic writes, and clear errors for bad files."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minis2s
from minis2s import backend, optim
from minis2s.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minis2s.data import Vocab
from minis2s.testing import tiny_batch, tiny_model
from tests.helpers import rewrite_checkpoint_meta


def trained(seed=0, steps=3):
    model = tiny_model("Seq2Seq", dtype="float32", seed=seed)
    opt = optim.Adam(model.params, model.grads, lr=0.01)
    src, tgt = tiny_batch(model)
    for _ in range(steps):
        model.forward(src, tgt)
        model.backward()
        opt.step()
    return model, opt


def test_full_round_trip(tmp_path):
    model, opt = trained()
    vocab = Vocab(list("abc"))
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, model, {"src": vocab, "tgt": vocab}, opt, {"epoch": 3, "note": "x"})
    ck = load_checkpoint(path, expect="Seq2Seq")
    assert ck.extra == {"epoch": 3, "note": "x"}
    assert ck.vocabs["src"] == vocab
    for k in model.params:
        np.testing.assert_array_equal(backend.to_numpy(ck.model.params[k]),
                                      backend.to_numpy(model.params[k]))
    opt2 = optim.Adam(ck.model.params, ck.model.grads, lr=0.01)
    ck.restore_optimizer(opt2)
    assert opt2.t == opt.t
    with pytest.raises(CheckpointError, match="Adagrad"):
        ck.restore_optimizer(optim.Adagrad(ck.model.params, ck.model.grads))


def test_truncated_file(tmp_path):
    model, _ = trained()
    path = tmp_path / "m.ckpt"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a checkpoint"):
        minis2s.load(path)


def test_corrupt_byte_is_caught_by_checksum(tmp_path):
    model, _ = trained()
    path = tmp_path / "m.ckpt"
    model.save(path)
    # flip a byte inside a parameter array without breaking the zip structure: rewrite one
    # array entry with changed values but keep the stored checksum
    import zipfile

    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in entries if n.startswith("param/"))
    raw = bytearray(entries[name])
    raw[-1] ^= 0xFF
    entries[name] = bytes(raw)
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        minis2s.load(path)


def test_wrong_version_and_wrong_model(tmp_path):
    model, _ = trained()
    path = tmp_path / "m.ckpt"
    model.save(path)
    with pytest.raises(CheckpointError, match="holds a Seq2Seq, not a PointerGenerator"):
        load_checkpoint(path, expect="PointerGenerator")
    rewrite_checkpoint_meta(path, lambda m: m.update(version=99))
    with pytest.raises(CheckpointError, match="version 99"):
        minis2s.load(path)
    rewrite_checkpoint_meta(path, lambda m: m.update(version=1, model_class="Transformer"))
    with pytest.raises(CheckpointError, match="unknown model class 'Transformer'"):
        minis2s.load(path)


def test_not_a_checkpoint_and_missing(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt: not a minis2s checkpoint .not a zip"):
        minis2s.load(p)  # not NumPy's advice to load pickles unsafely
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(CheckpointError, match="run is a directory, not a checkpoint file; give"):
        minis2s.load(run)
    (run / "best.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=f"did you mean {run / 'best.ckpt'}"):
        minis2s.load(run)
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="no __meta__"):
        minis2s.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        minis2s.load(tmp_path / "nope.ckpt")


def test_write_killed_halfway_keeps_the_previous_checkpoint(tmp_path):
    """A subprocess is killed in the middle of writing; the old file must still load."""
    model, _ = trained(seed=1)
    path = tmp_path / "m.ckpt"
    model.save(path)
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, sys
        import minis2s.checkpoint as ck
        from minis2s.testing import tiny_model
        def die(fd):  # the data is in the temp file, not yet renamed: die now
            os.kill(os.getpid(), signal.SIGKILL)
        ck.os.fsync = die
        ck.save_checkpoint({str(path)!r}, tiny_model("Seq2Seq", dtype="float32", seed=9))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert r.returncode != 0  # it really died
    assert path.read_bytes() == before
    loaded = minis2s.load(path)
    k = next(iter(model.params))
    np.testing.assert_array_equal(backend.to_numpy(loaded.params[k]),
                                  backend.to_numpy(model.params[k]))
    leftovers = [f for f in os.listdir(tmp_path) if f != "m.ckpt"]
    assert all(f.startswith(".m.ckpt.") and f.endswith(".part") for f in leftovers)  # orphan
