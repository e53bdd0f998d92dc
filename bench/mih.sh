#!/usr/bin/env bash
# Exact Hamming search benchmark (issue 4): the jdsh MIH index against a jdsh sequential scan,
# pgvector (exact scan, HNSW bit_hamming_ops) and FAISS (IndexBinaryFlat, IndexBinaryMultiHash),
# all in one run. Writes bench/out/mih.md (tables for the README) and bench/out/mih.json.
#
#   bench/mih.sh [--quick] [--sizes 100k,1m] [--bits 64,128] [--sets uniform,clustered]
#                [--peers jdsh,pgvector,faiss] [--scale-10m] [--queries 100] ...
#   bench/mih.sh --help          # every option of bench/mih_bench.py
#   bench/mih.sh --paired "default;jdsh.mih_probe_budget=0" --sizes 1m --bits 64 --sets learned
#                                # A/B: jdsh settings against FAISS flat, query by query
#   bench/mih.sh --growth --sizes 1m --sets learned --peers jdsh,faiss
#                                # an index built on a tenth of the table, then given the rest
#                                # by COPY, against one built on all of it (~2 min at 1M)
#
# --quick (100k codes, 64 bits, both sets, 30 queries) takes 2-4 minutes, mostly the pgvector
# HNSW builds; add --peers jdsh,faiss for a loop of under a minute.
# It runs its own side cluster (.cluster-bench, port 54341) so it never touches the development
# cluster on 54329, and stops it at the end (MIH_KEEP_CLUSTER=1 keeps it running). Until the
# `mih` access method and `jdsh.ball` exist in the installed extension, their cells read n/a.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export JDSH_PGPORT="${JDSH_PGPORT:-54341}"
export JDSH_CLUSTER="${JDSH_CLUSTER:-$(dirname "$here")/.cluster-bench}"
# shellcheck source=scripts/env.sh
source "$here/../scripts/env.sh"
BENCH_VENV="$ROOT/.cache/bench-venv"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
# The driver's Python modules, then the pip requirements that provide them.
BENCH_PACKAGES=(numpy faiss psycopg -- numpy faiss-cpu==1.15.1 "psycopg[binary]")
BENCH_DB=jdsh_mih_bench



# Settings for single-process numbers with everything in memory. shared_buffers needs a restart;
# the others apply on reload. jit off: a JIT compile per execution of the 1M-row scans would
# time LLVM, not the scans, and it hits jdsh and pgvector alike.
configure_cluster() {
  bash "$ROOT/scripts/cluster.sh" start >/dev/null
  psql_admin -c "ALTER SYSTEM SET shared_buffers = '4GB'" \
    -c "ALTER SYSTEM SET max_parallel_workers_per_gather = 0" \
    -c "ALTER SYSTEM SET jit = off" \
    -c "ALTER SYSTEM SET maintenance_work_mem = '2GB'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  if [ "$(psql_admin -c "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'")" = t ]; then
    echo "[bench] restarting the bench cluster for shared_buffers"
    bash "$ROOT/scripts/cluster.sh" stop >/dev/null
    bash "$ROOT/scripts/cluster.sh" start >/dev/null
  fi
}


# A fresh database each run: CREATE EXTENSION then picks up the jdsh just installed (with or
# without the index access method).
create_database() {
  psql_admin -c "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB" >/dev/null
  local exts="CREATE EXTENSION jdsh; CREATE EXTENSION pg_prewarm;"
  if [ "$have_pgvector" = 1 ]; then exts="$exts CREATE EXTENSION vector;"; fi
  "$PG_BIN/psql" -h "$PGHOST" -p "$PGPORT" -U postgres -d "$BENCH_DB" -qAtX -v ON_ERROR_STOP=1 \
    -c "SET client_min_messages = warning" -c "$exts" >/dev/null
}

main() {
  case " $* " in
    *" --help "* | *" -h "*) ensure_venv "${BENCH_PACKAGES[@]}"; exec "$BENCH_VENV/bin/python" "$here/mih_bench.py" --help ;;
  esac
  ensure_venv "${BENCH_PACKAGES[@]}"
  ensure_extension
  have_pgvector=1
  bash "$here/pgvector.sh" || have_pgvector=0
  configure_cluster
  create_database
  mkdir -p "$here/out"
  "$BENCH_VENV/bin/python" "$here/mih_bench.py" --db "$BENCH_DB" --out "$here/out" "$@"
  echo "[bench] wrote $here/out/mih.md and $here/out/mih.json"
  # The side cluster holds up to a few GB of shared buffers on a shared machine: stop it, unless
  # asked to keep it for a look at the tables (they are dropped; the database stays).
  if [ "${MIH_KEEP_CLUSTER:-0}" != 1 ]; then bash "$ROOT/scripts/cluster.sh" stop >/dev/null; fi
}

main "$@"
