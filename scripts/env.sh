# Shared settings for the project's scripts (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGRX_VERSION=0.18.1
export TORCH_VERSION=2.11.0
# The PostgreSQL major the scripts build, install and test against (JDSH_PG, or --pg N where a
# script takes it): 15 is Debian 12's packaged server; 17 and 18 are built from Debian's source
# packages by scripts/postgres.sh into .pg/<major>/ (see PG_PREFIX below).
export JDSH_PG="${JDSH_PG:-15}"
case "$JDSH_PG" in
  15 | 17 | 18) ;;
  *) echo "jdsh: PostgreSQL $JDSH_PG is not supported here (15, 17 or 18; JDSH_PG / --pg)" >&2; exit 2 ;;
esac
export VENV="$ROOT/.venv"
# The venv's python comes first: torch-sys asks it where libtorch lives.
export PATH="$VENV/bin:$HOME/.cargo/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PYTHON="${PYTHON:-python3}"
# Test data sets (Wikipedia, MIRFlickr-25K; gzip CSV with provenance, data/README.md) ship in the
# repository; JDSH_DATA points the trainer and the tests at another copy with the same layout.
export JDSH_DATA="${JDSH_DATA:-$ROOT/data}"
# PostgreSQL refuses to run as root: as root, the project's clusters run as the postgres user,
# from / (the current folder may be one that user cannot enter; every path given is absolute).
if [ "$(id -u)" = 0 ]; then
  PGOS_USER=postgres
  as_pg() { (cd / && runuser -u "$PGOS_USER" -- "$@"); }
else
  PGOS_USER=$(id -un)
  as_pg() { "$@"; }
fi

# Root commands: directly when root, through sudo otherwise.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs those of the Debian packages "$@" that are missing (nothing, not even apt-get update,
# when all are there). The caller's `log` says what is installed.
apt_install() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The real folder of folder $1 (a cluster's, or a built server's prefix), one the server's user
# reaches. The server opens its
# files by path, so every folder above them must be searchable by that user; a checkout in a
# private folder (a home under /root, a `mktemp -d` folder) is not. Then the files live in
# ${TMPDIR:-/tmp}/jdsh-<hash of $1>/ and $1 is a link to them, for people to look in; scripts and
# the server only ever see the real path.
server_dir() {
  local dir=$1 alt
  # Before set-up has installed PostgreSQL there is no such user yet, and no cluster to place.
  if ! id -u "$PGOS_USER" >/dev/null 2>&1; then printf '%s\n' "$dir"; return; fi
  mkdir -p "$(dirname "$dir")"
  if [ ! -e "$dir" ] && ! as_pg test -x "$(dirname "$dir")" 2>/dev/null; then
    alt="${TMPDIR:-/tmp}/jdsh-$(printf '%s' "$dir" | md5sum | cut -c1-10)"
    mkdir -p "$alt"
    ln -sfn "$alt" "$dir"
  fi
  readlink -f "$dir"
}

if [ "$JDSH_PG" = 15 ]; then
  export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
  PG_PORT_DEFAULT=54329 CLUSTER_DEFAULT="$ROOT/.cluster"
else
  # A server built here (scripts/postgres.sh); it runs as the server's user, so its prefix is a
  # folder that user reaches, like a cluster's.
  PG_PREFIX="$(server_dir "$ROOT/.pg/$JDSH_PG")"
  export PG_PREFIX PG_CONFIG="$PG_PREFIX/bin/pg_config"
  PG_PORT_DEFAULT=544$JDSH_PG CLUSTER_DEFAULT="$ROOT/.cluster-pg$JDSH_PG"
fi
export PG_BIN="${PG_CONFIG%/pg_config}"
# pgrx's name for the major (cargo features, `cargo pgrx test pgNN`); 15 is the default feature.
export PGRX_PG="pg$JDSH_PG"

# Embedded cluster: its own folder, port and socket directory (one per major: a data folder
# belongs to the major that made it).
# JDSH_CLUSTER_PG remembers the major a JDSH_CLUSTER was given or chosen for: a script that sources
# this again for another major (scripts/test.sh) does not inherit the other major's cluster.
[ "${JDSH_CLUSTER_PG:-$JDSH_PG}" = "$JDSH_PG" ] || unset JDSH_CLUSTER
JDSH_CLUSTER="$(server_dir "${JDSH_CLUSTER:-$CLUSTER_DEFAULT}")"
export JDSH_CLUSTER JDSH_CLUSTER_PG="$JDSH_PG"
export PGPORT="${JDSH_PGPORT:-$PG_PORT_DEFAULT}"
export PGHOST="$JDSH_CLUSTER/run"
export PGUSER=postgres
export PGDATABASE="${PGDATABASE:-jdsh}"
