#!/usr/bin/env bash
# Builds PostgreSQL 17 or 18 from Debian's source package into .pg/<major>/ (an ignored folder; a
# link to ${TMPDIR:-/tmp}/jdsh-<hash> when the server's user cannot enter the checkout), for
# building and testing the extension on a newer major than Debian 12 packages. Cached: does
# nothing when that prefix already holds the pinned version. About 3-4 minutes on 2 cores.
#
#   scripts/postgres.sh 18
#
# The sources are the upstream tarballs inside Debian's source packages (postgresql-17 from trixie,
# postgresql-18 from sid), fetched from the Debian archive's pool by pinned version and checked
# against the sha256 of the package's .dsc. Not through `apt-get source`: the archive's index
# names postgresql-17 17.12-0+deb13u1, whose files the pool here does not serve (404), while
# 17.11's are there. No Debian suite carries PostgreSQL 16.
# Build dependencies (bison, flex, zlib) come from apt in scripts/setup.sh.
set -euo pipefail
JDSH_PG="${1:?usage: scripts/postgres.sh 17|18}"
export JDSH_PG
source "$(dirname "$0")/env.sh"

case "$JDSH_PG" in
  17) version=17.11 sha256=dd27f2b3c59e73ed14aa3324901242bf69a032a6347805f274e6260322d42979 ;;
  18) version=18.6 sha256=555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f ;;
  *) echo "scripts/postgres.sh: builds PostgreSQL 17 or 18, not $JDSH_PG" >&2; exit 2 ;;
esac
MIRROR="${JDSH_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf '\033[1m[postgres %s]\033[0m %s\n' "$JDSH_PG" "$*"; }

if [ -x "$PG_CONFIG" ] && [ "$("$PG_CONFIG" --version)" = "PostgreSQL $version" ]; then
  exit 0
fi

src="$ROOT/.pg/src"
tarball="$src/postgresql-${JDSH_PG}_$version.orig.tar.bz2"
mkdir -p "$src"
if ! echo "$sha256  $tarball" | sha256sum -c --status 2>/dev/null; then
  url="$MIRROR/pool/main/p/postgresql-$JDSH_PG/postgresql-${JDSH_PG}_$version.orig.tar.bz2"
  log "fetching $url"
  python3 - "$url" "$tarball.part" <<'PY' || { echo "cannot fetch $url: PostgreSQL $JDSH_PG is built from that file (set JDSH_DEBIAN_MIRROR to another Debian mirror)" >&2; exit 1; }
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)
PY
  echo "$sha256  $tarball.part" | sha256sum -c --status ||
    { echo "$tarball: sha256 differs from the pinned $sha256 (Debian's .dsc of postgresql-$JDSH_PG $version)" >&2; exit 1; }
  mv "$tarball.part" "$tarball"
fi

build="$src/build-$JDSH_PG"
rm -rf "$build" && mkdir -p "$build"
log "building PostgreSQL $version into $PG_PREFIX (about 3-4 minutes on 2 cores)"
tar -xjf "$tarball" -C "$build" --strip-components=1
cd "$build"
# No ICU and no readline: the tests' clusters use the C.UTF-8 locale and psql runs scripted.
./configure --prefix="$PG_PREFIX" --without-icu --without-readline >configure.log 2>&1 ||
  { tail -20 configure.log; exit 1; }
make -j"$(nproc)" -s >make.log 2>&1 || { tail -40 make.log; exit 1; }
rm -rf "${PG_PREFIX:?}"/*
make -s install >install.log 2>&1 || { tail -20 install.log; exit 1; }
# The server runs as another user when set-up runs as root: it reads the whole tree.
chmod -R a+rX "$PG_PREFIX"
cd "$ROOT" && rm -rf "$build"
log "installed: $("$PG_CONFIG" --version) in $PG_PREFIX"
