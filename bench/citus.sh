#!/usr/bin/env bash
# jdsh on Citus (issue 14): a coordinator and two workers (scripts/citus.sh) against the same data
# on one node (a plain table on the coordinator): load and index build time, exact top-10 latency,
# throughput of 4 concurrent clients, recall. Writes bench/out/citus.md and bench/out/citus.json.
#
#   bench/citus.sh [--sets 1m:learned,10m:clustered] [--queries 100] [--clients 4] [--seconds 10]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
BENCH_VENV="$ROOT/.cache/bench-venv"
source "$here/lib.sh"
ensure_venv numpy psycopg -- numpy "psycopg[binary]"
bash "$ROOT/scripts/citus.sh" start >/dev/null
bash "$ROOT/scripts/citus.sh" psql coordinator -qAtc "CREATE EXTENSION IF NOT EXISTS jdsh" >/dev/null
mkdir -p "$here/out"
cd "$here" && "$BENCH_VENV/bin/python" citus_bench.py --out "$here/out" "$@"
bash "$ROOT/scripts/citus.sh" stop >/dev/null
