#!/usr/bin/env bash
# The seq2seq recipe on real text, several settings at once: on a machine
# with 16 cores, 8 runs of 2 threads each, each pinned to its own 2 cores
# (taskset), all for the same --seconds on the German->English corpus
# (scripts/make_de_en.sh, carried in .devbundle/data/de-en), one slot
# running the PyTorch anchor (../shared/anchors/torch_seq2seq_budget.py:
# OpenNMT-style LSTM + Luong attention + input feeding, SentencePiece 8000)
# for the same seconds. Used to choose the program's defaults (issue 13);
# the runs share the memory bus, so compare them with each other, not with
# a run alone.
#
#   bash scripts/device_recipe.sh        (after scripts/device_bundle.sh)
#
# Environment: RECIPE_S (training seconds per run, default 200); OUT
# (default /tmp/devrecipe); PYTHON (default python3).
# Writes OUT/recipe.log (every run's output) and OUT/recipe.csv
# (name,bleu,chrf,exact,tokens_per_s,steps).
set -uo pipefail
repo=$PWD
B=$repo/.devbundle
OUT=${OUT:-/tmp/devrecipe}
secs=${RECIPE_S:-200}
py=${PYTHON:-python3}
mkdir -p "$OUT"
[ -f "$B/env.sh" ] || { echo "no bundle at $B (scripts/device_bundle.sh)"; exit 2; }
# shellcheck disable=SC1091
source "$B/env.sh"
chmod +x "$B"/bin/* 2>/dev/null || true
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$B/data/de-en/train.tsv.gz" >"$tmp/train.tsv"
gzip -dc "$B/data/de-en/test.tsv.gz" >"$tmp/test.tsv"

# name | flags (ours) ; the slot named torch runs the anchor
runs=(
    "default|"
    "general|--attention general"
    "general_sw4k|--attention general --subwords 4000"
    "general_sw2k|--attention general --subwords 2000"
    "general_e256|--attention general --embed 256"
    "general_sw4k_e256_b32|--attention general --subwords 4000 --embed 256 --batch 32"
    "general_lower|--attention general --lowercase"
    "torch|"
)
cores=$(nproc)
slots=$((cores / 2))
echo "=== device_recipe $(date -u +%FT%TZ): ${secs}s per run, $cores cores, $slots slots"
echo "model: $(lscpu 2>/dev/null | grep 'Model name' | sed 's/  */ /g')"
pids=()
for i in "${!runs[@]}"; do
    [ "$i" -lt "$slots" ] || { echo "skip ${runs[$i]%%|*}: no cores left"; continue; }
    name=${runs[$i]%%|*} flags=${runs[$i]#*|}
    cpus="$((2 * i)),$((2 * i + 1))"
    if [ "$name" = torch ]; then
        # shellcheck disable=SC2086
        (OMP_NUM_THREADS=2 timeout -k 5 $((secs + 110)) taskset -c "$cpus" "$py" \
            "$B/anchors/torch_seq2seq_budget.py" "$tmp/train.tsv" "$tmp/test.tsv" \
            --seconds "$secs" --attn 1 --spm 8000 --threads 2 >"$tmp/$name.out" 2>&1) &
    else
        # shellcheck disable=SC2086
        (LD_LIBRARY_PATH=$BUNDLE_LD timeout -k 5 $((secs + 110)) taskset -c "$cpus" \
            "$B/bin/seq2seq" --train "$tmp/train.tsv" --test "$tmp/test.tsv" --threads 2 \
            --seconds "$secs" --epochs 1000 --show 2 $flags >"$tmp/$name.out" 2>&1) &
    fi
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "name,bleu,chrf,exact,tokens_per_s" >"$OUT/recipe.csv"
for i in "${!runs[@]}"; do
    name=${runs[$i]%%|*}
    [ -f "$tmp/$name.out" ] || continue
    { echo "----- $name: ${runs[$i]#*|}"; tail -25 "$tmp/$name.out"; } | tee -a "$OUT/recipe.log"
    r=$(grep -E '^result:' "$tmp/$name.out" | tail -1)
    if [ -n "$r" ]; then
        get() { echo "$r" | grep -oE "$1=[0-9.]+" | head -1 | cut -d= -f2; }
        echo "$name,$(get bleu),$(get chrf),$(get exact_match),$(get tokens_per_s)" >>"$OUT/recipe.csv"
    else # the anchor prints its own summary: keep its BLEU line
        echo "$name,$(grep -oiE 'bleu[^0-9]*[0-9.]+' "$tmp/$name.out" | tail -1 | grep -oE '[0-9.]+$'),,," \
            >>"$OUT/recipe.csv"
    fi
done
cat "$OUT/recipe.csv"
