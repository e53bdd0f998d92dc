#!/usr/bin/env bash
# EfficientNet-Lite0: the trainer's Rust (tch) port against PyTorch eager on one CPU core, in the
# same run: agreement of the 1280-d features on real images, then images/s at batch 1 and 32.
# Writes bench/out/backbone.md and bench/out/backbone.json, prints the tables.
#
#   bench/backbone.sh                      # 3 rounds x 5 s per method and batch: ~2 min
#   bench/backbone.sh --seconds 2 --rounds 1   # quick look
#   bench/backbone.sh --images a.png b.jpg     # other images for the agreement check
#   bench/backbone.sh --help
#
# Uses the project's venv (torch) and the installed weights (scripts/fetch-backbone.sh, run here
# when missing). Everything is pinned to one core with taskset: $BACKBONE_CPU, default the last.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/../scripts/env.sh"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

bash "$ROOT/scripts/fetch-backbone.sh" >/dev/null
echo "[bench] building the example backbone_bench (release)" >&2
(cd "$ROOT" && cargo build --release -q -p jdsh-trainer --example backbone_bench)
bin="$CARGO_TARGET_DIR/release/examples/backbone_bench"

cpu="${BACKBONE_CPU:-$(($(nproc) - 1))}"
pin=()
if command -v taskset >/dev/null; then pin=(taskset -c "$cpu"); fi
mkdir -p "$here/out"
"${pin[@]}" "$VENV/bin/python" "$here/backbone_bench.py" --rust "$bin" --out "$here/out" "$@"
