#!/usr/bin/env bash
# Measures charlm's defaults against PyTorch's plain recipe (issue 16):
# for each text, scripts/torch_charlm.py (embedding 256, LSTM 256, Adam 2e-3,
# random windows) and charlm with each candidate setting, each for SECS
# seconds of training with --threads THREADS, one run after another, then a
# markdown table.
#
#   scripts/charlm_defaults.sh [SECS] [TEXT_DIR]     (defaults: 60, out/charlm-texts)
#
# Environment (all optional):
#   TEXTS      names in TEXT_DIR without .txt (default: "ko-faq en-kjv-100k
#              en-kjv-1m"; scripts/make_charlm_texts.sh also makes zh-faq, ru-faq)
#   SETTINGS   charlm flag sets separated by ';', "defaults" = none (default:
#              "defaults;--embed 256;--dropout 0.2;--embed 256 --dropout 0.2")
#   THREADS    2;  EVAL_EVERY  500 (charlm's default), passed to both programs
#   CHARLM     build/examples/charlm/charlm;  OUT  out/charlm-defaults
#              (every run's stdout/stderr/log, and table.md)
#
# Time: (texts) x (1 + settings) runs of SECS each plus a few seconds of
# start-up and evaluation: with the defaults 15 runs, ~16 minutes at 60 s.
# TEXT_DIR is made with scripts/make_charlm_texts.sh when it is missing.
#
# "best" is the lowest validation bits/char over the evaluations every
# EVAL_EVERY steps and the final one: what charlm's --save keeps; "final"
# is the model at the end of the time. Both programs score the same
# characters (see scripts/torch_charlm.py); evaluation time is not counted
# in SECS by either.
set -uo pipefail
secs="${1:-60}"
texts_dir="${2:-}"
[ -z "$texts_dir" ] || texts_dir="$(realpath -m "$texts_dir")"  # paths given: before the cd
[ -z "${OUT:-}" ] || OUT="$(realpath -m "$OUT")"
[ -z "${CHARLM:-}" ] || CHARLM="$(realpath -m "$CHARLM")"
cd "$(dirname "$0")/.." || exit 1
texts_dir="${texts_dir:-out/charlm-texts}"
TEXTS="${TEXTS:-ko-faq en-kjv-100k en-kjv-1m}"
SETTINGS="${SETTINGS:-defaults;--embed 256;--dropout 0.2;--embed 256 --dropout 0.2}"
THREADS="${THREADS:-2}"
EVAL_EVERY="${EVAL_EVERY:-500}"
CHARLM="${CHARLM:-build/examples/charlm/charlm}"
OUT="${OUT:-out/charlm-defaults}"

[ -x "$CHARLM" ] || { echo "charlm_defaults: $CHARLM not built (scripts/setup.sh build)" >&2; exit 1; }
[ -d "$texts_dir" ] || scripts/make_charlm_texts.sh "$texts_dir" || exit 1
mkdir -p "$OUT"
IFS=';' read -r -a settings <<< "$SETTINGS"
n_runs=0
for t in $TEXTS; do
    [ -f "$texts_dir/$t.txt" ] || { echo "charlm_defaults: no $texts_dir/$t.txt" >&2; exit 1; }
    n_runs=$((n_runs + 1 + ${#settings[@]}))
done
cpu="$(lscpu | grep 'Model name' | sed 's/.*: *//')"
echo "charlm_defaults: $n_runs runs of ${secs} s (about $((n_runs * (secs + 5) / 60 + 1)) min), threads $THREADS, logs in $OUT" >&2

# result line KEY's value from FILE ("" when absent)
field() { sed -n "s/^result: .*\b$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }

# best valid_bpc and its step from a charlm --log CSV and the final value
charlm_best() {
    python3 - "$1" "$2" "$3" <<'EOF'
import csv, sys
best, step = float(sys.argv[2]), sys.argv[3]
with open(sys.argv[1], newline="") as f:
    for row in csv.DictReader(f):
        if row["valid_bpc"] and float(row["valid_bpc"]) < best:
            best, step = float(row["valid_bpc"]), row["step"]
print(f"{best:.4f} {step}")
EOF
}

rows=()
for t in $TEXTS; do
    text="$texts_dir/$t.txt"
    info="$(python3 -c 'import sys; s=open(sys.argv[1], encoding="utf-8-sig", newline="").read(); print(len(s), len(set(s)))' "$text")"
    read -r chars vocab <<< "$info"
    torch_best=""
    for setting in torch "${settings[@]}"; do
        tag="$t.$(echo "$setting" | tr -cs 'A-Za-z0-9.\n' '_' | sed 's/^_//')"
        echo "charlm_defaults: $t: $setting ..." >&2
        if [ "$setting" = torch ]; then
            label="PyTorch (embed 256, Adam 2e-3, random windows)"
            /usr/bin/python3 scripts/torch_charlm.py --text "$text" --seconds "$secs" \
                --threads "$THREADS" --eval-every "$EVAL_EVERY" > "$OUT/$tag.out" 2> "$OUT/$tag.err"
            rc=$?
            best="$(field "$OUT/$tag.out" best_val_bpc) $(field "$OUT/$tag.out" best_step)"
            final="$(field "$OUT/$tag.out" final_val_bpc)"
        else
            label="charlm $setting"
            flags=""
            [ "$setting" = defaults ] || flags="$setting"
            rm -f "$OUT/$tag.csv"
            # shellcheck disable=SC2086  # flags are words
            "$CHARLM" --text "$text" --seconds "$secs" --threads "$THREADS" \
                --eval-every "$EVAL_EVERY" --log "$OUT/$tag.csv" $flags \
                > "$OUT/$tag.out" 2> "$OUT/$tag.err"
            rc=$?
            final="$(field "$OUT/$tag.out" valid_bpc)"
            best=""
            [ -n "$final" ] && best="$(charlm_best "$OUT/$tag.csv" "$final" "$(field "$OUT/$tag.out" steps)")"
        fi
        steps="$(field "$OUT/$tag.out" steps)"
        tps="$(field "$OUT/$tag.out" tokens_per_s)"
        if [ $rc -ne 0 ] || [ -z "$final" ]; then
            rows+=("| $t | $chars | $vocab | $label | failed: exit $rc, see $OUT/$tag.err | | | | |")
            continue
        fi
        read -r best_bpc best_step <<< "$best"
        delta="—"
        [ "$setting" = torch ] && torch_best="$best_bpc"
        [ "$setting" != torch ] && [ -n "$torch_best" ] && delta="$(python3 -c "print(f'{$best_bpc - $torch_best:+.4f}')")"
        rows+=("| $t | $chars | $vocab | $label | $steps | $best_bpc ($best_step) | $final | $delta | $tps |")
    done
done

{
    echo "CPU: $cpu; $secs s of training per run, --threads $THREADS, evaluation every $EVAL_EVERY steps and at the end; charlm $(git rev-parse --short HEAD 2>/dev/null); $(date -u +%F)"
    echo
    echo "| text | characters | vocabulary | program, setting | steps | best valid bpc (step) | final valid bpc | best − PyTorch's | tokens/s |"
    echo "|---|---:|---:|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} | tee "$OUT/table.md"
