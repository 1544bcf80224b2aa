#!/usr/bin/env bash
# Download, here, the wheels that the GPU machine lacks (it has no network; see
# docs/benchmarks.md, "GPU"): Python 3.12, manylinux x86-64. They land in .whl/ (git-ignored),
# which the device run carries and installs with benchmarks/device/check.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir -p .whl
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do plat+=(--platform "$p"); done
# the data generators and the test tools that the GPU image does not hold
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d .whl faker babel ruff nbclient nbformat ipykernel
# pip fetched the dependencies too; drop those the image already has (KINDS.md's list) so
# that its versions (numpy, matplotlib, ...) stay in charge there
cd .whl
for have in numpy matplotlib packaging pillow python_dateutil six typing_extensions tqdm \
            contourpy cycler fonttools kiwisolver pyparsing attrs jsonschema referencing \
            rpds_py jsonschema_specifications platformdirs psutil pygments; do
    rm -f "${have}"-*.whl
done
ls
du -sh .
