#!/usr/bin/env bash
# The one command a session with a GPU machine runs (issue 20; docs/benchmarks.md): the tests that touch the
# device path, on CUDA, then the GPU benchmark (benchmarks/bench_gpu.py), which writes
# benchmarks/results/gpu.json and the GPU section of BENCHMARKS.md. About 4-6 minutes on an H200 (at most
# TEST_TIMEOUT=150 + BENCH_TIMEOUT=390 seconds).
#
#   SBIR_COMMIT=<short hash> bash benchmarks/gpu_session.sh [bench_gpu.py options]
#
# SBIR_COMMIT: the commit measured (a copy of the tree without .git cannot tell). The race against the
# ConvNeXt seed runs when build/seed-repo holds its checkout (carry that folder). It uses the machine's
# python3 (PYTHON=... for another) with its own torch, torchvision, timm, numpy, pandas, pillow, PyYAML,
# tqdm, scipy and scikit-image; nothing is installed or downloaded. Everything it writes stays in the tree
# (build/, benchmarks/results/, BENCHMARKS.md) or goes to $OUT when set: tests.log, bench_gpu.log,
# gpu.json, BENCHMARKS.md and session.log. Exit status: the benchmark's (the tests' is in session.log).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-build/gpu-session}
mkdir -p "$OUT" build/gpu-session
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
export MPLCONFIGDIR="$PWD/build/gpu-session/mpl" SBIR_DATA_DIR="$PWD/build/test/data"
export SBIR_RUNS_DIR="$PWD/build/test/runs" SBIR_REPORTS_DIR="$PWD/build/test/reports"
export SBIR_COMMIT="${SBIR_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"

{
  echo "gpu_session.sh at commit $SBIR_COMMIT, $(date -Is)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader 2>&1 || true
  "$PY" -c "import sys, torch, torchvision, timm; print(sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, torch.cuda.is_available(), 'torchvision', torchvision.__version__, 'timm', timm.__version__)"
} 2>&1 | tee "$OUT/session.log"

# The CUDA checks of the test suite. Test modules that import packages this machine lacks (faiss, starlette,
# nbformat, playwright, ...) fail to collect; they are outside this selection and reported as collection errors.
start=$(date +%s)
timeout "${TEST_TIMEOUT:-150}" "$PY" -m pytest -q -p no:cacheprovider --basetemp build/gpu-session/pytest \
  --continue-on-collection-errors -k "engine or loading or transforms" tests >"$OUT/tests.log" 2>&1
test_rc=$?
[ $test_rc = 124 ] && echo "tests: stopped after ${TEST_TIMEOUT:-150} s (TEST_TIMEOUT)" >>"$OUT/tests.log"
echo "tests: exit $test_rc in $(( $(date +%s) - start )) s: $(tail -n 1 "$OUT/tests.log")" | tee -a "$OUT/session.log"
grep -E "^(FAILED|ERROR) " "$OUT/tests.log" | head -n 40 | tee -a "$OUT/session.log"

seed=()
[ -f build/seed-repo/train.py ] && seed=(--seed_repo build/seed-repo)
start=$(date +%s)
timeout "${BENCH_TIMEOUT:-390}" "$PY" benchmarks/bench_gpu.py --work build/gpu-session/work ${seed[@]+"${seed[@]}"} "$@" \
  >"$OUT/bench_gpu.log" 2>&1
bench_rc=$?
echo "bench_gpu.py: exit $bench_rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/session.log"
tail -n 15 "$OUT/bench_gpu.log"
rm -rf build/gpu-session/work build/gpu-session/pytest
if [ "$OUT" != build/gpu-session ]; then
  cp benchmarks/results/gpu.json BENCHMARKS.md "$OUT"/ 2>/dev/null
fi
sed -n '/^## 6\. GPU/,/^## Reproduce/p' BENCHMARKS.md | head -n 60
exit $bench_rc
