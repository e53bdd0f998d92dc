#!/usr/bin/env bash
# Every test of the project, on a fresh Debian 12 machine or a warm one:
#   1. set-up (idempotent: installs what is missing, builds and installs the extension),
#   2. lint: formatting (cargo fmt --check) and clippy on every crate and target, warnings denied,
#   3. pure-Rust unit and property tests (jdsh-core, jdsh-trainer),
#   4. SQL regression tests against the project's own cluster,
#   5. cluster tests: every tests/cluster/*.sh but lib.sh, one property each, each on clusters of
#      its own (mih crash recovery during inserts and during VACUUM, a streaming standby, mih
#      under concurrent writers, readers and VACUUM; the models_* tests share one cluster with
#      the Wikipedia data and models trained once); all run, then the step fails if any failed,
#   6. in-server tests (`cargo pgrx test`) in a throw-away cluster.
# The last line counts what passed: cargo tests, regression tests and `PASS <name>` lines.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
t0=$(date +%s)
mkdir -p "$ROOT/target"
log="$ROOT/target/test.log"
exec > >(tee "$log") 2>&1
step() { printf '\n\033[1m== %s\033[0m (%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "set-up"
bash scripts/setup.sh

step "lint: rustfmt, clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "unit and property tests (no PostgreSQL)"
cargo test --release -p jdsh-core -p jdsh-trainer

step "SQL regression tests"
bash scripts/regress.sh

step "cluster tests (tests/cluster/*.sh)"
# The models tests' shared cluster (tests/cluster/lib.sh, models_fixture) is built afresh by each
# run of this script, against the extension just installed, and removed afterwards.
models_cluster() {
  JDSH_PGPORT="${JDSH_MODELS_PORT:-54361}" JDSH_CLUSTER="$ROOT/.cluster-models" bash scripts/cluster.sh "$@"
}
models_cluster destroy >/dev/null
failed=()
for t in tests/cluster/*.sh; do
  [ "$(basename "$t")" = lib.sh ] && continue
  s=$(date +%s)
  bash "$t" || failed+=("$(basename "$t" .sh)")
  echo "($(basename "$t"): $(( $(date +%s) - s ))s)"
done
# Kept (stopped) for inspection when a models test failed; the next run removes it first.
case " ${failed[*]-} " in *" models_"*) ;; *) models_cluster destroy >/dev/null ;; esac
if [ "${#failed[@]}" -gt 0 ]; then
  echo "cluster tests failed: ${failed[*]} (their clusters are kept for inspection; see the FAIL lines above)"
  exit 1
fi

step "in-server tests (cargo pgrx test)"
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: the test cluster runs as the postgres user, in a folder it owns.
  pgdata="$JDSH_CLUSTER/pgrx-test"
  mkdir -p "$pgdata" && chown postgres "$pgdata"
  cargo pgrx test --release pg15 --runas postgres --pgdata "$pgdata/data"
else
  cargo pgrx test --release pg15
fi

step "all tests passed"
# One closing line over every runner (any failure has already stopped the script).
cargo_passed=$(grep -oE 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
regress_passed=$(grep -oE 'All [0-9]+ tests passed' "$log" | awk '{s += $2} END {print s + 0}')
cluster_passed=$(awk '/^PASS [a-z_]+$/ {n++} END {print n + 0}' "$log")
echo "jdsh: $((cargo_passed + regress_passed + cluster_passed)) passed, 0 failed"
