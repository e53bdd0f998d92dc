#!/usr/bin/env bash
# Every test of the project, on a fresh Debian 12 machine or a warm one:
#   1. set-up (idempotent: installs what is missing, builds and installs the extension),
#   2. lint: formatting (cargo fmt --check) and clippy on every crate and target, warnings denied,
#   3. pure-Rust unit and property tests (jdsh-core, jdsh-trainer),
# then, on PostgreSQL 15 (Debian's) and again on 18 (the newest major, built from Debian's source
# package by set-up and cached in .pg/; about 15 minutes more on a fresh machine):
#   4. (18: set-up for that major, and clippy on the extension built for it, warnings denied)
#   5. SQL regression tests against the project's own cluster of that major,
#   6. cluster tests: every tests/cluster/*.sh but lib.sh, one property each, each on clusters of
#      its own (mih crash recovery during inserts and during VACUUM, a streaming standby, mih
#      under concurrent writers, readers and VACUUM; the models_* tests share one cluster with
#      the Wikipedia data and models trained once); all run, then the step fails if any failed,
#   7. (15 only) the Citus tests, tests/citus/*.sh, on scripts/citus.sh's coordinator and two
#      workers, when Citus's source tarball is beside the checkout (skipped, saying so, otherwise),
#   8. in-server tests (`cargo pgrx test`) in a throw-away cluster.
# The last line counts what passed: cargo tests, regression tests and `PASS <name>` lines.
#
#   scripts/test.sh            # all of the above (CI: .ci/run)
#   scripts/test.sh --pg 17    # steps 4-8 on one major only (15, 17 or 18), after its set-up
set -euo pipefail
majors=(15 18) only=
if [ "${1:-}" = --pg ]; then majors=("${2:?--pg needs a major version: 15, 17 or 18}") only=1; fi
source "$(dirname "$0")/env.sh"
cd "$ROOT"
t0=$(date +%s)
mkdir -p "$ROOT/target"
log="$ROOT/target/test.log"
exec > >(tee "$log") 2>&1
# Free space on the checkout's file system, in GiB, shown at every step: a disk that fills mid-run
# shows up only as PANICs ("No space left on device") in the cluster tests' server logs.
free_gib() { df -Pk "$ROOT" | awk 'NR == 2 {printf "%d", $4 / 1048576}'; }
step() { printf '\n\033[1m== %s\033[0m (%ss, %s GiB free)\n' "$*" "$(( $(date +%s) - t0 ))" "$(free_gib)"; }

# A run from nothing takes about 13 GiB of disk (the torch venv 4.6, the cargo target dir 3.8, the
# test clusters, apt's packages, PostgreSQL 18's build); a warm one, up to 3 (the clusters, 1.6 at
# their peak, and crates rebuilt). Too little is said up front.
need=3
[ -d "$ROOT/.venv" ] && [ -d "$ROOT/target/release" ] || need=14
free=$(free_gib)
if [ "$free" -lt "$need" ]; then
  echo "WARNING: only $free GiB free on $(df -P "$ROOT" | awk 'NR == 2 {print $6}'); this run needs about $need GiB: free some space (an old checkout's target/ or .venv/, stopped clusters' .cluster-*/) or the cluster tests will fail with 'No space left on device'"
fi

if [ -z "$only" ]; then
  step "set-up"
  bash scripts/setup.sh

  step "lint: rustfmt, clippy"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings

  step "unit and property tests (no PostgreSQL)"
  cargo test --release -p jdsh-core -p jdsh-trainer
fi

# run_each TEST...: runs every test script but lib.sh, timing each; a failed one's name goes to
# $failed (all run, the caller decides).
run_each() {
  local t s
  for t in "$@"; do
    [ "$(basename "$t")" = lib.sh ] && continue
    s=$(date +%s)
    bash "$t" || failed+=("$(basename "$t" .sh)")
    echo "($(basename "$t"): $(( $(date +%s) - s ))s)"
  done
}

