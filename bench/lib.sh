# Shared pieces of the benchmark drivers (sourced by bench/mih.sh and bench/models.sh after
# scripts/env.sh and after they set BENCH_VENV).

# The driver's Python packages, in a venv of their own (not the trainer's .venv with torch).
# Arguments: the modules to import, then "--", then the pip requirements that provide them.
ensure_venv() {
  local modules=() reqs=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do modules+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  reqs=("$@")
  if [ ! -x "$BENCH_VENV/bin/python" ]; then
    echo "[bench] creating $BENCH_VENV"
    python3 -m venv "$BENCH_VENV"
  fi
  if ! "$BENCH_VENV/bin/python" -c "import $(IFS=,; echo "${modules[*]}")" 2>/dev/null; then
    "$BENCH_VENV/bin/pip" install -q "${reqs[@]}"
  fi
}

ensure_extension() {
  local sharedir
  sharedir="$("$PG_CONFIG" --sharedir)/extension"
  if ! ls "$sharedir"/jdsh--*.sql >/dev/null 2>&1; then
    echo "[bench] jdsh is not installed ($sharedir/jdsh--*.sql): run scripts/setup.sh" >&2
    exit 1
  fi
}

psql_admin() {
  "$PG_BIN/psql" -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"
}
