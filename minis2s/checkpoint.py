"""Checkpoints: one file holding a model's class, config and params, and optionally the
vocabularies, the optimizer state and training progress.

The file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, loaded with
``allow_pickle=False``), whatever its name:

- ``__meta__``: UTF-8 JSON as a uint8 array: ``format``, ``version``, ``model_class``,
  ``config``, ``vocabs``, ``optimizer`` (class and hyperparameters), ``extra`` and ``checksum``
  (SHA-256 over the names and bytes of every array, so a flipped byte is caught);
- ``param/<name>``: each parameter; ``optim/<slot>/<name>``: each optimizer state array.

Writes are atomic: the archive is written to a temporary file in the same directory, flushed to
disk, then renamed over ``path``. A write killed halfway leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .files import atomic_write

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint", "load",
           "register_models", "MODEL_CLASSES", "FORMAT", "VERSION"]

FORMAT = "minis2s-checkpoint"
VERSION = 1

#: class name -> model class, the classes :func:`load_checkpoint` can rebuild. ``minis2s.models``
#: registers its models here (:func:`register_models`), so that this module imports no model:
#: the models import it (``Model.save``), and nothing imports in a circle.
MODEL_CLASSES: dict = {}


def register_models(classes):
    """Let :func:`load_checkpoint` rebuild these model classes (an iterable of classes, or a
    dict name -> class), each by its ``__name__``. Returns them."""
    for cls in (classes.values() if isinstance(classes, dict) else classes):
        if not isinstance(cls, type):
            raise TypeError(f"register_models takes model classes; got {cls!r}")
        MODEL_CLASSES[cls.__name__] = cls
    return classes


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt, of another version or another model."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    model: object
    vocabs: dict = field(default_factory=dict)  # name -> minis2s.data.Vocab
    optimizer: dict | None = None  # {"class", "hyper", "state"} or None
    extra: dict = field(default_factory=dict)
    path: str = ""

    def restore_optimizer(self, opt):
        """Load the saved optimizer state into ``opt`` (of the same class)."""
        if self.optimizer is None:
            raise CheckpointError(f"{self.path}: the checkpoint holds no optimizer state")
        if type(opt).__name__ != self.optimizer["class"]:
            raise CheckpointError(
                f"{self.path}: optimizer state is for {self.optimizer['class']}, not "
                f"{type(opt).__name__}"
            )
        opt.load_state_dict(self.optimizer["state"])


def _checksum(arrays):
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, model, vocabs=None, optimizer=None, extra=None):
    """Write ``model`` (and optionally vocabs, optimizer state, extra JSON data) to ``path``.

    Args:
        path: the file to write; exactly this name is used (no suffix is added).
        model: a minis2s model.
        vocabs: dict name -> Vocab (e.g. ``{"src": v, "tgt": v}``), or None.
        optimizer: a minis2s.optim optimizer, or None.
        extra: JSON-serialisable dict (epoch, step, history, ...), or None.
    """
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    opt_meta = None
    if optimizer is not None:
        st = optimizer.state_dict()
        for k, a in st["slots"].items():
            arrays[f"optim/{k}"] = a
        hyper = {k: v for k, v in vars(optimizer).items()
                 if isinstance(v, (int, float)) and not k.startswith("_")}
        opt_meta = {"class": type(optimizer).__name__, "t": st["t"], "lr": st["lr"],
                    "hyper": hyper}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model_class": type(model).__name__,
        "config": model.config,
        "vocabs": {k: v.to_dict() for k, v in (vocabs or {}).items()},
        "optimizer": opt_meta,
        "extra": extra or {},
        "checksum": _checksum(arrays),
    }
    try:
        text = json.dumps(meta)
    except TypeError as e:  # e.g. a model built with seed=np.random.Generator, or odd extra
        raise TypeError(f"cannot save {os.fspath(path)!r}: the model's config and extra must be "
                        f"JSON-serialisable ({e}); config {model.config!r:.200}") from None
    arrays["__meta__"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isdir(path):
        inside = [n for n in ("best.ckpt", "last.ckpt") if os.path.isfile(os.path.join(path, n))]
        hint = (f"did you mean {os.path.join(path, inside[0])}?" if inside else
                "give a checkpoint file, such as the best.ckpt that 'minis2s train' writes "
                "into its --out directory")
        raise CheckpointError(f"{path} is a directory, not a checkpoint file; {hint}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # every .npz archive is a zip file
        kind = "an empty file" if not head else "not a zip archive"
        raise CheckpointError(f"{path}: not a minis2s checkpoint ({kind}; a checkpoint is the "
                              ".npz archive that model.save or 'minis2s train' writes)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError(
            f"{path}: not a readable minis2s checkpoint (truncated or not a checkpoint: "
            f"{type(e).__name__}: {e})"
        ) from None
    if "__meta__" not in arrays:
        raise CheckpointError(f"{path}: not a minis2s checkpoint (no __meta__ entry)")
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a minis2s checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('version')!r}; this minis2s reads "
            f"version {VERSION}"
        )
    if _checksum(arrays) != meta.get("checksum"):
        raise CheckpointError(f"{path}: checksum mismatch: the file is corrupt")
    return meta, arrays


def load_checkpoint(path, expect=None) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the file.
        expect: optional model class (or class name) the file must hold.

    Raises:
        FileNotFoundError, or CheckpointError for a truncated, corrupt, wrong-version or
        wrong-model file.
    """
    meta, arrays = _read(path)
    cls_name = meta["model_class"]
    if cls_name not in MODEL_CLASSES:
        raise CheckpointError(f"{path}: unknown model class {cls_name!r}; this minis2s knows "
                              f"{', '.join(sorted(MODEL_CLASSES))}")
    if expect is not None:
        want = expect if isinstance(expect, str) else getattr(expect, "__name__", None)
        if not isinstance(want, str):
            raise TypeError(f"expect must be a model class or its name; got {expect!r}")
        if want != cls_name:
            raise CheckpointError(f"{path}: holds a {cls_name}, not a {want}")
    try:
        model = MODEL_CLASSES[cls_name](**meta["config"])
    except (TypeError, ValueError) as e:  # a config this minis2s cannot build
        raise CheckpointError(f"{path}: its config does not build a {cls_name}: {e}") from None
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    try:
        model.load_state_dict(params)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    vocabs = {}
    if meta.get("vocabs"):
        from .data.vocab import Vocab

        vocabs = {k: Vocab.from_dict(d) for k, d in meta["vocabs"].items()}
    optimizer = None
    if meta.get("optimizer"):
        om = meta["optimizer"]
        slots = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
        optimizer = {"class": om["class"], "hyper": om["hyper"],
                     "state": {"t": om["t"], "lr": om["lr"], "slots": slots}}
    return Checkpoint(model, vocabs, optimizer, meta.get("extra", {}), os.fspath(path))


def load(path):
    """Load the model saved at ``path`` (by ``model.save`` or a training checkpoint)."""
    return load_checkpoint(path).model


