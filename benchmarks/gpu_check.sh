#!/usr/bin/env bash
# The GPU check of issue 15, in one call: GPU-marked tests + a short benchmark -> JSON + markdown.
#
# 1. Here (pip and ../shared reachable), once:   benchmarks/gpu_prepare.sh     (fills the git-ignored .gpu/)
# 2. On the lent GPU machine (device tool `run`): command `bash benchmarks/gpu_check.sh`, carry [".gpu"],
#    timeout_s 600. It writes to $OUT: gpu_check.md, gpu_check.json, gpu_check.log, gpu_tests.log,
#    gpu_tests.xml; copy the .md/.json to benchmarks/results/<gpu>/ and commit them.
# Anywhere else: PYTHON=.venv/bin/python benchmarks/gpu_check.sh [OUT_DIR]  (default reports/gpu_check).
# Without CUDA the GPU tests skip with their reason and the benchmark records why each GPU part was
# skipped, running a CPU smoke pass of the end-to-end code instead. GPU_CHECK_BUDGET_S (default 450)
# bounds the whole check so that one 10-minute call leaves time to start and copy back.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-reports/gpu_check}}"
PY="${PYTHON:-python3}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-450}"
mkdir -p "$OUT_DIR"
T0=$(date +%s)
say() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*"; }

if compgen -G ".gpu/wheels/*.whl" > /dev/null; then
    say "installing the carried wheels: $(cd .gpu/wheels && echo *.whl)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/posestream-site .gpu/wheels/*.whl || { say "wheel install failed"; exit 1; }
    export PYTHONPATH="/tmp/posestream-site${PYTHONPATH:+:$PYTHONPATH}"
else
    say "no carried wheels in .gpu/wheels (fine where av, lap and filterpy are installed)"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -z "${POSESTREAM_SHARED:-}" ]; then
    if [ -d .gpu/shared ]; then export POSESTREAM_SHARED="$PWD/.gpu/shared"; else export POSESTREAM_SHARED="$PWD/../shared"; fi
fi
"$PY" -c "import torch, av; print('torch', torch.__version__, '| CUDA:', torch.cuda.is_available(), '| PyAV', av.__version__)"

say "GPU-marked tests (tests/gpu)"
timeout 240 "$PY" -m pytest -q -rs -m gpu tests/gpu -p no:cacheprovider --junitxml="$OUT_DIR/gpu_tests.xml" \
    2>&1 | tee "$OUT_DIR/gpu_tests.log"
TESTS_RC=${PIPESTATUS[0]}
say "GPU-marked tests: exit code $TESTS_RC"

LEFT=$(( BUDGET_S - ( $(date +%s) - T0 ) ))
say "benchmark (budget ${LEFT} s)"
"$PY" benchmarks/gpu_check.py --out-dir "$OUT_DIR" --budget-s "$LEFT" --tests-rc "$TESTS_RC" \
    2>&1 | tee "$OUT_DIR/gpu_check.log"
BENCH_RC=${PIPESTATUS[0]}
say "done: benchmark exit code $BENCH_RC, tests exit code $TESTS_RC; reports in $OUT_DIR"
[ "$BENCH_RC" -eq 0 ] && { [ "$TESTS_RC" -eq 0 ] || [ "$TESTS_RC" -eq 5 ]; }
