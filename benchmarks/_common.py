"""Shared by the benchmark scripts: their common flags, and writing results as JSON with the
machine they ran on."""

import json
import os
import platform

from minis2s import backend


def machine():
    return dict(python=platform.python_version(), machine=platform.machine(),
                cpus=os.cpu_count(), backend=backend.name)


def write_json(path, **fields):
    """Write ``fields`` plus ``machine`` to ``path`` (creating its directory) and say so."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(fields, machine=machine()), f, indent=1)
    print(f"wrote {path}")


def add_common_args(p):
    """The flags every training benchmark takes: --clip, --dtype, --seed, --backend,
    --progress and --json."""
    p.add_argument("--clip", type=float, default=5.0, help="gradient clipping norm (default 5)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
