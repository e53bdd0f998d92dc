#!/usr/bin/env bash
# Citus, the distributed engine, as an optional peer of jdsh: built from its source tarball when
# asked, and a local test cluster of one coordinator and two workers, each its own data folder
# and port on the loopback interface, run like the project's cluster (scripts/cluster.sh).
# jdsh neither links nor needs Citus; the Citus tests (tests/citus/) skip when it is not here.
#
#   scripts/citus.sh build     # build and install Citus 13.2.2 into PostgreSQL 15 (about 8 min)
#   scripts/citus.sh start     # build if needed; coordinator :54381, workers :54382, :54383
#   scripts/citus.sh stop | status | destroy
#   scripts/citus.sh psql [coordinator|worker1|worker2] [ARGS]
#   scripts/citus.sh tarball   # the source tarball's path, or why there is none
#
# The source is the release tarball (AGPL-3.0; tag v13.2.2) that the team keeps beside the
# checkout, ../shared/peers/citus-13.2.2.tar.gz, or JDSH_CITUS_TARBALL. Citus 13.2 is the last line
# that supports PostgreSQL 15 (14 needs 16-18), so the Citus cluster runs on 15 only.
set -euo pipefail
export JDSH_PG=15
source "$(dirname "$0")/env.sh"

CITUS_VERSION=13.2.2
CITUS_TARBALL="${JDSH_CITUS_TARBALL:-$(cd "$ROOT/.." && pwd)/shared/peers/citus-$CITUS_VERSION.tar.gz}"
CITUS_PORT="${JDSH_CITUS_PORT:-54381}"
CITUS_ROOT="$ROOT/.cluster-citus"
NODES=(coordinator worker1 worker2)
log() { printf '\033[1m[citus]\033[0m %s\n' "$*"; }

# Citus 13.2.2's extension version (citus.control's default_version).
CITUS_EXTVERSION=13.2-1
installed() {
  [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] &&
    grep -qs "default_version = '$CITUS_EXTVERSION'" "$("$PG_CONFIG" --sharedir)/extension/citus.control"
}

build() {
  installed && return 0
  [ -f "$CITUS_TARBALL" ] || { echo "no Citus source at $CITUS_TARBALL (set JDSH_CITUS_TARBALL)" >&2; exit 3; }
  apt_install libzstd-dev liblz4-dev libcurl4-openssl-dev libkrb5-dev
  local src="$ROOT/.cache/citus-src"
  rm -rf "$src" && mkdir -p "$src"
  tar -xzf "$CITUS_TARBALL" -C "$src" --strip-components=1
  # PostgreSQL 15.14 and later declare have_createdb_privilege() in commands/dbcommands.h, which
  # Citus 13.2 also defines for 15 as a static inline: keep its copy for older minors only.
  python3 - "$src/src/include/pg_version_compat.h" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
m = re.search(r"static inline bool\s*\nhave_createdb_privilege\(void\)\s*\n\{.*?\n\}\n", s, re.S)
if m is None:
    sys.exit("pg_version_compat.h: have_createdb_privilege not found where expected")
s = s[:m.start()] + "#if PG_VERSION_NUM < 150014\n" + m.group(0) + "#endif\n" + s[m.end():]
open(p, "w").write(s)
PY
  log "building Citus $CITUS_VERSION for PostgreSQL 15 (about 8 minutes on 2 cores)"
  (cd "$src" && ./configure PG_CONFIG="$PG_CONFIG" >configure.log 2>&1) || { tail -20 "$src/configure.log"; exit 1; }
  make -C "$src" -j"$(nproc)" -s >"$src/make.log" 2>&1 || { tail -40 "$src/make.log"; exit 1; }
  as_root make -C "$src" -s install >"$src/install.log" 2>&1 || { tail -20 "$src/install.log"; exit 1; }
  rm -rf "$src"
  log "installed Citus $CITUS_VERSION into $("$PG_CONFIG" --pkglibdir)"
}

