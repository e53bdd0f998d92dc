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
# Embedded cluster: its own folder, port and socket directory.
export JDSH_CLUSTER="${JDSH_CLUSTER:-$ROOT/.cluster}"
export PGPORT="${JDSH_PGPORT:-54329}"
export PGHOST="$JDSH_CLUSTER/run"
export PGUSER=postgres
export PGDATABASE="${PGDATABASE:-jdsh}"
