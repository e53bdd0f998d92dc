#!/usr/bin/env bash
# Builds and installs pgvector (benchmark peer only; jdsh does not depend on it) from the source
# tarball in ../shared/peers/, into the project's PostgreSQL 15. Idempotent.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
if [ -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ]; then exit 0; fi
tarball=$(ls "$ROOT"/../shared/peers/pgvector-*.tar.gz 2>/dev/null | head -1)
if [ -z "$tarball" ]; then
  echo "pgvector source not found in ../shared/peers/: the peer columns will be skipped" >&2
  exit 1
fi
mkdir -p "$ROOT/bench/out"
rm -rf "$ROOT/bench/out/pgvector"
tar xzf "$tarball" -C "$ROOT/bench/out"
# OPTFLAGS="" avoids -march=native, as the peers README says.
make -s -C "$ROOT/bench/out/pgvector" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s -C "$ROOT/bench/out/pgvector" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >/dev/null
echo "[bench] pgvector installed"
