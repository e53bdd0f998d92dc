# Shared helpers of the cluster tests (sourced, not run; scripts/test.sh runs every other
# tests/cluster/*.sh). One property per test file: the first paragraph of its header comment says
# what it checks (printed at its start), and it ends with a line `PASS <name>` or `FAIL <name>: why`.
#
# The caller sets TEST_NAME, and either JDSH_PGPORT and JDSH_CLUSTER (a cluster of its own, on its
# own port and socket directory, apart from the project's .cluster on 54329: created fresh by
# fresh_cluster, removed at the end when the test passed, kept for inspection when it failed) or
# MODELS_TEST=1 (the models tests' shared cluster: see models_fixture below).
set -euo pipefail
: "${TEST_NAME:?}"
if [ -n "${MODELS_TEST:-}" ]; then
  JDSH_PGPORT=${JDSH_MODELS_PORT:-54361}
  JDSH_CLUSTER="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cluster-models"
elif [ -n "${CITUS_TEST:-}" ]; then
  # The Citus tests (tests/citus/*.sh) share scripts/citus.sh's cluster: q talks to its coordinator.
  JDSH_PGPORT=${JDSH_CITUS_PORT:-54381}
  JDSH_CLUSTER="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cluster-citus/coordinator"
fi
: "${JDSH_PGPORT:?}" "${JDSH_CLUSTER:?}"
LIB_SH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# Become a child subreaper (re-executing the test under prctl(PR_SET_CHILD_SUBREAPER)): pg_ctl
# detaches the postmaster, so it would be re-parented to PID 1, which does not reap in some
# containers; a postmaster killed by a crash test would then stay a zombie whose PID, still in
# postmaster.pid, makes the restart fail ("lock file already exists"). As a subreaper, this
# shell inherits the orphans and reaps them.
if [ -z "${JDSH_TEST_SUBREAPER:-}" ] && command -v python3 >/dev/null; then
  export JDSH_TEST_SUBREAPER=1
  exec python3 -c 'import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
os.execvp(sys.argv[1], sys.argv[1:])' bash "$0" "$@"
fi
export JDSH_PGPORT JDSH_CLUSTER
if [ -n "${CITUS_TEST:-}" ]; then export PGDATABASE=jdsh; else export PGDATABASE=jdsh_test; fi
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/env.sh"
cd "$ROOT"
export PGOPTIONS="-c client_min_messages=warning"

T0=$(date +%s)
BG_PIDS=()          # background processes this test started (psql, pgbench, loops)
EXTRA_DATA_DIRS=()  # further data directories this test runs (a standby)


say() { printf '[%s %3ss] %s\n' "$TEST_NAME" "$(( $(date +%s) - T0 ))" "$*"; }
# What the test checks: the first paragraph of its header comment (after the #! line, up to a
# line that is a lone #).
say "checks: $(awk 'NR == 1 {next} /^#$/ || !/^#/ {exit} {sub(/^# ?/, ""); printf "%s%s", sep, $0; sep = " "}' "$0")"
fail() {
  say "FAILED: $*"
  [ -f "$JDSH_CLUSTER/postgres.log" ] && { echo "--- last lines of $JDSH_CLUSTER/postgres.log"; tail -n 30 "$JDSH_CLUSTER/postgres.log"; }
  echo "FAIL $TEST_NAME: $*"
  FINAL_DONE=1
  exit 1
}
# A failed check that does not stop the test: the later checks still run and tell more; the
# test fails at its end (finish).
FAILURES=()
soft_fail() { say "FAILED: $*"; FAILURES+=("$*"); }
finish() {
  if [ "${#FAILURES[@]}" -gt 0 ]; then
    local more=""
    [ "${#FAILURES[@]}" -gt 1 ] && more=" (and $(( ${#FAILURES[@]} - 1 )) more failed checks above)"
    fail "${FAILURES[0]}$more"
  fi
  say "done"
  echo "PASS $TEST_NAME"
  FINAL_DONE=1
}

