#!/usr/bin/env bash
# Every test of the project, on a fresh Debian 12 machine or a warm one:
#   1. set-up (idempotent: installs what is missing, builds and installs the extension),
#   2. formatting check, pure-Rust unit and property tests (jdsh-core, jdsh-trainer),
#   3. SQL regression tests against the project's own cluster,
#   4. in-server tests (`cargo pgrx test`) in a throw-away cluster.
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

step "rustfmt"
cargo fmt --all -- --check

step "unit and property tests (no PostgreSQL)"
cargo test --release -p jdsh-core -p jdsh-trainer

step "SQL regression tests"
bash scripts/regress.sh

step "cluster tests: mih crash recovery and standby, mih concurrency (own clusters)"
bash tests/cluster/mih_crash.sh
bash tests/cluster/mih_concurrency.sh
bash tests/cluster/models.sh

step "in-server tests (cargo pgrx test)"
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: the test cluster runs as the postgres user, in a folder it owns.
  pgdata="$(readlink -f "$JDSH_CLUSTER")/pgrx-test"
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