# Steps 4-8 on PostgreSQL $JDSH_PG (env.sh, sourced again for it: its server, cluster and port).
major_tests() {
  source "$ROOT/scripts/env.sh"
  if [ -n "$only" ] || [ "$JDSH_PG" != 15 ]; then
    step "PostgreSQL $JDSH_PG: set-up"
    bash scripts/setup.sh --pg "$JDSH_PG"
  fi
  if [ "$JDSH_PG" != 15 ]; then
    step "PostgreSQL $JDSH_PG: clippy on the extension built for it"
    cargo clippy -p jdsh --all-targets --no-default-features --features "$PGRX_PG" -- -D warnings
  fi

  step "PostgreSQL $JDSH_PG: SQL regression tests"
  bash scripts/regress.sh

  step "PostgreSQL $JDSH_PG: cluster tests (tests/cluster/*.sh)"
  # The models tests' shared cluster (tests/cluster/lib.sh, models_fixture) is built afresh by each
  # run of this script, against the extension just installed, and removed afterwards.
  models_cluster() {
    JDSH_PGPORT="${JDSH_MODELS_PORT:-54361}" JDSH_CLUSTER="$ROOT/.cluster-models" bash scripts/cluster.sh "$@"
  }
  models_cluster destroy >/dev/null
  failed=()
  run_each tests/cluster/*.sh
  # Kept (stopped) for inspection when a models test failed; the next run removes it first.
  case " ${failed[*]-} " in *" models_"*) ;; *) models_cluster destroy >/dev/null ;; esac
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "PostgreSQL $JDSH_PG: cluster tests failed: ${failed[*]} (their clusters are kept for inspection; see the FAIL lines above; $(free_gib) GiB free now)"
    return 1
  fi

  if [ "$JDSH_PG" = 15 ]; then
    step "PostgreSQL 15: Citus tests (tests/citus/*.sh: a coordinator and two workers)"
    # Citus is an optional peer, built from its source tarball beside the checkout (the team's
    # machines and CI have it); without it these tests are skipped, visibly.
    if citus_src=$(bash scripts/citus.sh tarball); then
      bash scripts/citus.sh build
      bash scripts/citus.sh destroy >/dev/null
      run_each tests/citus/*.sh
      if [ "${#failed[@]}" -gt 0 ]; then
        echo "Citus tests failed: ${failed[*]} (the Citus cluster is kept, stopped: scripts/citus.sh start to look, destroy to remove)"
        return 1
      fi
      bash scripts/citus.sh destroy >/dev/null
    else
      echo "SKIP Citus tests: $citus_src"
    fi
  fi

  step "PostgreSQL $JDSH_PG: in-server tests (cargo pgrx test)"
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: the test cluster runs as the postgres user, in a folder it owns.
    pgdata="$JDSH_CLUSTER/pgrx-test"
    mkdir -p "$pgdata" && chown postgres "$pgdata"
    cargo pgrx test --release "$PGRX_PG" --runas postgres --pgdata "$pgdata/data"
  else
    cargo pgrx test --release "$PGRX_PG"
  fi

  # The project's cluster of a newer major is not left running beside 15's.
  [ "$JDSH_PG" = 15 ] || bash scripts/cluster.sh stop >/dev/null
}
for m in "${majors[@]}"; do
  (export JDSH_PG=$m; major_tests)
done

step "all tests passed"
# One closing line over every runner (any failure has already stopped the script).
cargo_passed=$(grep -oE 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
regress_passed=$(grep -oE 'All [0-9]+ tests passed' "$log" | awk '{s += $2} END {print s + 0}')
cluster_passed=$(awk '/^PASS [a-z_]+$/ {n++} END {print n + 0}' "$log")
echo "jdsh: $((cargo_passed + regress_passed + cluster_passed)) passed, 0 failed"
