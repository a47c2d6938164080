#!/usr/bin/env bash
# Sets up, then builds and runs the whole test suite in every build the
# project ships: float + OpenBLAS, double + OpenBLAS (tight gradient checks),
# float + the portable GEMM fallback. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
# meson, Criterion and OpenMP would each use every core: keep them from piling up.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS=1
export CRITERION_JOBS="${CRITERION_JOBS:-1}"

passed=0; failed=0
run_build() { # dir, meson options...
    local dir="$1"; shift
    echo "=== build $dir ($*)"
    if ! scripts/setup.sh "$dir" "$@"; then
        echo "build $dir: FAILED to build"; failed=$((failed + 1)); return
    fi
    if meson test -C "$dir" --print-errorlogs --num-processes 2 -t 4 > "$dir/test-summary.txt" 2>&1; then
        echo "build $dir: all suites ok"
    fi
    tail -n 12 "$dir/test-summary.txt"
    local ok fail
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
    fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
    passed=$((passed + ${ok:-0})); failed=$((failed + ${fail:-0}))
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$dir/test-summary.txt" || true
}

run_build build -Dreal=float -Dblas=openblas
run_build build-double -Dreal=double -Dblas=openblas
run_build build-fallback -Dreal=float -Dblas=fallback
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
