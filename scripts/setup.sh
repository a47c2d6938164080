#!/usr/bin/env bash
# Installs what tapegrad needs on Debian 12 (idempotent), then configures and
# builds. Usage: scripts/setup.sh [build-dir [meson options...]]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="build-essential meson ninja-build pkg-config libcriterion-dev libopenblas-dev
      libjansson-dev zlib1g-dev bible-kjv dataset-fashion-mnist
      clang libclang-rt-14-dev libomp-dev" # clang, libFuzzer, clang's OpenMP: scripts/fuzz.sh
PKGS="$PKGS python3-torch python3-numpy python3-matplotlib" # PyTorch interchange test, plot_log.py
PKGS="$PKGS libopenmpi-dev openmpi-bin" # Open MPI: -Dmpi (issue 14), graph/dist.c, tests/dist
PKGS="$PKGS libsentencepiece-dev trans-de-en" # seq2seq subwords (issue 13), scripts/make_de_en.sh
PKGS="$PKGS python3-sentencepiece" # the PyTorch anchor ../shared/anchors/torch_seq2seq_budget.py --spm
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing:$missing" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

dir="${1:-build}"; shift || true
if [ -d "$dir" ] && [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
else
    meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >&2
