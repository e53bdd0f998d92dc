# Shared settings for the project's scripts (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGRX_VERSION=0.18.1
export TORCH_VERSION=2.11.0
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
export PG_BIN=/usr/lib/postgresql/15/bin
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

# The real folder of cluster folder $1, one the server's user reaches. The server opens its
# files by path, so every folder above them must be searchable by that user; a checkout in a
# private folder (a home under /root, a `mktemp -d` folder) is not. Then the files live in
# ${TMPDIR:-/tmp}/jdsh-<hash of $1>/ and $1 is a link to them, for people to look in; scripts and
# the server only ever see the real path.
cluster_dir() {
  local dir=$1 alt
  # Before set-up has installed PostgreSQL there is no such user yet, and no cluster to place.
  if ! id -u "$PGOS_USER" >/dev/null 2>&1; then printf '%s\n' "$dir"; return; fi
  if [ ! -e "$dir" ] && ! as_pg test -x "$(dirname "$dir")" 2>/dev/null; then
    alt="${TMPDIR:-/tmp}/jdsh-$(printf '%s' "$dir" | md5sum | cut -c1-10)"
    mkdir -p "$alt"
    ln -sfn "$alt" "$dir"
  fi
  readlink -f "$dir"
}

# Embedded cluster: its own folder, port and socket directory.
JDSH_CLUSTER="$(cluster_dir "${JDSH_CLUSTER:-$ROOT/.cluster}")"
export JDSH_CLUSTER
export PGPORT="${JDSH_PGPORT:-54329}"
export PGHOST="$JDSH_CLUSTER/run"
export PGUSER=postgres
export PGDATABASE="${PGDATABASE:-jdsh}"
