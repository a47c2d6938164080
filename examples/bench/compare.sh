#!/usr/bin/env bash
# Ours against PyTorch on the issue-5 configurations, measured in the same run.
#
#   examples/bench/compare.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# For every configuration, interleaved so both sides see the same machine:
# PyTorch 1 thread, ours 1 thread, PyTorch 2 threads, ours 2 threads. Both
# wait (up to MAX_WAIT s) for other processes to leave the CPUs they need and
# report the load of other processes during timing (bg). Prints one markdown
# table row per configuration, then the raw lines under it (raw lines also go
# to stderr as they are measured).
#
# Environment:
#   CONFIGS     which rows (default: "a a1hot b c d e f")
#   SECONDS_PER timed seconds per measurement of ours (default 1.5; 3 windows)
#   MAX_WAIT    seconds to wait for an idle machine per measurement (default 20)
#   THREADS     thread counts (default "1 2")
#   PYTHON      interpreter that sees torch (default /usr/bin/python3)
#   ANCHOR      the PyTorch script (default ../shared/anchors/torch_rnn_bench.py)
#   OPENBLAS_CORETYPE  is passed to both sides unchanged (see BENCHMARKS.md)
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
bench=$build/examples/bench/bench
py=${PYTHON:-/usr/bin/python3}
anchor=${ANCHOR:-../shared/anchors/torch_rnn_bench.py}
configs=${CONFIGS:-"a a1hot b c d e f"}
secs=${SECONDS_PER:-1.5}
wait_s=${MAX_WAIT:-20}
threads=${THREADS:-"1 2"}
[ -x "$bench" ] || { echo "compare.sh: $bench not built (ninja -C $build)" >&2; exit 2; }

declare -A ours torch
ours[a]="--cell lstm --vocab 65 --embed 256 --hidden 256 --seq 64 --batch 32"
torch[a]=a_char_lstm_F
ours[a1hot]="--cell lstm --vocab 65 --embed 0 --hidden 256 --seq 64 --batch 32"
torch[a1hot]=a_char_lstm_F
ours[b]="--cell gru --vocab 65 --embed 256 --hidden 256 --seq 64 --batch 32"
torch[b]=b_char_gru_F
ours[c]="--cell rnn --vocab 65 --embed 256 --hidden 256 --seq 64 --batch 32"
torch[c]=c_char_rnn_F
ours[d]="--cell rnn --vocab 65 --embed 100 --hidden 100 --seq 25 --batch 1"
torch[d]=d_minchar_rnn_F
ours[e]="--cell lstm --vocab 65 --embed 512 --hidden 512 --seq 64 --batch 64"
torch[e]=e_big_lstm_F
ours[f]="--task seq2seq --cell lstm --embed 256 --hidden 256 --src-vocab 1000 --tgt-vocab 1000 --src-len 12 --tgt-len 12 --batch 64"
torch[f]=f_seq2seq_lstm_F

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

# tokens/s of a PyTorch line for one case and thread count ("-" if it failed)
torch_tps() { # case threads
    local out
    out=$(OMP_WAIT_POLICY=passive "$py" "$anchor" --threads "$2" --only "$1" --window 0.5 \
          --windows 3 --max-wait "$wait_s" 2>&1)
    echo "torch $1 T=$2: $(echo "$out" | grep -E "^${1%_*} " | tail -1)" | tee -a "$raw" >&2
    echo "$out" | awk -v c="${1%_*}" '$1 == c {v = $6} END {print v == "" ? "-" : v}'
}

ours_tps() { # config threads
    local out
    # shellcheck disable=SC2086
    out=$("$bench" ${ours[$1]} --threads "$2" --seconds "$secs" --windows 3 --warmup 0.5 \
          --max-wait "$wait_s" 2>/dev/null | tail -1)
    echo "ours $1 T=$2: $out" | tee -a "$raw" >&2
    echo "$out" | sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

echo "| config | ours 1T | ours 2T | PyTorch 1T | PyTorch 2T | ours/PyTorch 1T | ours 2T / PyTorch best | ours best / PyTorch best | ours 2T/1T |"
echo "|---|---|---|---|---|---|---|---|---|"
declare -A tcache
for c in $configs; do
    declare -A o t
    for n in $threads; do
        key="${torch[$c]}:$n"
        [ -n "${tcache[$key]:-}" ] || tcache[$key]=$(torch_tps "${torch[$c]}" "$n")
        t[$n]=${tcache[$key]}
        o[$n]=$(ours_tps "$c" "$n")
    done
    best=$(awk -v a="${t[1]:-0}" -v b="${t[2]:-0}" 'BEGIN { print (a > b ? a : b) }')
    obest=$(awk -v a="${o[1]:-0}" -v b="${o[2]:-0}" 'BEGIN { print (a > b ? a : b) }')
    echo "| $c | ${o[1]:--} | ${o[2]:--} | ${t[1]:--} | ${t[2]:--} | $(ratio "${o[1]:-}" "${t[1]:-}") |" \
         "$(ratio "${o[2]:-}" "$best") | $(ratio "$obest" "$best") | $(ratio "${o[2]:-}" "${o[1]:-}") |"
    unset o t
done
echo
sed 's/^/    /' "$raw"
