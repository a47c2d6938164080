#!/usr/bin/env bash
# One-shot scaling run on a borrowed many-core machine, from the bundle that
# scripts/device_bundle.sh made here (.devbundle/, carried along; the machine
# has none of our Debian packages and no ../shared).
#
#   bash scripts/device_scaling.sh               (on the device, as root; $OUT set)
#   DEV_QUICK=1 bash scripts/device_scaling.sh   (local dry run: threads 1,2, short)
#
# Prints the CPU (lscpu model line, cores), then, each step under `timeout`
# so that one failure or hang never stops the rest and the whole stays under
# 7 minutes:
#   1+2. bench configs (default "g f a e") against the PyTorch anchor at
#        1, 2, 4, 8, 16 threads, interleaved (examples/bench/compare.sh with
#        the bundled bench and the bundle's copy of the anchor);
#   3.   MPI: charlm on its default text (KJV, from the bundle), --shards 16
#        --batch 64 fixed (the same training at every layout), ranks x
#        threads = 1x16, 2x8, 4x4, 8x2, 16x1, then 1x1, with the bundled mpirun.
# Everything goes to $OUT/scaling.log (tee); $OUT/scaling.csv gets one line
# per measurement: phase,config,side,ranks,threads,tokens_per_s.
#
# Environment: DEV_QUICK=1; OUT (default /tmp/devscaling); PYTHON (default
# python3); CONFIGS; THREADS; BUDGET_S (default 400: seconds for the whole).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
B=$repo/.devbundle
OUT=${OUT:-/tmp/devscaling}
mkdir -p "$OUT"
log=$OUT/scaling.log
csv=$OUT/scaling.csv
: >"$log"
exec > >(tee -a "$log") 2>&1
t_start=$SECONDS
quick=${DEV_QUICK:-0}
if [ "$quick" = 1 ]; then
    threads=${THREADS:-"1 2"}
    layouts=${LAYOUTS:-"1x2 2x1 1x1"}
    secs_ours=0.3 torch_window=0.2 mpi_seconds=2 budget=${BUDGET_S:-400}
    phase12_end=${PHASE12_S:-300}
else
    threads=${THREADS:-"1 2 4 8 16"}
    layouts=${LAYOUTS:-"1x16 2x8 4x4 8x2 16x1 1x1"}
    secs_ours=1.0 torch_window=0.3 mpi_seconds=7 budget=${BUDGET_S:-400}
    phase12_end=${PHASE12_S:-270}
fi
configs=${CONFIGS:-"g f a e"}
py=${PYTHON:-python3}
left() { echo $((budget - (SECONDS - t_start))); }
# the smaller of a step's own limit and what is left of a phase
limit() { # own_limit phase_end
    local l=$(( $2 - (SECONDS - t_start) ))
    [ "$l" -lt "$1" ] || l=$1
    echo "$l"
}

