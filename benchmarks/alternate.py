"""One minis2s epoch per fresh process, alternating between environment settings.

    python benchmarks/alternate.py --config A --threads 2 --repeats 4 \
        --setting default: \
        --setting malloc:MALLOC_MMAP_THRESHOLD_=1073741824,MALLOC_TRIM_THRESHOLD_=4294967296

Each setting is ``NAME:VAR=VALUE,VAR=VALUE`` (nothing after the colon: the environment as it
is). Round r runs the settings in order when r is even and in reverse when r is odd, so that a
drift of the machine's speed weighs on all of them alike. An epoch is ``vs_torch.py``'s timed
minis2s epoch (the configuration's batches, the twin's initial weights); each process also
reports its peak RSS and its minor page faults during the epoch.

Why fresh processes: timing two variants step by step in one process favours whichever runs
second on a batch (its buffers come warm from the allocator). That misled us once
(docs/benchmarks.md, "Compiled GRU steps").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = """
import json, resource, sys, multiprocessing as mp
sys.path.insert(0, {here!r})
import vs_torch
cfg = json.loads({cfg!r})
q = mp.Queue()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
vs_torch.run_minis2s(cfg, q)
res = q.get()
res["minor_faults"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps(res))
"""


def parse_setting(text):
    name, sep, pairs = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--setting must be NAME:VAR=VALUE,...; got {text!r}")
    env = {}
    for pair in filter(None, pairs.split(",")):
        var, eq, value = pair.partition("=")
        if not eq or not var:
            raise argparse.ArgumentTypeError(f"--setting {name}: {pair!r} is not VAR=VALUE")
        env[var] = value
    return name, env


def main(argv=None):
    sys.path.insert(0, HERE)
    import vs_torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="A", choices=sorted(vs_torch.CONFIGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--repeats", type=int, default=2, help="rounds (each runs every setting)")
    ap.add_argument("--setting", type=parse_setting, action="append", required=True)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    cfg = dict(vs_torch.CONFIGS[args.config], threads=args.threads, device="cpu",
               bucket=args.bucket, seed=0)
    if args.n_train is not None:
        cfg["n_train"] = args.n_train
    threads = str(args.threads)
    runs = {name: [] for name, _ in args.setting}
    for r in range(args.repeats):
        order = args.setting if r % 2 == 0 else args.setting[::-1]
        for name, env in order:
            code = CHILD.format(here=HERE, cfg=json.dumps(cfg))
            full_env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, **env}
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  env=full_env)
            if proc.returncode:
                sys.exit(f"setting {name}: the child failed:\n{proc.stderr}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(res)
            print(f"round {r} {name:>12}: epoch {res['time']:7.2f} s  peak RSS "
                  f"{res['peak_rss']:6.1f} MB  minor faults {res['minor_faults']:,}  "
                  f"loss {res['loss']:.4f}", flush=True)
    summary = {name: dict(mean=statistics.mean(r["time"] for r in rs),
                          median=statistics.median(r["time"] for r in rs),
                          peak_rss=max(r["peak_rss"] for r in rs)) for name, rs in runs.items()}
    for name, s in summary.items():
        print(f"{name:>12}: mean {s['mean']:.2f} s, median {s['median']:.2f} s, "
              f"peak RSS {s['peak_rss']:.0f} MB")
    if args.json:
        from _common import write_json

        write_json(args.json, config=cfg, settings=dict(args.setting), runs=runs,
                   summary=summary)


if __name__ == "__main__":
    main()
