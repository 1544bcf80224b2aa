"""Shared by the benchmark scripts: writing results as JSON with the machine they ran on."""

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
