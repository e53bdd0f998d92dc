#!/usr/bin/env bash
# The project's own PostgreSQL cluster (15, or JDSH_PG's major: scripts/env.sh), in an ignored
# folder of the repo, on its own port and socket directory, run by an unprivileged user
# (PostgreSQL refuses to run as root). Nothing here touches a system-wide cluster.
#
#   scripts/cluster.sh start     # initdb on first use, then start; prints a psql line
#   scripts/cluster.sh stop
#   scripts/cluster.sh status
#   scripts/cluster.sh psql [ARGS]
#   scripts/cluster.sh destroy   # stop and delete the cluster's data
set -euo pipefail
source "$(dirname "$0")/env.sh"

# The cluster's folder (JDSH_CLUSTER: env.sh made it a real path the server's user reaches),
# owned by that user.
make_cluster_dir() {
  mkdir -p "$JDSH_CLUSTER"
  if [ "$(id -u)" = 0 ]; then chown "$PGOS_USER" "$JDSH_CLUSTER"; fi
}

DATA="$JDSH_CLUSTER/data"
LOG="$JDSH_CLUSTER/postgres.log"
SOCK="$PGHOST"

running() { as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  make_cluster_dir
  if [ ! -s "$DATA/PG_VERSION" ]; then
    echo "[cluster] initdb $DATA"
    as_pg mkdir -p "$DATA" "$SOCK"
    as_pg "$PG_BIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
# jdsh embedded cluster (the port is given at start: JDSH_PGPORT, default 54329)
unix_socket_directories = '$SOCK'
listen_addresses = '127.0.0.1'
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 4GB
logging_collector = off
CONF
    # Libraries loaded at server start (JDSH_PRELOAD; scripts/citus.sh's nodes: citus).
    [ -z "${JDSH_PRELOAD:-}" ] || echo "shared_preload_libraries = '$JDSH_PRELOAD'" >>"$DATA/postgresql.conf"
  fi
  as_pg mkdir -p "$SOCK"
  if ! running; then
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "-p $PGPORT" -w -t 60 start >/dev/null
  fi
  as_pg "$PG_BIN/psql" -h "$SOCK" -p "$PGPORT" -U postgres -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = '$PGDATABASE'" | grep -q 1 ||
    as_pg "$PG_BIN/createdb" -h "$SOCK" -p "$PGPORT" -U postgres "$PGDATABASE"
  echo "[cluster] running: psql -h $SOCK -p $PGPORT -U postgres $PGDATABASE"
}

stop() {
  if [ -d "$DATA" ] && running; then
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -w -m fast stop >/dev/null
    echo "[cluster] stopped"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "[cluster] running on port $PGPORT"; else echo "[cluster] stopped"; exit 3; fi ;;
  psql) shift; exec "$PG_BIN/psql" -h "$SOCK" -p "$PGPORT" -U postgres "$PGDATABASE" "$@" ;;
  destroy) stop; rm -rf "$JDSH_CLUSTER"; echo "[cluster] destroyed" ;;
  *) echo "usage: $0 start|stop|status|psql|destroy" >&2; exit 2 ;;
esac
