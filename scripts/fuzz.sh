#!/usr/bin/env bash
# Runs every libFuzzer harness in fuzz/ for a bounded time and keeps what it
# finds. Usage: scripts/fuzz.sh [seconds-per-harness [harness...]]
# (default: 60 s, or $FUZZ_SECONDS; every harness that builds).
#
# Builds build-fuzz with clang (address + undefined sanitizers, coverage for
# libFuzzer on all code), then runs each fuzz_<name> on a working corpus
# seeded from fuzz/corpus/<name>/. Any crash, leak, timeout or out-of-memory
# input is copied to fuzz/regressions/<name>/, where the test
# fuzz_replay_<name> of every normal build replays it from then on: commit
# it with the fix. Prints executions per harness; the last line is
#   fuzz: N executions, K new crash input(s), harnesses: P passed, F failed
# and the exit status is 1 when a harness found something or failed to run.
set -uo pipefail
cd "$(dirname "$0")/.."

secs="${1:-${FUZZ_SECONDS:-60}}"
shift || true
dir=build-fuzz
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

echo "=== fuzz: building $dir with clang"
t0=$SECONDS
setup_log="${TMPDIR:-/tmp}/tapegrad-fuzz-setup.$$.log"
if [ ! -f "$dir/build.ninja" ]; then
    # -Dwerror=false: the project's -Werror is checked by the gcc builds; a
    # clang-only warning must not stop fuzzing.
    if ! CC=clang CXX=clang++ meson setup "$dir" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link -Dcpp_args=-fsanitize=fuzzer-no-link \
        -Dwerror=false -Dtests=false \
        > "$setup_log" 2>&1; then
        cat "$setup_log"; echo "fuzz: meson setup of $dir failed"
        echo "fuzz: 0 executions, 0 new crash input(s), harnesses: 0 passed, 1 failed"; exit 1
    fi
fi
available=$(ninja -C "$dir" -t targets all 2>/dev/null |
    sed -n 's|^fuzz/fuzz_\([a-z0-9_]*\): .*|\1|p' | sort -u)
names="${*:-$available}"
if [ -z "$names" ]; then
    echo "fuzz: no harness to build"; echo "fuzz: 0 executions, 0 new crash input(s), harnesses: 0 passed, 1 failed"; exit 1
fi
targets=""
for n in $names; do targets="$targets fuzz/fuzz_$n"; done
if ! ninja -C "$dir" $targets > "$dir/fuzz-build.log" 2>&1; then
    tail -n 40 "$dir/fuzz-build.log"; echo "fuzz: build failed"
    echo "fuzz: 0 executions, 0 new crash input(s), harnesses: 0 passed, 1 failed"; exit 1
fi
echo "fuzz: built in $((SECONDS - t0)) s"

total_execs=0; total_found=0; status=0; summary=""; hp=0; hf=0
for n in $names; do
    exe="$dir/fuzz/fuzz_$n"
    work="$dir/fuzz-work/$n"; art="$dir/fuzz-artifacts/$n"
    mkdir -p "$work" "$art"
    rm -f "$art"/*
    t1=$SECONDS
    # Working corpus first (new inputs are written there), seeds read-only.
    "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$art/" "$work" "fuzz/corpus/$n" > "$dir/fuzz-$n.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$dir/fuzz-$n.log" | tail -1)
    found=0
    for f in "$art"/*; do
        [ -f "$f" ] || continue
        mkdir -p "fuzz/regressions/$n"
        cp "$f" "fuzz/regressions/$n/"
        echo "fuzz $n: kept $(basename "$f") in fuzz/regressions/$n/"
        found=$((found + 1))
    done
    if [ "$found" -eq 0 ] && [ "$rc" -eq 0 ]; then
        hp=$((hp + 1))
    else
        status=1; hf=$((hf + 1))
        grep -E 'ERROR|SUMMARY|fuzz property|runtime error|==[0-9]+==' "$dir/fuzz-$n.log" | head -n 20
        [ "$found" -gt 0 ] || { echo "fuzz $n: exited with status $rc (log $dir/fuzz-$n.log)"; tail -n 20 "$dir/fuzz-$n.log"; }
    fi
    line="fuzz $n: ${execs:-0} executions in $((SECONDS - t1)) s, corpus $(ls "$work" | wc -l) inputs, $found crash input(s)"
    summary="$summary$line"$'\n'
    total_execs=$((total_execs + ${execs:-0})); total_found=$((total_found + found))
done
printf '%s' "$summary"
echo "fuzz: $total_execs executions, $total_found new crash input(s), harnesses: $hp passed, $hf failed"
exit "$status"