echo "=== device_scaling $(date -u +%FT%TZ) quick=$quick budget=${budget}s"
echo "model: $(lscpu 2>/dev/null | grep 'Model name' | sed 's/  */ /g') | cpuinfo: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "cpus: $(nproc) online; $(lscpu | grep -E '^(Thread|Core|Socket)' | sed 's/  */ /g' | paste -sd';')"
echo "isa: $(grep -m1 -o -wE 'avx2|fma' /proc/cpuinfo | sort -u | paste -sd' ') $(grep -m1 -o -wE 'avx512f|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | paste -sd' ')"
echo "cgroup cpu.max: $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo none); affinity: $(taskset -pc $$ 2>/dev/null | sed 's/.*: //')"
echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(ldd --version 2>/dev/null | head -1)"
[ -f "$B/env.sh" ] || { echo "no bundle at $B (scripts/device_bundle.sh, carried as .devbundle)"; exit 2; }
grep -E '^(built|size)' "$B/MANIFEST"
chmod +x "$B"/bin/* 2>/dev/null || true # in case the copy lost the modes
echo "phase,config,side,ranks,threads,tokens_per_s" >"$csv"

# our programs see the bundle's libraries only; python3 keeps its own
# shellcheck disable=SC1091
source "$B/env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wrap=$tmp/bench-run
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$BUNDLE_LD" "$B/bin/bench" >"$wrap"
chmod +x "$wrap"
LD_LIBRARY_PATH=$BUNDLE_LD "$B/bin/bench" --help >/dev/null 2>&1 &&
    echo "bundled bench starts" || echo "WARNING: the bundled bench does not start"
timeout 60 "$py" - <<'PYEOF' 2>&1 | head -12
import torch, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "threads", torch.get_num_threads())
print(torch.__config__.parallel_info().strip())
PYEOF

# ---------------------------------------------------------------- 1+2: bench vs PyTorch
echo
echo "=== 1+2: ours and PyTorch at threads: $threads ($(left)s left)"
raw=$OUT/compare_raw.csv
: >"$raw"
for c in $configs; do
    t=$(limit 110 "$phase12_end")
    if [ "$t" -lt 15 ]; then echo "--- $c: skipped (phase time spent)"; continue; fi
    echo "--- config $c (limit ${t}s)"
    CONFIGS=$c THREADS=$threads REPEATS=1 SECONDS_PER=$secs_ours TORCH_WINDOW=$torch_window \
        MAX_WAIT=0 PYTHON=$py ANCHOR=$B/anchors/torch_rnn_bench.py BENCH=$wrap CSV=$raw \
        timeout -k 5 "$t" bash examples/bench/compare.sh
    rc=$?
    [ "$rc" = 0 ] || echo "--- config $c: compare.sh exit $rc (124: timed out; measured lines are kept)"
done
awk -F, '{printf "bench,%s,%s,1,%s,%s\n", $2, $1, $3, $5}' "$raw" >>"$csv"

# ---------------------------------------------------------------- 3: MPI
echo
mpi_shape="--batch 64 --shards 16"
[ "$quick" = 1 ] && mpi_shape="--batch 8 --shards 2"
echo "=== 3: MPI, charlm (KJV, $mpi_shape), ranks x threads: $layouts ($(left)s left)"
text=$tmp/kjv.txt
gzip -dc "$B/data/kjv.txt.gz" >"$text" || echo "WARNING: no KJV text in the bundle"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# a container's /dev/shm may be small (64 MiB): the shared-memory transport's
# files then go to the temporary folder
shm_free=$(df -Pm /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
if [ "${shm_free:-0}" -lt 1024 ]; then
    export OMPI_MCA_btl_vader_backing_directory=$tmp
    echo "/dev/shm: ${shm_free:-?} MiB free: vader backing files in $tmp"
fi
for lay in $layouts; do
    ranks=${lay%x*} th=${lay#*x}
    t=$(limit 45 "$((budget - 5))")
    if [ "$t" -lt 10 ]; then echo "--- ${lay}: skipped (time spent)"; continue; fi
    args=(--text "$text" --batch 64 --shards 16 --threads "$th" --steps 0 --seconds "$mpi_seconds"
          --valid-frac 0.001 --seed 1)
    [ "$quick" = 1 ] && args=(--text "$text" --batch 8 --shards 2 --threads "$th" --steps 0
                              --seconds "$mpi_seconds" --valid-frac 0.001 --seed 1)
    if [ "$ranks" = 1 ]; then # one process: no launcher, the program's own threads
        out=$(LD_LIBRARY_PATH=$BUNDLE_LD timeout -k 5 "$t" "$B/bin/charlm" "${args[@]}" 2>&1)
    else
        out=$(LD_LIBRARY_PATH=$BUNDLE_LD timeout -k 5 "$t" mpirun -np "$ranks" --bind-to none \
              --oversubscribe -x LD_LIBRARY_PATH \
              "$B/bin/charlm" "${args[@]}" 2>&1)
    fi
    rc=$?
    res=$(echo "$out" | grep '^result:' | tail -1)
    echo "--- ${ranks} ranks x ${th} threads (exit $rc): ${res:-no result line}"
    [ -n "$res" ] || echo "$out" | tail -8 | sed 's/^/    /'
    tps=$(echo "$res" | sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p')
    echo "mpi,charlm,ours,$ranks,$th,${tps:--}" >>"$csv"
done

echo
echo "=== scaling.csv"
cat "$csv"
echo "=== done in $((SECONDS - t_start))s"
# let tee write the last lines to the log before the command ends
exec 1>&- 2>&-
wait 2>/dev/null
sleep 1
