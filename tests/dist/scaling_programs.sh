#!/bin/sh
# SCALING.md's program figures: charlm and seq2seq tokens/s (training time
# only, rank 0's) at 1 process x 1 thread, 1 process x 2 threads and 2 ranks
# x 1 thread, --shards 2 in all three (the same arithmetic, bitwise), each
# configuration run REPS times (noisy machines: take the median), and rank
# 0's gradient exchange per step. Not a test; prints one line per run.
#   tests/dist/scaling_programs.sh BUILD_DIR [REPS] [RANKS...]
# With RANKS (e.g. "4 8 16") it runs those rank counts x 1 thread instead,
# --shards = ranks (the device machine's sweep).
set -eu
build=${1:?usage: scaling_programs.sh BUILD_DIR [REPS] [RANKS...]}
reps=${2:-3}
shift; [ $# -gt 0 ] && shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
charlm="$build/examples/charlm/charlm --steps 30 --valid-frac 0.001"
seq2seq="$build/examples/seq2seq/seq2seq --steps 20 --test-pairs 20 --show 0 --seconds 0"

# one run: "prog config tokens_per_s exchange_ms"
one() { # prog label command...
    prog=$1 label=$2
    shift 2
    out=$(timeout 600 "$@" 2>&1) || { echo "$prog $label FAILED"; echo "$out" | tail -3; return; }
    tps=$(echo "$out" | sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p' | tail -1)
    ms=$(echo "$out" | sed -n 's/.*gradient exchange \([0-9.]*\) ms per step.*/\1/p' | tail -1)
    echo "$prog $label tokens_per_s=$tps exchange_ms_per_step=${ms:--}"
}

mpi="mpirun --oversubscribe --bind-to none"
for prog in charlm seq2seq; do
    eval "cmd=\$$prog"
    r=0
    while [ $r -lt "$reps" ]; do
        r=$((r + 1))
        if [ $# -gt 0 ]; then
            for n in "$@"; do
                one $prog "${n}rx1t" $mpi -np "$n" $cmd --shards "$n" --threads 1
            done
        else
            one $prog 1px1t $cmd --shards 2 --threads 1
            one $prog 1px2t $cmd --shards 2 --threads 2
            one $prog 2rx1t $mpi -np 2 $cmd --shards 2 --threads 1
        fi
    done
done
