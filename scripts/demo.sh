#!/usr/bin/env bash
# The main job: set up (idempotent), start the project's cluster, and run the demo session.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/cluster.sh start
# A fresh database for the demo, so that it never touches what you keep in the main one.
psql_() { "$PG_BIN/psql" -X -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }
psql_ -d postgres -qc "DROP DATABASE IF EXISTS jdsh_demo" -c "CREATE DATABASE jdsh_demo"
psql_ -d jdsh_demo -v ON_ERROR_STOP=1 -e -f demo/bitcodes.sql

# Part 2: images by text. The emoji images and texts come from the npm registry (cached in
# .cache/emoji); jdsh-train writes them as one table for psql.
bash scripts/fetch-emoji.sh
"$CARGO_TARGET_DIR/release/jdsh-train" export --dataset emoji | psql_ -d jdsh_demo -q -v ON_ERROR_STOP=1
# Epochs sized so that the whole demo stays under 10 minutes on 2 CPU cores.
psql_ -d jdsh_demo -v ON_ERROR_STOP=1 -v jdsh_epochs="${JDSH_DEMO_JDSH_EPOCHS:-50}" \
      -v dcmh_epochs="${JDSH_DEMO_DCMH_EPOCHS:-90}" -e -f demo/emoji.sql
# Part 3: the answers as a page of pictures, with MAP and precision-recall curves.
mkdir -p "$ROOT/.demo"
report_page="$ROOT/.demo/report.html"
psql_ -d jdsh_demo -qAt -v ON_ERROR_STOP=1 -o "$report_page" -f demo/report.sql
echo
echo "The answers as pictures: open $report_page in a browser (one file, no network needed)."
echo "The cluster keeps running. Connect with: psql -h $PGHOST -p $PGPORT -U postgres jdsh_demo"
echo "Stop it with: scripts/cluster.sh stop"
