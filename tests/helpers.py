"""Small helpers shared by several test modules."""

import io
import json
import zipfile

import numpy as np


def rewrite_checkpoint_meta(path, change):
    """Edit the JSON metadata of a checkpoint in place with ``change(meta)`` (the checksum covers
    only the arrays, so the file stays readable)."""
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(io.BytesIO(entries["__meta__.npy"])).tobytes().decode())
    change(meta)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    entries["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
