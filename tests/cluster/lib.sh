# Shared helpers of the cluster tests (sourced, not run). The caller sets TEST_NAME,
# JDSH_PGPORT and JDSH_CLUSTER before sourcing, so that each test has its own cluster, port and
# socket directory, apart from the project's .cluster on 54329.
set -euo pipefail
: "${TEST_NAME:?}" "${JDSH_PGPORT:?}" "${JDSH_CLUSTER:?}"

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
export PGDATABASE=jdsh_test
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/env.sh"
cd "$ROOT"
export PGOPTIONS="-c client_min_messages=warning"

T0=$(date +%s)
BG_PIDS=()          # background processes this test started (psql, pgbench, loops)
EXTRA_DATA_DIRS=()  # further data directories this test runs (a standby)

if [ "$(id -u)" = 0 ]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

say() { printf '[%s %3ss] %s\n' "$TEST_NAME" "$(( $(date +%s) - T0 ))" "$*"; }
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
  bash "$ROOT/scripts/cluster.sh" stop >/dev/null 2>&1
  if [ "$rc" = 0 ]; then
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

# A fresh cluster (initdb) and database with the extension and the helper functions below.
fresh_cluster() {
  bash "$ROOT/scripts/cluster.sh" destroy >/dev/null 2>&1 || true
  port_free "$PGPORT"
  bash "$ROOT/scripts/cluster.sh" start >/dev/null || fail "cannot start the cluster on port $PGPORT"
  q -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
  q -f - <<'SQL' >/dev/null || fail "cannot set up the test database"
CREATE EXTENSION jdsh;
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
