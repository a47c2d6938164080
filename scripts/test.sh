#!/usr/bin/env bash
# Sets up, then builds and runs the whole test suite in every build the
# project ships: float + OpenBLAS, double + OpenBLAS (tight gradient checks),
# float + the portable GEMM fallback, and a sanitizer build (address +
# undefined behaviour, leaks fail tests). Prints how long each build's tests
# took. Ends with "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
# meson, Criterion and OpenMP would each use every core: keep them from piling up.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS=1
export CRITERION_JOBS="${CRITERION_JOBS:-1}"
# Only the sanitizer build reads these. A sanitizer error aborts (a crash in
# Criterion's eyes, a failure in meson's); leaks are checked inside each
# Criterion test (tests/reliability/leak_check.c) and at exit of every other
# test program.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:abort_on_error=1:print_summary=1"

passed=0; failed=0; timings=""
run_build() { # dir, meson options...
    local dir="$1"; shift
    echo "=== build $dir ($*)"
    local t0=$SECONDS
    if ! scripts/setup.sh "$dir" "$@"; then
        echo "build $dir: FAILED to build"; failed=$((failed + 1)); return
    fi
    local t1=$SECONDS
    if meson test -C "$dir" --print-errorlogs --num-processes 2 -t 4 > "$dir/test-summary.txt" 2>&1; then
        echo "build $dir: all suites ok"
    fi
    local t2=$SECONDS
    tail -n 12 "$dir/test-summary.txt"
    local ok fail tmo upass xfail
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
    fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
    # A suite that timed out or passed when it should fail is a failure too.
    tmo=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
    upass=$(sed -n 's/^Unexpected Pass: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
    xfail=$(sed -n 's/^Expected Fail: *\([0-9]*\).*/\1/p' "$dir/test-summary.txt" | tail -1)
    passed=$((passed + ${ok:-0} + ${xfail:-0})); failed=$((failed + ${fail:-0} + ${tmo:-0} + ${upass:-0}))
    grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$dir/test-summary.txt" || true
    echo "build $dir: built in $((t1 - t0)) s, tests ran in $((t2 - t1)) s"
    timings="$timings  $dir: build $((t1 - t0)) s, tests $((t2 - t1)) s"$'\n'
}

run_build build -Dreal=float -Dblas=openblas
run_build build-double -Dreal=double -Dblas=openblas
run_build build-fallback -Dreal=float -Dblas=fallback -Dmpi=disabled # the portable build: no MPI either
run_build build-asan -Dreal=float -Dblas=openblas -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false
printf 'timings:\n%s' "$timings"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
