#!/usr/bin/env bash
# Installs everything jdsh needs on a Debian 12 machine, then builds and installs the extension.
# Idempotent: a second run only rebuilds what changed (seconds when nothing did).
#
#   scripts/setup.sh              # everything, for Debian's PostgreSQL 15
#   scripts/setup.sh --pg 18      # the same for PostgreSQL 18 (or 17), which it builds from Debian's
#                                 # source package first (scripts/postgres.sh; cached in .pg/)
#   scripts/setup.sh --deps       # only the toolchain and libraries, no build
#
# Slow things are cached in ignored folders of the repo: .venv/ (libtorch from the PyPI torch
# wheel), target/ (cargo) and .pg/ (newer PostgreSQL servers). cargo-pgrx goes to ~/.cargo/bin.
set -euo pipefail
deps_only=
while [ $# -gt 0 ]; do
  case "$1" in
    --deps) deps_only=1 ;;
    --pg) export JDSH_PG="${2:?--pg needs a major version: 15, 17 or 18}"; shift ;;
    *) echo "usage: scripts/setup.sh [--deps] [--pg 15|17|18]" >&2; exit 2 ;;
  esac
  shift
done
source "$(dirname "$0")/env.sh"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------------------------
apt_pkgs=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo pkg-config build-essential
          python3-venv ca-certificates)
# npm fetches the emoji data (below); Debian's package only where the machine has no npm of its own.
command -v npm >/dev/null || apt_pkgs+=(npm)
# What building a newer PostgreSQL from source needs (scripts/postgres.sh).
[ "$JDSH_PG" = 15 ] || apt_pkgs+=(bison flex zlib1g-dev)
apt_install "${apt_pkgs[@]}"
# PostgreSQL's package creates the postgres user, which decides where servers and clusters live.
source "$(dirname "$0")/env.sh"
# A newer major: its server, built from Debian's source package (cached: nothing to do when built).
[ "$JDSH_PG" = 15 ] || bash "$ROOT/scripts/postgres.sh" "$JDSH_PG"

# --- cargo-pgrx (pinned: 0.19 needs a newer rustc than this machine has) -------------------------
if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  log "cargo install cargo-pgrx $PGRX_VERSION (about 10 minutes on 2 cores)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi
# pgrx's list of servers: Debian's 15 and every major built here (init adds to the list).
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
# A pg_config that is gone (a deleted checkout's server) is dropped from the list first: pgrx's
# build reads every entry and fails on a missing one, whichever major is being built, and init
# keeps the entries it is not given.
stale_pgrx_config=0
if [ -f "$pgrx_config" ]; then
  kept=$(while IFS= read -r line; do
    p=$(printf '%s\n' "$line" | sed -n 's/^pg[0-9]* = "\(.*\)"$/\1/p')
    if [ -z "$p" ] || [ -x "$p" ]; then printf '%s\n' "$line"; fi
  done < "$pgrx_config")
  if [ "$kept" != "$(cat "$pgrx_config")" ]; then
    stale_pgrx_config=1
    log "dropping pg_config entries that are gone from $pgrx_config"
    printf '%s\n' "$kept" > "$pgrx_config"
  fi
fi
if [ "$stale_pgrx_config" = 1 ] || ! grep -qsx "$PGRX_PG = \"$PG_CONFIG\"" "$pgrx_config"; then
  init_args=(--pg15 /usr/lib/postgresql/15/bin/pg_config)
  for v in 17 18; do
    # (No list yet on a new machine: sed fails, and set -e must not end the set-up there.)
    p=$(sed -n "s/^pg$v = \"\(.*\)\"\$/\1/p" "$pgrx_config" 2>/dev/null || true)
    [ "$v" = "$JDSH_PG" ] && p=$PG_CONFIG
    if [ -n "$p" ] && [ -x "$p" ]; then init_args+=("--pg$v" "$p"); fi
  done
  log "cargo pgrx init ${init_args[*]}"
  cargo pgrx init "${init_args[@]}"
fi

# --- libtorch, from the PyPI torch wheel, in a project-local venv --------------------------------
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "creating $VENV with torch==$TORCH_VERSION (a 4.6 GB download with its CUDA libraries)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
fi
# The postgres server runs as another user: it must be able to read libtorch.
chmod -R a+rX "$VENV/lib" 2>/dev/null || true
# The image backbone's ImageNet weights (EfficientNet-Lite0), converted with the venv's torch.
bash "$ROOT/scripts/fetch-backbone.sh" >/dev/null

[ -n "$deps_only" ] && exit 0

# --- build and install the extension -------------------------------------------------------------
# libtorch beside the extension, in <pkglibdir>/jdsh/{torch/lib,nvidia} (the layout of the wheels,
# whose libraries find each other by $ORIGIN/../../nvidia): jdsh.so's second rpath (build.rs), used
# when the server's user cannot enter the checkout. Hard links where the venv is on the same file
# system (no copy), a copy otherwise; redone only when the venv's torch changed.
install_libtorch() {
  local dest site stamp sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  dest="$("$PG_CONFIG" --pkglibdir)/jdsh"
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  stamp="torch $TORCH_VERSION $(stat -c '%d %i %Y' "$site/torch/lib/libtorch_cpu.so")"
  [ "$(cat "$dest/STAMP" 2>/dev/null)" = "$stamp" ] && return
  log "installing libtorch beside the extension: $dest"
  $sudo rm -rf "$dest.new"
  $sudo mkdir -p "$dest.new/torch"
  local d
  for d in torch/lib nvidia; do
    [ -d "$site/$d" ] || continue
    $sudo cp -al "$site/$d" "$dest.new/$d" 2>/dev/null || { $sudo rm -rf "$dest.new/$d"; $sudo cp -a "$site/$d" "$dest.new/$d"; }
  done
  printf '%s\n' "$stamp" | $sudo tee "$dest.new/STAMP" >/dev/null
  $sudo rm -rf "$dest"
  $sudo mv "$dest.new" "$dest"
}

log "building and installing the extension (release, PostgreSQL $JDSH_PG)"
install_args=(--release --pg-config "$PG_CONFIG")
# pg15 is the crate's default feature; another major replaces it.
[ "$JDSH_PG" = 15 ] || install_args+=(--no-default-features --features "$PGRX_PG")
[ "$(id -u)" = 0 ] || install_args+=(--sudo)
cargo pgrx install "${install_args[@]}" >/dev/null
log "installed jdsh into $("$PG_CONFIG" --pkglibdir)"
install_libtorch
# The trainer's CLI: loads the data sets into tables (demo, tests) and trains/encodes outside SQL.
log "building jdsh-train (release)"
cargo build --release -q -p jdsh-trainer --bin jdsh-train
log "jdsh-train is $CARGO_TARGET_DIR/release/jdsh-train"

# --- emoji images and texts from the npm registry (pinned versions; the trainer's emoji tests,
# the models benchmark and the demo read them from .cache/emoji) ----------------------------------
bash "$ROOT/scripts/fetch-emoji.sh"
