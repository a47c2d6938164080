#!/usr/bin/env bash
# Ours against PyTorch on the issue-5/issue-15 configurations, measured in the same run.
#
#   examples/bench/compare.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# For every configuration and repeat, interleaved so both sides see the same
# machine: for each thread count n, PyTorch n threads, then ours n threads.
# Both wait (up to MAX_WAIT s) for other processes to leave the CPUs they
# need and report the load of other processes during timing (bg). After
# REPEATS repeats, prints one markdown table row per configuration with the
# median tokens/s of each side per thread count and the ratios of those
# medians, then the raw lines under it (raw lines also go to stderr as they
# are measured). A failed measurement is "-" and never stops the rest.
#
# Environment:
#   CONFIGS     which rows (default: "a a1hot b c d e f g")
#   THREADS     thread counts (default "1 2")
#   REPEATS     measurements per side, configuration and thread count; the
#               table holds their medians (default 1)
#   SECONDS_PER timed seconds per measurement of ours (default 1.5; 3 windows)
#   TORCH_WINDOW seconds per PyTorch timing window (default 0.5; 3 windows)
#   MAX_WAIT    seconds to wait for an idle machine per measurement (default 20;
#               0: do not wait)
#   PYTHON      interpreter that sees torch (default /usr/bin/python3)
#   ANCHOR      the PyTorch script (default ../shared/anchors/torch_rnn_bench.py)
#   BENCH       our bench binary (default BUILD_DIR/examples/bench/bench)
#   CSV         if set, a file that gets one line per measurement:
#               side,config,threads,repeat,tokens_per_s
#   OPENBLAS_CORETYPE  is passed to both sides unchanged (see BENCHMARKS.md).
#               Unset, on a CPU OpenBLAS does not know, bench (as every program)
#               names the core the CPU's features call for and PyTorch keeps
#               OpenBLAS's fallback: set it to compare like with like
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
bench=${BENCH:-$build/examples/bench/bench}
py=${PYTHON:-/usr/bin/python3}
anchor=${ANCHOR:-../shared/anchors/torch_rnn_bench.py}
configs=${CONFIGS:-"a a1hot b c d e f g"}
secs=${SECONDS_PER:-1.5}
twin=${TORCH_WINDOW:-0.5}
wait_s=${MAX_WAIT:-20}
threads=${THREADS:-"1 2"}
repeats=${REPEATS:-1}
csv=${CSV:-}
[ -x "$bench" ] || { echo "compare.sh: $bench not built (ninja -C $build)" >&2; exit 2; }
[ -f "$anchor" ] || echo "compare.sh: no PyTorch anchor at $anchor (PyTorch columns: -)" >&2

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
# g: the seq2seq program's attention model (Luong general, input feeding);
# the anchor's AttnSeq2Seq has the same shapes
ours[g]="--task seq2seq --attention general --cell lstm --embed 256 --hidden 256 --src-vocab 8000 --tgt-vocab 8000 --src-len 30 --tgt-len 30 --batch 64"
torch[g]=g_attn_seq2seq_F
for c in $configs; do
    [ -n "${ours[$c]:-}" ] || { echo "compare.sh: unknown config '$c' (known: ${!ours[*]})" >&2; exit 2; }
done

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

record() { # side config threads repeat value
    [ -z "$csv" ] || echo "$1,$2,$3,$4,$5" >>"$csv"
}

# tokens/s of a PyTorch line for one case and thread count ("-" if it failed)
torch_tps() { # case threads
    local out
    [ -f "$anchor" ] || { echo "-"; return; }
    out=$(OMP_WAIT_POLICY=passive "$py" "$anchor" --threads "$2" --only "$1" --window "$twin" \
          --windows 3 --max-wait "$wait_s" 2>&1)
    echo "torch $1 T=$2: $(echo "$out" | grep -E "^${1%_*} " | tail -1)" | tee -a "$raw" >&2
    [ "$(echo "$out" | grep -cE "^${1%_*} ")" -gt 0 ] || echo "$out" | tail -3 | sed 's/^/    torch: /' >&2
    echo "$out" | awk -v c="${1%_*}" '$1 == c {v = $6} END {print v == "" ? "-" : v}'
}

ours_tps() { # config threads
    local out v err
    err=$(mktemp)
    # shellcheck disable=SC2086
    out=$("$bench" ${ours[$1]} --threads "$2" --seconds "$secs" --windows 3 --warmup 0.5 \
          --max-wait "$wait_s" 2>"$err" | tail -1)
    echo "ours $1 T=$2: $out" | tee -a "$raw" >&2
    v=$(echo "$out" | sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p')
    [ -n "$v" ] || tail -3 "$err" | sed 's/^/    ours: /' >&2
    rm -f "$err"
    echo "${v:--}"
}

# median of the numeric arguments ("-" ignored; "-" when none)
median() {
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
        awk '{v[NR] = $1} END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
                                else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
best() { printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | tail -1 | grep . || echo "-"; }

# header: per thread count ours, PyTorch and their ratio; then best vs best
hdr="| config |"
sep="|---|"
for n in $threads; do hdr="$hdr ours ${n}T | PyTorch ${n}T | ratio ${n}T |"; sep="$sep---|---|---|"; done
hdr="$hdr ours best / PyTorch best |"
sep="$sep---|"
case " $threads " in *" 2 "*) hdr="$hdr ours 2T / PyTorch best |"; sep="$sep---|";; esac
rows=()
for c in $configs; do
    declare -A o=() t=()
    for r in $(seq 1 "$repeats"); do
        for n in $threads; do
            v=$(torch_tps "${torch[$c]}" "$n"); t[$n]="${t[$n]:-} $v"; record torch "$c" "$n" "$r" "$v"
            v=$(ours_tps "$c" "$n"); o[$n]="${o[$n]:-} $v"; record ours "$c" "$n" "$r" "$v"
        done
    done
    row="| $c |"
    om=() tm=()
    for n in $threads; do
        # shellcheck disable=SC2086
        mo=$(median ${o[$n]}) mt=$(median ${t[$n]})
        om+=("$mo"); tm+=("$mt")
        row="$row $mo | $mt | $(ratio "$mo" "$mt") |"
    done
    tbest=$(best "${tm[@]}")
    row="$row $(ratio "$(best "${om[@]}")" "$tbest") |"
    # shellcheck disable=SC2086
    case " $threads " in *" 2 "*) row="$row $(ratio "$(median ${o[2]})" "$tbest") |";; esac
    rows+=("$row")
    unset o t
done
# the measured FP32 peak at each thread count: the yardstick of BENCHMARKS.md's "of the peak"
peaks=""
for n in $threads; do
    p=$("$bench" --task peak --threads "$n" --seconds 0.5 2>/dev/null | sed -n 's/.*peak_gflops=\([0-9.]*\).*isa=\([a-z0-9]*\).*/\1 (\2)/p')
    peaks="$peaks ${n}T ${p:--} GFLOP/s"
done
echo "repeats: $repeats (medians); $(lscpu 2>/dev/null | grep 'Model name' | sed 's/  */ /g'); peak:$peaks"
echo "$hdr"
echo "$sep"
printf '%s\n' "${rows[@]}"
echo
sed 's/^/    /' "$raw"