cleanup() {
  local rc=$?
  set +e
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for d in "${EXTRA_DATA_DIRS[@]}"; do
    as_pg "$PG_BIN/pg_ctl" -D "$d" status >/dev/null 2>&1 && as_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  if [ -n "${CITUS_TEST:-}" ]; then
    # The Citus cluster keeps its data for the next Citus test (stopped); scripts/test.sh removes it.
    bash "$ROOT/scripts/citus.sh" stop >/dev/null 2>&1
    [ "$rc" = 0 ] || echo "[$TEST_NAME] Citus cluster kept (stopped): $ROOT/.cluster-citus (remove with scripts/citus.sh destroy)"
    [ "$rc" = 0 ] || [ -n "${FINAL_DONE:-}" ] || echo "FAIL $TEST_NAME: aborted (exit status $rc)"
    return
  fi
  bash "$ROOT/scripts/cluster.sh" stop >/dev/null 2>&1
  if [ -n "${MODELS_TEST:-}" ]; then
    # The shared models cluster keeps its data for the next models test (stopped: no server is
    # left running); scripts/test.sh removes it after the cluster tests.
    [ "$rc" = 0 ] || echo "[$TEST_NAME] models cluster kept (stopped): $JDSH_CLUSTER; the next models test resets and reuses it (remove with JDSH_PGPORT=$JDSH_PGPORT JDSH_CLUSTER=$JDSH_CLUSTER scripts/cluster.sh destroy)"
    [ "$rc" = 0 ] || [ -n "${FINAL_DONE:-}" ] || echo "FAIL $TEST_NAME: aborted (exit status $rc)"
  elif [ "$rc" = 0 ]; then
    bash "$ROOT/scripts/cluster.sh" destroy >/dev/null 2>&1
  else
    echo "[$TEST_NAME] cluster kept for inspection: $JDSH_CLUSTER (remove with JDSH_PGPORT=$JDSH_PGPORT JDSH_CLUSTER=$JDSH_CLUSTER scripts/cluster.sh destroy)"
    [ -z "${FINAL_DONE:-}" ] && echo "FAIL $TEST_NAME: aborted (exit status $rc)"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# psql on the test database: quiet, unaligned, tuples only, stop on the first error.
q() { "$PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 "$@"; }

# Fails when something already listens on port $1 (another cluster).
port_free() { ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -t 2 >/dev/null 2>&1 || fail "port $1 is in use"; }

# True while process $1 exists and is not a zombie.
alive() { [ -e "/proc/$1" ] && ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null; }

# A fresh cluster (initdb) and database with the extension and the helper functions of code_helpers.
fresh_cluster() {
  bash "$ROOT/scripts/cluster.sh" destroy >/dev/null 2>&1 || true
  port_free "$PGPORT"
  bash "$ROOT/scripts/cluster.sh" start >/dev/null || fail "cannot start the cluster on port $PGPORT"
  q -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
  q -c "CREATE EXTENSION jdsh" >/dev/null || fail "cannot create the extension"
  code_helpers
}

# The helper functions of the test database: h64 and gen_code.
code_helpers() {
  q -f - <<'SQL' >/dev/null || fail "cannot create the helper functions"
-- 64 deterministic bits from a text
CREATE FUNCTION h64(text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT ('x' || substr(md5($1), 1, 16))::bit(64)::bigint $$;
-- A clustered 64-bit code: one of 1024 centres with each bit flipped with probability 1/16
-- (about 4 bits; about 1.6% of the codes equal their centre exactly, so there are duplicates).
CREATE FUNCTION gen_code(seed text) RETURNS bitcode LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT (h64('c' || (h64('k' || seed) & 1023))
                # (h64('a' || seed) & h64('b' || seed) & h64('d' || seed) & h64('e' || seed)))::bitcode(64) $$;
SQL
}

# The oracle functions, once table t (id, code bitcode(64)) exists. Each one is planned with its
# own settings: *_idx by index scan, *_bmp by bitmap scan, *_seq by sequential scan.
create_oracles() {
  q -f - <<'SQL' >/dev/null || fail "cannot create the oracle functions"
-- the top k rows by index scan, nearest first: (id, distance)
CREATE FUNCTION knn_idx(q bitcode, k int) RETURNS TABLE (id bigint, d int) LANGUAGE sql STABLE
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_indexscan = on
  AS $$ SELECT id, code <~> q FROM t ORDER BY code <~> q LIMIT k $$;
-- the rows within radius r, by index scan and by bitmap scan: ids
CREATE FUNCTION rad_idx(q bitcode, r int) RETURNS SETOF bigint LANGUAGE sql STABLE
  SET enable_seqscan = off SET enable_bitmapscan = off SET enable_indexscan = on
  AS $$ SELECT id FROM t WHERE code <@ jdsh.ball(q, r) $$;
CREATE FUNCTION rad_bmp(q bitcode, r int) RETURNS SETOF bigint LANGUAGE sql STABLE
  SET enable_seqscan = off SET enable_bitmapscan = on SET enable_indexscan = off
  AS $$ SELECT id FROM t WHERE code <@ jdsh.ball(q, r) $$;
-- the truth, by sequential scan: the top k, and the rows within radius r, with distances
CREATE FUNCTION knn_seq(q bitcode, k int) RETURNS TABLE (id bigint, d int) LANGUAGE sql STABLE
  SET enable_seqscan = on SET enable_bitmapscan = off SET enable_indexscan = off
  AS $$ SELECT id, code <~> q FROM t ORDER BY code <~> q LIMIT k $$;
CREATE FUNCTION rad_seq(q bitcode, r int) RETURNS TABLE (id bigint, d int) LANGUAGE sql STABLE
  SET enable_seqscan = on SET enable_bitmapscan = off SET enable_indexscan = off
  AS $$ SELECT id, code <~> q FROM t WHERE code <@ jdsh.ball(q, r) $$;
SQL
}

# Fails unless the settings of the oracles give the intended plans (mih index scan for k-NN and
# radius, bitmap scan on the mih index for radius, sequential scans for the *_seq ones).
# $1: the mih index's name; further psql options (e.g. -p for a standby) follow.
check_plans() {
  local idx=$1; shift
  local c="'0101010101010101010101010101010101010101010101010101010101010101'::bitcode"
  local p
  p=$(q "$@" -c "SET enable_seqscan=off" -c "SET enable_bitmapscan=off" \
        -c "EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY code <~> $c LIMIT 10")
  grep -q "Index Scan using $idx" <<<"$p" || fail "k-NN is not planned as a scan of $idx: $p"
  p=$(q "$@" -c "SET enable_seqscan=off" -c "SET enable_bitmapscan=off" \
        -c "EXPLAIN (COSTS OFF) SELECT id FROM t WHERE code <@ jdsh.ball($c, 3)")
  grep -q "Index Scan using $idx" <<<"$p" || fail "radius is not planned as an index scan of $idx: $p"
  p=$(q "$@" -c "SET enable_seqscan=off" -c "SET enable_indexscan=off" \
        -c "EXPLAIN (COSTS OFF) SELECT id FROM t WHERE code <@ jdsh.ball($c, 3)")
  grep -q "Bitmap Index Scan on $idx" <<<"$p" || fail "radius is not planned as a bitmap scan of $idx: $p"
  p=$(q "$@" -c "SET enable_indexscan=off" -c "SET enable_bitmapscan=off" \
        -c "EXPLAIN (COSTS OFF) SELECT id FROM t WHERE code <@ jdsh.ball($c, 3)")
  grep -q "Seq Scan on t" <<<"$p" || fail "the oracle is not a sequential scan: $p"
}

# The query set qs(qid, code): 10 codes of the table (a sample drawn by md5 with the salt $1),
# 10 fresh codes near the clusters and 10 random codes (far from everything). Psql options follow.
make_queries() {
  local salt=$1; shift
  q "$@" -c "DROP TABLE IF EXISTS qs" \
    -c "CREATE TABLE qs AS
          SELECT row_number() OVER ()::int AS qid, code FROM (
            (SELECT code FROM t ORDER BY md5(id::text || '$salt') LIMIT 10)
            UNION ALL SELECT gen_code('fresh' || i) FROM generate_series(1, 10) i
            UNION ALL SELECT h64('random' || i)::bitcode(64) FROM generate_series(1, 10) i) s" >/dev/null
}

# Compares the index (index scan and bitmap scan) with a sequential scan for every query of qs:
# k-NN for k = 1, 10, 100 (the multiset of distances, and the set of ids strictly closer than the
# k-th distance, which does not depend on the order of ties) and radius 0..4 (the set of ids).
# The sequential scan runs twice a query (top 100, radius 4); smaller k and r are cut from those.
# Prints "checks mismatches radius_hits"; the mismatches, if any, go to stderr. Psql options follow.
compare_index_seq() {
  local out
  out=$(q "$@" -F ' ' -f - <<'SQL'
-- One read-only statement (it runs on a hot standby too).
WITH truth_knn AS MATERIALIZED (SELECT q.qid, s.id, s.d FROM qs q, LATERAL knn_seq(q.code, 100) s),
truth_rad AS MATERIALIZED (SELECT q.qid, s.id, s.d FROM qs q, LATERAL rad_seq(q.code, 4) s),
got_knn AS MATERIALIZED (
  SELECT q.qid, k, s.id, s.d FROM qs q, unnest('{1,10,100}'::int[]) k, LATERAL knn_idx(q.code, k) s),
kth AS MATERIALIZED (  -- the k-th distance of each (query, k), by the truth
  SELECT q.qid, k, (SELECT d FROM truth_knn t WHERE t.qid = q.qid ORDER BY d OFFSET k - 1 LIMIT 1) AS dk
    FROM qs q, unnest('{1,10,100}'::int[]) k),
cmp AS MATERIALIZED (
  SELECT x.qid, 'knn-distances' AS kind, x.k AS arg,
         (SELECT array_agg(d ORDER BY d) FROM got_knn g WHERE g.qid = x.qid AND g.k = x.k)::text AS idx,
         (SELECT array_agg(d ORDER BY d) FROM (SELECT d FROM truth_knn t WHERE t.qid = x.qid ORDER BY d LIMIT x.k) s)::text AS seq,
         NULL::text AS bmp
    FROM kth x
  UNION ALL
  SELECT x.qid, 'knn-ids-closer-than-kth', x.k,
         (SELECT array_agg(id ORDER BY id) FROM got_knn g WHERE g.qid = x.qid AND g.k = x.k AND g.d < x.dk)::text,
         (SELECT array_agg(id ORDER BY id) FROM truth_knn t WHERE t.qid = x.qid AND t.d < x.dk)::text,
         NULL
    FROM kth x
  UNION ALL
  SELECT q.qid, 'radius', r,
         (SELECT array_agg(id ORDER BY id) FROM rad_idx(q.code, r) id)::text,
         (SELECT array_agg(id ORDER BY id) FROM truth_rad t WHERE t.qid = q.qid AND t.d <= r)::text,
         (SELECT array_agg(id ORDER BY id) FROM rad_bmp(q.code, r) id)::text
    FROM qs q, generate_series(0, 4) r),
bad AS MATERIALIZED (
  SELECT * FROM cmp WHERE idx IS DISTINCT FROM seq OR (kind = 'radius' AND bmp IS DISTINCT FROM seq))
SELECT * FROM (
  SELECT kind, qid::text, arg::text, 'index=' || left(coalesce(idx, '{}'), 200),
         'bitmap=' || left(coalesce(bmp, '-'), 200), 'seq=' || left(coalesce(seq, '{}'), 200)
    FROM bad ORDER BY kind, qid, arg LIMIT 20) b
UNION ALL
SELECT '#', (SELECT count(*) FROM cmp)::text, (SELECT count(*) FROM bad)::text,
       (SELECT count(*) FROM truth_rad)::text, '', '';
SQL
  ) || return 1
  grep -v '^# ' <<<"$out" >&2 || true
  grep '^# ' <<<"$out" | cut -d' ' -f2-
}

# Runs compare_index_seq and fails on any mismatch. $1: a label; psql options follow.
assert_index_equals_seq() {
  local label=$1; shift
  local res
  res=$(compare_index_seq "$@") || fail "$label: the comparison queries failed"
  read -r checks bad hits <<<"$res"
  [ "${checks:-0}" = 330 ] || fail "$label: $checks comparisons instead of 330 (30 queries x 11)"
  [ "$bad" = 0 ] || { soft_fail "$label: $bad of $checks index results differ from a sequential scan (listed above)"; return; }
  say "$label: index = seq scan for $checks checks (30 queries; k-NN k=1,10,100; $hits rows within radius 4 of them)"
}

# jdsh.mih_check of index $1; fails on an error or when heap_rows is not the table's row count.
# Prints the check's row. Psql options follow.
assert_mih_check() {
  local idx=$1; shift
  local res n
  if ! res=$(q "$@" -F ' ' -c "SELECT * FROM jdsh.mih_check('$idx')" 2>&1); then
    soft_fail "mih_check('$idx') raised: $(tr '\n' ' ' <<<"$res")"
    return
  fi
  n=$(q "$@" -c "SELECT count(id) FROM t WHERE code IS NOT NULL")
  read -r rows heap_rows dead bucket_pages free_pages chain <<<"$res"
  [ "$heap_rows" = "$n" ] || { soft_fail "mih_check('$idx'): heap_rows=$heap_rows but the table holds $n rows"; return; }
  say "mih_check($idx): rows=$rows heap_rows=$heap_rows dead_entries=$dead bucket_pages=$bucket_pages free_pages=$free_pages longest_chain=$chain"
}

# A plain SELECT count(*) FROM t, with sequential scans off: after a VACUUM (all-visible pages)
# the planner may answer it by an index-only scan of the mih index, which must then work (or
# not be offered). Psql options follow.
check_plain_count() {
  local res n
  n=$(q "$@" -c "SELECT count(id) FROM t")
  if ! res=$(q "$@" -c "SET enable_seqscan = off" -c "SELECT count(*) FROM t" 2>&1); then
    soft_fail "SELECT count(*) FROM t (enable_seqscan off, after VACUUM) fails: $(tr '\n' ' ' <<<"$res")"
  elif [ "$res" != "$n" ]; then
    soft_fail "SELECT count(*) FROM t (enable_seqscan off) gives $res, count(id) gives $n"
  else
    say "SELECT count(*) FROM t (enable_seqscan off) = $n"
  fi
}

# ---------------------------------------------------------------------------------------------
# Crashes (mih_crash_*.sh).

# kill -9 of the postmaster and of every process it started. Killing the postmaster alone is not
# a crash: its backends run on until they notice its death (a bulk INSERT would even finish and
# commit), and while they live a restart refuses to start ("pre-existing shared memory block is
# still in use"). The postmaster is stopped first so that it forks nothing new meanwhile.
crash() {
  local pm kids p
  pm=$(head -1 "$JDSH_CLUSTER/data/postmaster.pid")
  kill -STOP "$pm"
  kids=$(ps -o pid= --ppid "$pm" | tr -d ' ' | tr '\n' ' ')
  kill -KILL "$pm" $kids 2>/dev/null || true
  for _ in $(seq 1 300); do
    local any=
    for p in $pm $kids; do alive "$p" && any=1; done
    [ -z "$any" ] && break
    sleep 0.1
  done
  for p in $pm $kids; do alive "$p" && fail "process $p survived kill -9"; done
  say "kill -9 postmaster $pm and its $(wc -w <<<"$kids") processes"
}

# Runs `VACUUM t` in the background and crashes the cluster while pg_stat_progress_vacuum shows
# phase $1 for it, $2 seconds into that phase, or right after the VACUUM when it is too quick to
# catch there. Says which.
crash_during_vacuum() {
  local want=$1 delay=$2 app="crash_during_vacuum_$$" vac phase=
  PGAPPNAME=$app q -c "VACUUM t" >"$JDSH_CLUSTER/vacuum.out" 2>&1 &
  vac=$!
  BG_PIDS+=("$vac")
  for _ in $(seq 1 3000); do
    phase=$(q -c "SELECT phase FROM pg_stat_progress_vacuum p JOIN pg_stat_activity a USING (pid)
                   WHERE a.application_name = '$app'")
    [ "$phase" = "$want" ] && break
    alive "$vac" || break
    sleep 0.01
  done
  if [ "$phase" = "$want" ]; then
    sleep "$delay"
    crash
    say "crashed while VACUUM was $want"
  else
    wait "$vac" || fail "VACUUM failed: $(cat "$JDSH_CLUSTER/vacuum.out")"
    crash
    say "VACUUM was too quick to catch $want: crashed right after it"
  fi
  wait "$vac" 2>/dev/null || true
}

# Restarts the crashed cluster and fails unless it went through crash recovery (WAL replay).
recover() {
  local log="$JDSH_CLUSTER/postgres.log" before out
  before=$(wc -l <"$log")
  out=$(bash "$ROOT/scripts/cluster.sh" start 2>&1) || fail "the cluster does not restart after the crash: $out"
  tail -n +"$((before + 1))" "$log" | grep -q "database system was interrupted\|was not properly shut down" ||
    fail "the restart did not go through crash recovery"
  tail -n +"$((before + 1))" "$log" | grep -q "redo done\|redo starts" ||
    fail "the restart replayed no WAL"
  say "restarted: crash recovery replayed WAL ($(tail -n +"$((before + 1))" "$log" | grep -o 'redo done at [^ ]*' | head -1))"
}

# Fails unless index t_code_mih has no dead entry (after a complete VACUUM with nobody else).
assert_no_dead_entries() {
  local dead
  dead=$(q -c "SELECT dead_entries FROM jdsh.mih_check('t_code_mih')" 2>&1) || return 0  # reported by assert_mih_check
  [ "$dead" = 0 ] || soft_fail "$dead dead index entries are left after a complete VACUUM"
}

# Table t (id int, code bitcode(64)) with rows 1..$1 of clustered codes and the mih index
# t_code_mih built on them, the oracle functions, the plans checked, jdsh.mih_check passed.
mih_table() {
  q -c "CREATE TABLE t (id int, code bitcode(64))" \
    -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(1, $1) i" \
    -c "CREATE INDEX t_code_mih ON t USING mih (code)" >/dev/null
  create_oracles
  check_plans t_code_mih
  assert_mih_check t_code_mih
}

# ---------------------------------------------------------------------------------------------
# The models tests (models_*.sh, MODELS_TEST=1) share one cluster, .cluster-models on port
# $JDSH_MODELS_PORT (54361), with the Wikipedia data set (2,173 train / 693 test pairs, 128-d image
# and 10-d text features, 10 classes) loaded by `jdsh-train export` and the models they all read,
# trained once:
#   wiki  v1   JDSH, 64 bits, 30 epochs, in SQL (its psql output, NOTICEs included: $FILES/train_wiki.out)
#   dcmh  v1   DCMH, 64 bits, 20 epochs, labels, in SQL ($FILES/train_dcmh.out)
#   $FILES/cli.safetensors   JDSH, 64 bits, 3 epochs, seed 3, trained by `jdsh-train train`
# models_fixture builds it when it is missing, incomplete (an interrupted build), stale (another
# build of the extension or of jdsh-train, other data, another lib.sh) or damaged (wiki v1 or
# dcmh v1 changed), and otherwise resets it to that state: models, roles and columns that a
# models test added are dropped. So each models test runs alone or after any other, in any
# order, and the models are trained once per set of runs. Each test stops the cluster at its end
# and keeps its data; scripts/test.sh removes it before and after the cluster tests.

# The CLI, built when missing or older than the trainer's sources (its codes are compared with
# the extension's, which is built from the same sources).
JT="$CARGO_TARGET_DIR/release/jdsh-train"
TRAIN_SRC="'SELECT * FROM wikipedia WHERE split = ''train'''"
TEST_Q="'SELECT * FROM wikipedia WHERE split = ''test'' ORDER BY id'"
TRAIN_Q="'SELECT * FROM wikipedia WHERE split = ''train'' ORDER BY id'"
# A 10-d text feature vector, and the text features of row 5.
V10="ARRAY[0.1,0.2,0.3,0.1,0.1,0.05,0.05,0.02,0.03,0.05]::real[]"
X="(SELECT text FROM wikipedia WHERE id = 5)"

# What the fixture depends on: the installed extension, the CLI, the data and this file.
models_stamp() {
  local pkglib share
  pkglib=$("$PG_CONFIG" --pkglibdir); share=$("$PG_CONFIG" --sharedir)
  { stat -L -c '%n %s %Y' "$pkglib/jdsh.so" "$share"/extension/jdsh* "$JT" "$JDSH_DATA"/wikipedia/* \
      "$LIB_SH" 2>/dev/null || true; } | md5sum | cut -c1-32
}

models_fixture() {
  if [ ! -x "$JT" ] || [ -n "$(find trainer/src core/src trainer/Cargo.toml core/Cargo.toml Cargo.lock -newer "$JT" 2>/dev/null | head -1)" ]; then
    say "building jdsh-train"
    cargo build --release -q -p jdsh-trainer --bin jdsh-train || fail "cannot build jdsh-train"
  fi
  local f
  for f in train test; do
    [ -f "$JDSH_DATA/wikipedia/$f.csv.gz" ] || [ -f "$JDSH_DATA/wikipedia/$f.csv" ] ||
      fail "the Wikipedia data set is missing: no $JDSH_DATA/wikipedia/$f.csv.gz (JDSH_DATA='$JDSH_DATA'). It ships in the repository as data/wikipedia/{train,test}.csv.gz (provenance: data/README.md): restore it with 'git checkout -- data/wikipedia', or set JDSH_DATA to a folder with the same layout"
  done
  # Files the server reads (pg_read_binary_file) and the CLI's inputs and outputs.
  FILES="$JDSH_CLUSTER/files"
  local stamp have=""
  stamp=$(models_stamp)
  if [ -s "$JDSH_CLUSTER/data/PG_VERSION" ] && bash "$ROOT/scripts/cluster.sh" start >/dev/null 2>&1; then
    have=$(q -c "SELECT f.stamp FROM models_fixture f
                  WHERE f.wiki_md5 = (SELECT md5(model) FROM jdsh.models WHERE name = 'wiki' AND version = 1)
                    AND f.dcmh_md5 = (SELECT md5(model) FROM jdsh.models WHERE name = 'dcmh' AND version = 1)" 2>/dev/null) || have=""
  fi
  if [ "$have" = "$stamp" ] && [ -s "$FILES/train_wiki.out" ] && [ -s "$FILES/train_dcmh.out" ] && [ -s "$FILES/cli.safetensors" ]; then
    models_reset
    say "models cluster on port $PGPORT: reused and reset (wiki v1, dcmh v1 and cli.safetensors from an earlier models test)"
  else
    [ -e "$JDSH_CLUSTER" ] && say "models cluster on port $PGPORT: not in the fixture state (interrupted, stale or changed): rebuilding"
    models_build "$stamp"
  fi
  # The server log from here on is this test's (assert_no_crash).
  LOG_START=$(( $(wc -l <"$JDSH_CLUSTER/postgres.log") + 1 ))
}

models_build() {
  local stamp=$1 out t0
  t0=$(date +%s)
  fresh_cluster
  mkdir -p "$FILES" && chmod 755 "$FILES"
  "$JT" export --dataset wikipedia 2>"$FILES/export.err" | q -f - >/dev/null ||
    fail "cannot load the Wikipedia data set with 'jdsh-train export --dataset wikipedia' from JDSH_DATA='$JDSH_DATA': $(tail -2 "$FILES/export.err" | tr '\n' ' ')"
  [ "$(q -F ' ' -c "SELECT count(*) FILTER (WHERE split = 'train'), count(*) FILTER (WHERE split = 'test') FROM wikipedia")" = "2173 693" ] ||
    fail "wikipedia holds the wrong rows"
  q -c "VACUUM ANALYZE wikipedia" >/dev/null
  say "fixture: loaded wikipedia (2173 train, 693 test pairs); training wiki (JDSH, 30 epochs) and dcmh (DCMH, 20 epochs) in SQL"
  qv -F '|' -c "SET client_min_messages = notice" \
    -c "SELECT * FROM jdsh.train('wiki', $TRAIN_SRC, image => 'image', text => 'text', labels => 'label',
                                 bits => 64, method => 'jdsh', epochs => 30)" >"$FILES/train_wiki.out" ||
    fail "jdsh.train (wiki, JDSH) failed: $(grep -m1 ERROR "$FILES/train_wiki.out")"
  qv -F '|' -c "SELECT * FROM jdsh.train('dcmh', $TRAIN_SRC, image => 'image', text => 'text', labels => 'label',
                                         method => 'dcmh', epochs => 20)" >"$FILES/train_dcmh.out" ||
    fail "jdsh.train (dcmh) failed: $(grep -m1 ERROR "$FILES/train_dcmh.out")"
  out=$("$JT" train --dataset wikipedia --method jdsh --bits 64 --epochs 3 --seed 3 --threads 1 --quiet \
    --out "$FILES/cli.safetensors" 2>&1) || fail "jdsh-train train failed: $(tail -2 <<<"$out" | tr '\n' ' ')"
  chmod 644 "$FILES/cli.safetensors"
  q -c "CREATE TABLE models_fixture AS
          SELECT '$stamp'::text AS stamp,
                 (SELECT md5(model) FROM jdsh.models WHERE name = 'wiki' AND version = 1) AS wiki_md5,
                 (SELECT md5(model) FROM jdsh.models WHERE name = 'dcmh' AND version = 1) AS dcmh_md5" >/dev/null
  say "fixture built in $(( $(date +%s) - t0 ))s"
}

# load_emoji [TABLE...]: the emoji data set (jdsh-train export: one row per emoji and vendor,
# with its PNG) as table emoji_all, after dropping emoji_all and the given tables of an earlier
# run.
load_emoji() {
  "$JT" export --dataset emoji --table emoji_all >"$FILES/emoji.sql" 2>"$FILES/emoji.err" ||
    fail "cannot export the emoji data set ($(tail -1 "$FILES/emoji.err")): run scripts/fetch-emoji.sh (set-up does) to download the pinned emoji packages from npm"
  local t
  for t in emoji_all "$@"; do q -c "DROP TABLE IF EXISTS $t" >/dev/null; done
  q -f "$FILES/emoji.sql" >/dev/null || fail "cannot load the emoji table"
}

# Back to the fixture's state: only wiki v1 and dcmh v1, no test role, no added column (and
# the dead rows of the last test's UPDATEs vacuumed: autovacuum is off).
models_reset() {
  q -f - <<'SQL' >/dev/null || fail "cannot reset the models cluster"
DELETE FROM jdsh.models WHERE (name, version) NOT IN (('wiki', 1), ('dcmh', 1));
DO $$
DECLARE r text;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname IN ('models_r1', 'models_r2') LOOP
    EXECUTE format('DROP OWNED BY %I', r);
    EXECUTE format('DROP ROLE %I', r);
  END LOOP;
END $$;
ALTER TABLE wikipedia DROP COLUMN IF EXISTS icode, DROP COLUMN IF EXISTS tcode,
                      DROP COLUMN IF EXISTS image8, DROP COLUMN IF EXISTS icode8;
VACUUM ANALYZE wikipedia;
SQL
}

# psql as in q, but with ERROR lines carrying their SQLSTATE; prints stdout and stderr together.
qv() { "$PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$@" 2>&1; }

# A crash shows as a lost connection in psql and "terminated by signal" in this test's part of
# the server log.
assert_no_crash() {
  local what=$1 out=$2
  if grep -qE 'server closed the connection|connection to server .* lost|terminated abnormally' <<<"$out" ||
     tail -n +"${LOG_START:-1}" "$JDSH_CLUSTER/postgres.log" | grep -qE 'terminated by signal|was terminated by exception'; then
    fail "$what crashed the server: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
  fi
}

# expect_error SQLSTATE LABEL SQL: queues a check that SQL (one or more statements; the first
# error counts) fails with SQLSTATE. run_errors [psql options] runs the queued checks in one
# session (a backend loading the extension, and libtorch with it, takes about half a second),
# each in a transaction block that is rolled back, so that a SET stays inside its check.
E_STATE=(); E_LABEL=(); E_SQL=()
expect_error() { E_STATE+=("$1"); E_LABEL+=("$2"); E_SQL+=("$3"); }
ERRORS_CHECKED=0
run_errors() {
  local i out seg got script="$FILES/errors.sql"
  : >"$script"
  for i in "${!E_SQL[@]}"; do
    printf '\\echo @@check %s\nBEGIN;\n%s\nROLLBACK;\n' "$i" "${E_SQL[$i]}" >>"$script"
  done
  out=$(qv -v ON_ERROR_STOP=0 "$@" -f "$script") || true
  assert_no_crash "the error checks (${E_LABEL[*]})" "$out"
  for i in "${!E_SQL[@]}"; do
    seg=$(awk -v n="$i" '/^@@check / {cur = $2; next} cur == n' <<<"$out")
    got=$(grep -m1 -oE '(ERROR|FATAL):  [0-9A-Z]{5}:' <<<"$seg" | grep -oE '[0-9A-Z]{5}:$' | tr -d : || true)
    if [ "$got" != "${E_STATE[$i]}" ]; then
      soft_fail "${E_LABEL[$i]}: expected SQLSTATE ${E_STATE[$i]}, got ${got:-no error}: $(grep -m1 -E '(ERROR|FATAL):' <<<"$seg" || tail -1 <<<"$seg")"
    else
      ERRORS_CHECKED=$((ERRORS_CHECKED + 1))
    fi
  done
  E_STATE=(); E_LABEL=(); E_SQL=()
}
# train_sql ARGS [NAME]: a jdsh.train call (model 'bad' unless NAME is given).
train_sql() { echo "SELECT * FROM jdsh.train('${2:-bad}', $1);"; }
rows_of() { q -c "SELECT count(*) FROM jdsh.models WHERE name = '$1'"; }

# MAP@all of jdsh.evaluate on the test queries against the training items. $1 model, $2
# 'image->text' or 'text->image', $3 version (optional).
sql_map() {
  local model=$1 dir=$2 version=${3:-NULL} qcol rcol
  if [ "$dir" = "image->text" ]; then qcol=image; rcol=text; else qcol=text; rcol=image; fi
  q -c "SELECT value FROM jdsh.evaluate('$model', $TEST_Q, '$qcol', $TRAIN_Q, '$rcol', 'label',
          direction => '$dir', version => $version) WHERE metric = 'map' AND k IS NULL"
}
above() { python3 -c "import sys; sys.exit(0 if float('$1') >= float('$2') else 1)"; }
hexq() { q -c "SET jdsh.bitcode_output = hex" -c "$1"; }

# ---------------------------------------------------------------------------------------------
# The Citus tests (tests/citus/*.sh, CITUS_TEST=1) share scripts/citus.sh's cluster: a coordinator
# (q, on port $JDSH_CITUS_PORT, 54381) and two workers (wq 1, wq 2: the next two ports), database
# jdsh. citus_fixture starts it (building Citus once) and gives each test a fresh jdsh: the
# extension dropped with everything that uses it and created again on the coordinator, which
# Citus propagates to the workers.
CITUS_WORKERS=2
wq() { local i=$1; shift; "$PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $((JDSH_PGPORT + i)) -d jdsh "$@"; }
worker_addr() { echo "127.0.0.1:$((JDSH_PGPORT + $1))"; }
citus_fixture() {
  local out
  out=$(bash "$ROOT/scripts/citus.sh" start 2>&1) || fail "cannot start the Citus cluster: $out"
  # Every table of earlier tests first (dropping the extension would only drop their columns).
  q -c "DO \$\$ DECLARE r record; BEGIN
          FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
            EXECUTE format('DROP TABLE IF EXISTS public.%I CASCADE', r.tablename);
          END LOOP; END \$\$" \
    -c "DROP EXTENSION IF EXISTS jdsh CASCADE" \
    -c "DROP FUNCTION IF EXISTS h64(text), gen_code(text) CASCADE" >/dev/null ||
    fail "cannot reset the Citus cluster"
  q -c "CREATE EXTENSION jdsh" >/dev/null || fail "cannot create the extension on the coordinator"
  code_helpers
  q -c "ALTER SYSTEM SET citus.shard_count = 8" -c "SELECT pg_reload_conf()" >/dev/null
  say "Citus cluster: coordinator :$JDSH_PGPORT, workers $(worker_addr 1) and $(worker_addr 2); fresh jdsh"
}

# The single-node truth and the distributed table: t_local (id, code), a plain table on the
# coordinator with $1 clustered codes and no index (so a sequential scan), and t, hash-distributed
# on id over 8 shards, loaded from it by COPY, with the mih index on every shard; the queries qs of
# make_queries (a local table on the coordinator).
citus_tables() {
  q -c "CREATE TABLE t_local (id bigint, code bitcode(64))" \
    -c "INSERT INTO t_local SELECT i, gen_code(i::text) FROM generate_series(1, $1) i" \
    -c "CREATE TABLE t (id bigint PRIMARY KEY, code bitcode(64))" \
    -c "SELECT create_distributed_table('t', 'id')" >/dev/null || fail "cannot create the tables"
  q -c "COPY t_local TO STDOUT" | q -c "COPY t FROM STDIN" || fail "COPY into the distributed table failed"
  q -c "CREATE INDEX t_code_mih ON t USING mih (code)" >/dev/null || fail "CREATE INDEX USING mih on the distributed table failed"
  make_queries citus
}

# Runs the k-NN (k = 1, 10, 100) and radius (0..4) queries of qs against the distributed table t
# through psql as ordinary statements (mode plain) or as prepared statements with the query code
# as a parameter, executed 90 and 150 times so that the plan cache goes generic (mode prepared);
# compares every answer with the sequential scan of t_local on the coordinator. Prints "checks
# mismatches"; mismatches go to stderr. $1: plain or prepared; further psql options follow.
citus_compare() {
  local mode=$1; shift
  local gen out
  if [ "$mode" = plain ]; then
    gen="SELECT format('SELECT ''knn'', %s, %s, id, code <~> %L::bitcode FROM t ORDER BY code <~> %L::bitcode LIMIT %s', qid, k, code, code, k)
           FROM qs, unnest('{1,10,100}'::int[]) k ORDER BY qid, k \\gexec
         SELECT format('SELECT ''rad'', %s, %s, id, code <~> %L::bitcode FROM t WHERE code <@ jdsh.ball(%L::bitcode, %s)', qid, r, code, code, r)
           FROM qs, generate_series(0, 4) r ORDER BY qid, r \\gexec"
  else
    gen="PREPARE knn(int, int, bitcode, int) AS SELECT 'knn', \$1, \$2, id, code <~> \$3 FROM t ORDER BY code <~> \$3 LIMIT \$4;
         PREPARE rad(int, int, bitcode) AS SELECT 'rad', \$1, \$2, id, code <~> \$3 FROM t WHERE code <@ jdsh.ball(\$3, \$2);
         SELECT format('EXECUTE knn(%s, %s, %L, %s)', qid, k, code, k) FROM qs, unnest('{1,10,100}'::int[]) k ORDER BY qid, k \\gexec
         SELECT format('EXECUTE rad(%s, %s, %L)', qid, r, code) FROM qs, generate_series(0, 4) r ORDER BY qid, r \\gexec"
  fi
  out=$(q "$@" -F ' ' <<<"$gen") || return 1
  q -c "DROP TABLE IF EXISTS got" -c "CREATE TABLE got (kind text, qid int, arg int, id bigint, d int)" >/dev/null
  q -c "COPY got FROM STDIN (DELIMITER ' ')" <<<"$out" || return 1
  out=$(q -F ' ' -f - <<'SQL'
WITH truth AS MATERIALIZED (
  SELECT q.qid, s.id, s.d FROM qs q,
    LATERAL (SELECT id, code <~> q.code AS d FROM t_local ORDER BY code <~> q.code LIMIT 100) s),
truth_rad AS MATERIALIZED (
  SELECT q.qid, l.id, l.code <~> q.code AS d FROM qs q JOIN t_local l ON l.code <~> q.code <= 4),
kth AS MATERIALIZED (
  SELECT q.qid, k, (SELECT d FROM truth t WHERE t.qid = q.qid ORDER BY d OFFSET k - 1 LIMIT 1) AS dk
    FROM qs q, unnest('{1,10,100}'::int[]) k),
cmp AS MATERIALIZED (
  SELECT 'knn-distances' AS kind, x.qid, x.k AS arg,
         (SELECT array_agg(d ORDER BY d) FROM got g WHERE g.kind = 'knn' AND g.qid = x.qid AND g.arg = x.k)::text AS got,
         (SELECT array_agg(d ORDER BY d) FROM (SELECT d FROM truth t WHERE t.qid = x.qid ORDER BY d LIMIT x.k) s)::text AS seq
    FROM kth x
  UNION ALL
  SELECT 'knn-ids-closer-than-kth', x.qid, x.k,
         (SELECT array_agg(id ORDER BY id) FROM got g WHERE g.kind = 'knn' AND g.qid = x.qid AND g.arg = x.k AND g.d < x.dk)::text,
         (SELECT array_agg(id ORDER BY id) FROM truth t WHERE t.qid = x.qid AND t.d < x.dk)::text
    FROM kth x
  UNION ALL
  SELECT 'radius', q.qid, r,
         (SELECT array_agg(id ORDER BY id) FROM got g WHERE g.kind = 'rad' AND g.qid = q.qid AND g.arg = r)::text,
         (SELECT array_agg(id ORDER BY id) FROM truth_rad t WHERE t.qid = q.qid AND t.d <= r)::text
    FROM qs q, generate_series(0, 4) r),
bad AS MATERIALIZED (SELECT * FROM cmp WHERE got IS DISTINCT FROM seq)
SELECT kind, qid::text, arg::text, 'got=' || left(coalesce(got, '{}'), 200), 'seq=' || left(coalesce(seq, '{}'), 200)
  FROM (SELECT * FROM bad ORDER BY kind, qid, arg LIMIT 20) b
UNION ALL
SELECT '#', (SELECT count(*) FROM cmp)::text, (SELECT count(*) FROM bad)::text,
       (SELECT count(*) FROM truth_rad)::text, '';
SQL
  ) || return 1
  grep -v '^# ' <<<"$out" >&2 || true
  grep '^# ' <<<"$out" | cut -d' ' -f2-
}

# Runs citus_compare and fails on any mismatch. $1: a label; $2: plain or prepared.
assert_citus_exact() {
  local label=$1 mode=$2 res checks bad hits
  res=$(citus_compare "$mode") || fail "$label: the queries failed"
  read -r checks bad hits <<<"$res"
  [ "${checks:-0}" = 330 ] || fail "$label: $checks comparisons instead of 330 (30 queries x 11)"
  [ "$bad" = 0 ] || { soft_fail "$label: $bad of $checks distributed answers differ from a single-node sequential scan (listed above)"; return; }
  say "$label: distributed = single-node seq scan for $checks checks (30 queries; k-NN k=1,10,100; $hits rows within radius 4)"
}
