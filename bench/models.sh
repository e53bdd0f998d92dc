#!/usr/bin/env bash
# Models in the database, measured (issue: in-database training and encoding): trains an emoji
# model (raw keywords text + PNG bytes) and a Wikipedia model (feature vectors) with jdsh.train,
# then measures, each against a peer of the same shape in the same run,
#   - encoder throughput in SQL, one backend on the CPU: per row (SELECT, UPDATE) and batched
#     (jdsh.encode_texts/encode_images over chunks, jdsh.encode_table), for raw text, PNG bytes and
#     feature vectors, beside the same statement with md5()/jdsh.binarize() and the trainer
#     crate's own encoders (jdsh-train bench-encode, jdsh-train encode on the same inputs);
#   - end-to-end text-to-image search on 1,000,000 image codes with the mih index:
#     ORDER BY code <~> jdsh.encode_text('emoji', $1) LIMIT 10, beside the index search with a
#     precomputed code, the encoder alone, an index WITH (substrings = 4) and sequential scans.
# Writes bench/out/models.md (tables for the README) and bench/out/models.json, prints the tables.
#
#   bench/models.sh                   # the full run: ~12 min on the 2-core VM (training ~2 min;
#                                     # up to 15 min when the machine is busy)
#   bench/models.sh --reuse-models    # keep the database and its trained models from a previous
#                                     # run (no data load, no training)
#   bench/models.sh --quick           # smaller tables, 1 repetition, 30 queries (use with
#                                     # --reuse-models for a loop of a few minutes)
#   bench/models.sh --help            # every option of bench/models_bench.py
#
# Its own side cluster (.cluster-bench-models, port 54381), never the development cluster on
# 54329; stopped at the end (MODELS_KEEP_CLUSTER=1 keeps it running).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export JDSH_PGPORT="${JDSH_PGPORT:-54381}"
export JDSH_CLUSTER="${JDSH_CLUSTER:-$(dirname "$here")/.cluster-bench-models}"
# shellcheck source=scripts/env.sh
source "$here/../scripts/env.sh"
BENCH_VENV="$ROOT/.cache/bench-venv"
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
# The driver's Python modules, then the pip requirements that provide them.
BENCH_PACKAGES=(numpy psycopg -- numpy "psycopg[binary]")
BENCH_DB=jdsh_models_bench
export PGDATABASE=$BENCH_DB



# The trainer CLI: $JDSH_TRAIN, else the workspace build, else the trainer's own target folder
# (where `cargo build` inside trainer/ puts it); built only when none exists.
find_trainer() {
  local cand
  for cand in "${JDSH_TRAIN:-}" "$CARGO_TARGET_DIR/release/jdsh-train" \
    "$ROOT/target/trainer/release/jdsh-train"; do
    if [ -n "$cand" ] && [ -x "$cand" ]; then JDSH_TRAIN="$cand"; return; fi
  done
  echo "[bench] building jdsh-train"
  (cd "$ROOT" && cargo build --release -p jdsh-trainer --bin jdsh-train)
  JDSH_TRAIN="$CARGO_TARGET_DIR/release/jdsh-train"
}


psql_bench() {
  "$PG_BIN/psql" -h "$PGHOST" -p "$PGPORT" -U postgres -d "$BENCH_DB" -qAtX -v ON_ERROR_STOP=1 "$@"
}

# One process per statement (no parallel workers: the numbers are for one backend, one core),
# everything in memory, no JIT (it would compile per statement and time LLVM).
configure_cluster() {
  bash "$ROOT/scripts/cluster.sh" start >/dev/null
  psql_admin -c "ALTER SYSTEM SET shared_buffers = '2GB'" \
    -c "ALTER SYSTEM SET max_parallel_workers_per_gather = 0" \
    -c "ALTER SYSTEM SET jit = off" \
    -c "ALTER SYSTEM SET maintenance_work_mem = '1GB'" \
    -c "ALTER SYSTEM SET work_mem = '256MB'" \
    -c "ALTER SYSTEM SET checkpoint_timeout = '30min'" \
    -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  if [ "$(psql_admin -c "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'")" = t ]; then
    echo "[bench] restarting the bench cluster for shared_buffers"
    bash "$ROOT/scripts/cluster.sh" stop >/dev/null
    bash "$ROOT/scripts/cluster.sh" start >/dev/null
  fi
}

have_models() {
  [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$BENCH_DB'")" = 1 ] &&
    [ "$(psql_bench -c "SELECT count(DISTINCT name) FROM jdsh.models WHERE name IN ('emoji', 'wiki')" 2>/dev/null)" = 2 ]
}

# A fresh database with the emoji and Wikipedia tables (jdsh-train export | psql).
load_database() {
  psql_admin -c "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB" >/dev/null
  psql_bench -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION jdsh; CREATE EXTENSION pg_prewarm;" >/dev/null
  if [ ! -d "${JDSH_EMOJI_DIR:-$ROOT/.cache/emoji}/emojilib" ]; then
    bash "$ROOT/scripts/fetch-emoji.sh"
  fi
  local ds
  for ds in emoji wikipedia; do
    echo "[bench] loading $ds"
    "$JDSH_TRAIN" export --dataset "$ds" | psql_bench >/dev/null
  done
  psql_bench -c "VACUUM ANALYZE emoji" -c "VACUUM ANALYZE wikipedia"
}

main() {
  case " $* " in
    *" --help "* | *" -h "*) ensure_venv "${BENCH_PACKAGES[@]}"; exec "$BENCH_VENV/bin/python" "$here/models_bench.py" --help ;;
  esac
  local started=$SECONDS reuse=0
  case " $* " in *" --reuse-models "*) reuse=1 ;; esac
  ensure_venv "${BENCH_PACKAGES[@]}"
  ensure_extension
  find_trainer
  configure_cluster
  if [ "$reuse" = 1 ] && have_models; then
    echo "[bench] reusing $BENCH_DB and its models"
  else
    load_database
  fi
  mkdir -p "$here/out"
  "$BENCH_VENV/bin/python" "$here/models_bench.py" --db "$BENCH_DB" --out "$here/out" \
    --trainer "$JDSH_TRAIN" "$@"
  echo "[bench] wrote $here/out/models.md and $here/out/models.json ($((SECONDS - started)) s in all)"
  if [ "${MODELS_KEEP_CLUSTER:-0}" != 1 ]; then bash "$ROOT/scripts/cluster.sh" stop >/dev/null; fi
}

main "$@"