# node N: the environment of node N (0 = coordinator) for scripts/cluster.sh and psql.
# Every node preloads jdsh beside citus: the coordinator's adaptive executor opens extra
# connections to a worker for shard queries that take over 10 ms and closes them afterwards
# (citus.max_cached_conns_per_worker = 1), and each new backend would map jdsh and libtorch
# at its first call (~0.4 s): 670 ms per top-10 on 1M learned-like codes instead of a few.
node_env() {
  local i=$1
  echo "JDSH_CLUSTER=$CITUS_ROOT/${NODES[$i]} JDSH_PGPORT=$((CITUS_PORT + i)) JDSH_PRELOAD=citus,jdsh PGDATABASE=jdsh"
}
on_node() {  # on_node I COMMAND...: runs scripts/cluster.sh-style commands with node I's settings
  local i=$1; shift
  env $(node_env "$i") "$@"
}
nq() {  # nq I SQL...: psql on node I's database
  local i=$1; shift
  on_node "$i" bash "$ROOT/scripts/cluster.sh" psql -X -qAt -v ON_ERROR_STOP=1 "$@"
}

start() {
  build
  mkdir -p "$CITUS_ROOT"
  local i fresh=
  [ -s "$CITUS_ROOT/coordinator/data/PG_VERSION" ] || fresh=1
  for i in 0 1 2; do
    on_node "$i" bash "$ROOT/scripts/cluster.sh" start >/dev/null
  done
  if [ -n "$fresh" ]; then
    for i in 0 1 2; do nq "$i" -c "CREATE EXTENSION IF NOT EXISTS citus" >/dev/null; done
    # The coordinator keeps up to 8 connections per worker between queries (Citus keeps 1): a
    # top-k over several shards of a worker opens one per shard when they take over 10 ms
    # (citus.executor_slow_start_interval), and a new backend per shard query and per statement,
    # forked from a postmaster with libtorch mapped, plus a TLS handshake, costs more than the
    # search (1M learned-like codes in 8 shards: 350-580 ms per top-10 with 1, 35 ms with 4).
    nq 0 -c "ALTER SYSTEM SET citus.max_cached_conns_per_worker = 8" -c "SELECT pg_reload_conf()" >/dev/null
    nq 0 -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT)" \
         -c "SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 1)))" \
         -c "SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 2)))" >/dev/null
  fi
  log "coordinator: psql -h $CITUS_ROOT/coordinator/run -p $CITUS_PORT -U postgres jdsh; workers on ports $((CITUS_PORT + 1)), $((CITUS_PORT + 2))"
}

stop() {
  local i
  for i in 2 1 0; do
    [ -d "$CITUS_ROOT/${NODES[$i]}" ] && on_node "$i" bash "$ROOT/scripts/cluster.sh" stop >/dev/null
  done
  return 0
}

case "${1:-start}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) for i in 0 1 2; do printf '%s: ' "${NODES[$i]}"; on_node "$i" bash "$ROOT/scripts/cluster.sh" status || true; done ;;
  destroy)
    for i in 2 1 0; do [ -e "$CITUS_ROOT/${NODES[$i]}" ] && on_node "$i" bash "$ROOT/scripts/cluster.sh" destroy >/dev/null; done
    rm -rf "$CITUS_ROOT"; log "destroyed" ;;
  tarball)  # prints the source tarball's path, or why there is none (exit 3)
    if [ -f "$CITUS_TARBALL" ]; then echo "$CITUS_TARBALL"; else
      echo "no Citus source at $CITUS_TARBALL (the team's ../shared/peers/ holds it; JDSH_CITUS_TARBALL names another copy)"; exit 3; fi ;;
  psql)
    shift; node=${1:-coordinator}; [ $# -gt 0 ] && shift
    for i in 0 1 2; do [ "${NODES[$i]}" = "$node" ] && exec env $(node_env "$i") bash "$ROOT/scripts/cluster.sh" psql "$@"; done
    echo "no node $node (coordinator, worker1, worker2)" >&2; exit 2 ;;
  *) echo "usage: $0 build|start|stop|status|destroy|psql [node]" >&2; exit 2 ;;
esac
