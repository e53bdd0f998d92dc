#!/usr/bin/env bash
# Exact top-10 sequential scan: jdsh vs pgvector vs bit_count(a # b), 1M 64-bit codes.
#   bench/seqscan.sh [N_CODES] [N_QUERIES]     (defaults 1000000 and 100)
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
n=${1:-1000000}; nq=${2:-100}
bash "$ROOT/bench/pgvector.sh"
bash "$ROOT/scripts/cluster.sh" start >/dev/null
"$PG_BIN/psql" -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -qAtc "DROP DATABASE IF EXISTS jdsh_bench" \
  -c "CREATE DATABASE jdsh_bench" >/dev/null
mkdir -p "$ROOT/bench/out"
"$PG_BIN/psql" -h "$PGHOST" -p "$PGPORT" -U postgres -d jdsh_bench -q -v n="$n" -v nq="$nq" \
  -f "$ROOT/bench/seqscan.sql" | tee "$ROOT/bench/out/seqscan.txt"
