#!/usr/bin/env bash
# The GPU checks of issue 5 in one pass, for a lent CUDA machine (bare, no registry access):
# the CUDA tests, the pipeline throughput against the I/O roofline, CPU/GPU agreement, GPU
# kNN, and the same pipeline on that machine's CPU. Each phase has its own time limit and
# writes its figures under $OUT (default ./gpu-out); a phase that fails does not stop the rest.
#
# Packages the machine lacks travel as wheels in .whl/ (see benchmarks/README.md), made with
# `pip download --no-deps --only-binary=:all: --python-version 3.12 ...` and
# `pip wheel --no-deps -w .whl .` (this project, for its entry points and metadata).
#
#   OUT=/tmp/gpu-out bash benchmarks/gpu_check.sh [budget seconds, default 540]
#   PHASES=cuda-tests,pipeline-cuda SCENES=32 bash benchmarks/gpu_check.sh 250   # a subset
set -u
OUT=${OUT:-gpu-out}
BUDGET=${1:-540}
PHASES=${PHASES:-all}
SCENES=${SCENES:-64}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
LOG="$OUT/log.txt"
exec > >(tee -a "$LOG") 2>&1

phase() {  # phase NAME LIMIT_SECONDS COMMAND...: run unless the budget is spent
    local name=$1 limit=$2
    shift 2
    [[ $PHASES == all || ",$PHASES," == *",$name,"* ]] || return 0
    local left=$((BUDGET - SECONDS))
    ((limit > left)) && limit=$left
    if ((limit < 15)); then
        echo "=== $name: skipped, ${left}s of the budget left"
        return
    fi
    echo "=== $name (limit ${limit}s, at ${SECONDS}s)"
    timeout "$limit" "$@"
    echo "=== $name: rc $? at ${SECONDS}s"
}

WHEELS=${WHEELS:-.whl}
if [ -d "$WHEELS" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,power.draw,clocks.sm --format=csv
python3 - <<'EOF' || exit 1
import torch, rasterio, pyarrow, numpy
import dafab_static.pipeline, dafab_static.search
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")
print("rasterio", rasterio.__version__, "gdal", rasterio.__gdal_version__,
      "pyarrow", pyarrow.__version__, "numpy", numpy.__version__)
EOF

PYTEST=(python3 -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning
        -W ignore::FutureWarning)
phase cuda-tests 90 "${PYTEST[@]}" tests/derive/test_cloud.py tests/pipeline/test_known_answers.py \
    -k "cuda or gpu"
phase pipeline-cuda 210 python3 benchmarks/bench_pipeline.py --device cuda --scenes "$SCENES" \
    --size 2048 --workers 12 --json "$OUT/pipeline-cuda.json"
phase agreement 60 python3 benchmarks/gpu_agreement.py --scenes 4 --size 1024 \
    --json "$OUT/agreement.json"
phase knn-cuda 70 python3 benchmarks/bench_knn.py --variants writer --engines dafab,floor \
    --rounds 1 --repeat 5 --json "$OUT/knn-cuda.json"
phase knn-cpu 45 env CUDA_VISIBLE_DEVICES= python3 benchmarks/bench_knn.py --variants writer \
    --engines dafab --rounds 1 --repeat 5 --json "$OUT/knn-cpu.json"
phase pipeline-cpu 90 python3 benchmarks/bench_pipeline.py --device cpu --scenes 12 \
    --size 2048 --workers 12 --steps default --json "$OUT/pipeline-cpu.json"
phase all-pipeline-tests-on-cuda 150 "${PYTEST[@]}" tests/pipeline tests/derive
echo "=== done at ${SECONDS}s"
