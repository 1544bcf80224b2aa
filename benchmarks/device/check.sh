#!/usr/bin/env bash
# The GPU check, run on a lent GPU machine in one call (about 8 minutes):
#   1. the versions of the driver, CuPy, NumPy and torch;
#   2. the whole test suite with MINIS2S_BACKEND=cupy;
#   3. the CuPy-against-PyTorch-CUDA benchmark at B = 512 (configuration A).
# Everything is written under $OUT (the device tool brings it back) or runs/device here.
#
# Prepare here with `bash benchmarks/device/fetch_wheels.sh` (the machine has no network),
# then call the device tool's run with carry [".whl"] and the command
#   bash benchmarks/device/check.sh
# See docs/benchmarks.md, "GPU (CuPy)".
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
    export PATH=/tmp/site/bin:$PATH
else
    export PYTHONPATH=$PWD
fi
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, '| numpy', \
numpy.__version__, '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuDNN', \
torch.backends.cudnn.version(), '| CPUs', __import__('os').cpu_count())"
} 2>&1 | tee "$OUT/versions.txt"

# 2. the suite on CuPy (8 workers share the GPU; CuPy's kernel cache is shared on disk)
MINIS2S_BACKEND=cupy timeout 330 python3 -m pytest -q -n 8 -p no:cacheprovider -rs \
    --junitxml="$OUT/tests_cupy.xml" 2>&1 | tail -60 > "$OUT/tests_cupy.log"
echo "suite on cupy: exit $? (see tests_cupy.log)"; tail -3 "$OUT/tests_cupy.log"

# 3. one epoch of configuration A at B = 512, minis2s on CuPy against torch on CUDA
timeout 200 python3 benchmarks/vs_torch.py --config A --device cuda --batch-size 512 \
    --repeats 2 --threads 16 --json "$OUT/vs_torch_A_cuda_b512.json" 2>&1 \
    | tee "$OUT/vs_torch_A_cuda_b512.log"

# 4. the date task trains to the same accuracy on CuPy (docs/benchmarks.md: 99.78% exact match
#    after 3 epochs on NumPy)
timeout 150 python3 -m minis2s train --task dates --model attention --epochs 3 --backend cupy --no-progress \
    --out /tmp/dates_cupy 2>&1 | tail -25 | tee "$OUT/train_dates_cupy.log"
