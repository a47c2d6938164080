#!/usr/bin/env bash
# Sets up (Debian packages, build), then runs the main job: the seq2seq
# encoder-decoder translation example on its built-in English->Korean corpus.
# Extra arguments go to the program, e.g. scripts/main.sh --beam 4
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/examples/seq2seq/seq2seq --threads "$(nproc)" "$@"
