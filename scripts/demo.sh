#!/usr/bin/env bash
# The main job: set up (idempotent), start the project's cluster, and run the demo session.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup.sh
bash scripts/cluster.sh start
"$PG_BIN/psql" -X -h "$PGHOST" -p "$PGPORT" -U postgres -d "$PGDATABASE" -v ON_ERROR_STOP=1 -e -f demo/bitcodes.sql
echo
echo "The cluster keeps running. Connect with: psql -h $PGHOST -p $PGPORT -U postgres $PGDATABASE"
echo "Stop it with: scripts/cluster.sh stop"
