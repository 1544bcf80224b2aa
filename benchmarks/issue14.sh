#!/usr/bin/env bash
# The timings of docs/benchmarks.md "Fast on real vocabularies" in one go, on an otherwise idle
# machine: configuration R (one epoch, 1 and 2 threads, bucketed and not), configuration A (per
# step alternating in one process, per step in two processes taking turns (--lockstep), and per
# epoch in separate processes, unbucketed, default threads; and per bucketed epoch, and its turns),
# configuration R with 2 threads bucketed in turns too, configuration B and BR.
# Usage: bash benchmarks/issue14.sh OUT_DIR
set -u
out=${1:-runs/issue14}
mkdir -p "$out"
cd "$(dirname "$0")/.."
run() { name=$1; shift; echo "== $name: python benchmarks/vs_torch.py $*"; python benchmarks/vs_torch.py "$@" --json "$out/$name.json" 2>&1 | grep -v "became <unk>"; }
# R on a seeded 25,000-pair subset of the epoch (the full vocabularies), to fit a session
n=${N_TRAIN_R:-25000}
run R-t1-bucket --config R --threads 1 --repeats 1 --n-train "$n"
run R-t2-bucket --config R --threads 2 --repeats 1 --n-train "$n"
run R-t1-nobucket --config R --threads 1 --repeats 1 --no-bucket --n-train "$n"
run R-t2-nobucket --config R --threads 2 --repeats 1 --no-bucket --n-train "$n"
run A-t2-perstep-nobucket --config A --threads 2 --no-bucket --per-step 60
run A-t2-lockstep-nobucket --config A --threads 2 --no-bucket --lockstep 16 --chunks 20
run A-t2-nobucket --config A --threads 2 --repeats 1 --no-bucket  # per epoch, separate processes
run A-t2-lockstep-bucket --config A --threads 2 --lockstep 16 --chunks 20
run A-t2-bucket --config A --threads 2 --repeats 1
run R-t2-lockstep-bucket --config R --threads 2 --lockstep 8 --chunks 25
run B-t2 --config B --threads 2 --repeats 1
run BR-t2 --config BR --threads 2 --repeats 1 --n-train 10000
