#!/usr/bin/env bash
# Crash safety of the mih index (Generic WAL), on a cluster of its own:
#   1. 50k clustered codes, CREATE INDEX USING mih, then a bulk insert of up to 300k more rows
#      in batches of 10k (one transaction each, with deletes and a VACUUM in between), killed
#      by kill -9 in the middle of a batch; crash recovery; then the index must pass
#      jdsh.mih_check, hold the committed rows only, and answer k-NN and radius queries
#      exactly as a sequential scan does.
#   2. A big DELETE, then VACUUM killed by kill -9 while it vacuums the index (or right after it,
#      when it is too quick to catch); recovery; the same checks; a full VACUUM; no dead entry
#      left; new rows (reusing the freed heap slots and index pages); the same checks.
#   3. A physical standby (pg_basebackup, streaming): inserts, deletes, VACUUM on the primary;
#      on the standby, once it has replayed them, index = sequential scan; then the standby is
#      promoted and jdsh.mih_check verifies the replayed index (it needs a lock that a hot
#      standby cannot take).
#
#   tests/cluster/mih_crash.sh      # JDSH_CRASH_PORT (54351) and JDSH_CRASH_STANDBY_PORT (54353)
TEST_NAME=mih_crash
JDSH_PGPORT=${JDSH_CRASH_PORT:-54351}
STANDBY_PORT=${JDSH_CRASH_STANDBY_PORT:-54353}
JDSH_CLUSTER="$(cd "$(dirname "$0")/../.." && pwd)/.cluster-crash"
source "$(dirname "$0")/lib.sh"
DATA="$JDSH_CLUSTER/data"
LOG="$JDSH_CLUSTER/postgres.log"

# kill -9 of the postmaster and of every process it started. Killing the postmaster alone is not
# a crash: its backends run on until they notice its death (a bulk INSERT would even finish and
# commit), and while they live a restart refuses to start ("pre-existing shared memory block is
# still in use"). The postmaster is stopped first so that it forks nothing new meanwhile.
crash() {
  local pm kids p
  pm=$(head -1 "$DATA/postmaster.pid")
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

# Restarts the crashed cluster and fails unless it went through crash recovery (WAL replay).
recover() {
  local before
  before=$(wc -l <"$LOG")
  local out
  out=$(bash "$ROOT/scripts/cluster.sh" start 2>&1) || fail "the cluster does not restart after the crash: $out"
  tail -n +"$((before + 1))" "$LOG" | grep -q "database system was interrupted\|was not properly shut down" ||
    fail "the restart did not go through crash recovery"
  tail -n +"$((before + 1))" "$LOG" | grep -q "redo done\|redo starts" ||
    fail "the restart replayed no WAL"
  say "restarted: crash recovery replayed WAL ($(tail -n +"$((before + 1))" "$LOG" | grep -o 'redo done at [^ ]*' | head -1))"
}

# Fails unless index t_code_mih has no dead entry (after a complete VACUUM with nobody else).
assert_no_dead_entries() {
  local dead
  dead=$(q -c "SELECT dead_entries FROM jdsh.mih_check('t_code_mih')" 2>&1) || return 0  # reported by assert_mih_check
  [ "$dead" = 0 ] || soft_fail "$dead dead index entries are left after a complete VACUUM"
}

port_free "$STANDBY_PORT"
fresh_cluster
say "fresh cluster on port $PGPORT"

# ------------------------------------------------------------------------------------------------
# 1. kill -9 during a bulk insert
q -c "CREATE TABLE t (id int, code bitcode(64))" \
  -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(1, 50000) i" \
  -c "CREATE INDEX t_code_mih ON t USING mih (code)" \
  -c "CREATE TABLE batches (b int PRIMARY KEY, rows_after bigint)" >/dev/null
create_oracles
check_plans t_code_mih
assert_mih_check t_code_mih

# 30 batches of 10k rows (300k); each also deletes some older rows and records, in the same
# transaction, the row count it leaves; a VACUUM after the second batch puts index bulk-delete
# records into the WAL that recovery replays.
loader_sql="$JDSH_CLUSTER/loader.sql"
for b in $(seq 1 30); do
  lo=$((50000 + (b - 1) * 10000 + 1)); hi=$((50000 + b * 10000))
  cat <<SQL
BEGIN;
INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series($lo, $hi) i;
DELETE FROM t WHERE id % 61 = $b;
INSERT INTO batches SELECT $b, count(id) FROM t;
COMMIT;
SQL
  [ "$b" = 2 ] && echo "VACUUM t;"
done >"$loader_sql"
PGAPPNAME=mih_crash_loader q -f "$loader_sql" >"$JDSH_CLUSTER/loader.out" 2>&1 &
loader=$!
BG_PIDS+=("$loader")
for _ in $(seq 1 1200); do
  nb=$(q -c "SELECT count(*) FROM batches")
  [ "$nb" -ge 3 ] && break
  alive "$loader" || fail "the loader stopped early: $(cat "$JDSH_CLUSTER/loader.out")"
  sleep 0.1
done
[ "$nb" -ge 3 ] || fail "the loader committed only $nb batches in 120 s"
sleep 0.8   # into the next batch's INSERT
activity=$(q -c "SELECT state || ': ' || left(query, 40) FROM pg_stat_activity WHERE application_name = 'mih_crash_loader'")
crash
say "the loader had committed $nb batches; it was $activity"
wait "$loader" 2>/dev/null || true
recover

nb_after=$(q -c "SELECT count(*) FROM batches")
expected=$(q -c "SELECT rows_after FROM batches ORDER BY b DESC LIMIT 1")
n=$(q -c "SELECT count(id) FROM t")
[ "$nb_after" -ge "$nb" ] || fail "committed batches lost: $nb before the crash, $nb_after after"
[ "$nb_after" -lt 30 ] || fail "the loader finished before the crash (no crash in the middle)"
[ "$n" = "$expected" ] || fail "the table holds $n rows after recovery, the last committed batch left $expected"
say "after recovery: $nb_after committed batches, $n rows (as committed)"
assert_mih_check t_code_mih
make_queries crash1
assert_index_equals_seq "after the crash during inserts"

# The recovered index takes new rows.
q -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(1000001, 1005000) i" >/dev/null
assert_mih_check t_code_mih
assert_index_equals_seq "after 5k inserts into the recovered index"

# ------------------------------------------------------------------------------------------------
# 2. kill -9 during VACUUM after a big DELETE
q -c "DELETE FROM t WHERE id % 3 <> 0" >/dev/null
say "deleted $(( n + 5000 - $(q -c "SELECT count(id) FROM t") )) rows; VACUUM"
PGAPPNAME=mih_crash_vacuum q -c "VACUUM t" >"$JDSH_CLUSTER/vacuum.out" 2>&1 &
vac=$!
BG_PIDS+=("$vac")
phase=
for _ in $(seq 1 3000); do
  phase=$(q -c "SELECT phase FROM pg_stat_progress_vacuum p JOIN pg_stat_activity a USING (pid)
                 WHERE a.application_name = 'mih_crash_vacuum'")
  [ "$phase" = "vacuuming indexes" ] && break
  alive "$vac" || break
  sleep 0.02
done
if [ "$phase" = "vacuuming indexes" ]; then
  sleep 0.05
  crash
  say "crashed while VACUUM was vacuuming the index"
else
  wait "$vac" || fail "VACUUM failed: $(cat "$JDSH_CLUSTER/vacuum.out")"
  crash
  say "VACUUM was too quick to catch in the index phase: crashed right after it"
fi
wait "$vac" 2>/dev/null || true
recover
assert_mih_check t_code_mih
make_queries crash2
assert_index_equals_seq "after the crash during VACUUM"
q -c "VACUUM t" >/dev/null
assert_mih_check t_code_mih
assert_no_dead_entries
check_plain_count
q -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(2000001, 2030000) i" >/dev/null
assert_mih_check t_code_mih
make_queries crash3
assert_index_equals_seq "after VACUUM and 30k inserts into the freed space"

# ------------------------------------------------------------------------------------------------
# 3. A physical standby replays the index's Generic WAL
standby="$JDSH_CLUSTER/standby"
as_pg "$PG_BIN/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres -D "$standby" -R -X stream -c fast ||
  fail "pg_basebackup failed"
EXTRA_DATA_DIRS+=("$standby")
as_pg "$PG_BIN/pg_ctl" -D "$standby" -l "$JDSH_CLUSTER/standby.log" -o "-p $STANDBY_PORT" -w -t 60 start >/dev/null ||
  fail "the standby does not start: $(tail -5 "$JDSH_CLUSTER/standby.log")"
[ "$(q -p "$STANDBY_PORT" -c "SELECT pg_is_in_recovery()")" = t ] || fail "the standby is not in recovery"
say "standby streaming on port $STANDBY_PORT"
q -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(3000001, 3020000) i" \
  -c "DELETE FROM t WHERE id % 5 = 1" -c "VACUUM t" \
  -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(3020001, 3030000) i" \
  -c "DELETE FROM t WHERE id % 7 = 2" >/dev/null
make_queries standby
lsn=$(q -c "SELECT pg_current_wal_insert_lsn()")
for _ in $(seq 1 600); do
  [ "$(q -p "$STANDBY_PORT" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && break
  sleep 0.1
done
[ "$(q -p "$STANDBY_PORT" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] ||
  fail "the standby did not replay up to $lsn in 60 s"
ns=$(q -p "$STANDBY_PORT" -c "SELECT count(id) FROM t")
[ "$ns" = "$(q -c "SELECT count(id) FROM t")" ] || fail "the standby holds $ns rows, the primary another count"
say "standby replayed up to $lsn: $ns rows"
check_plans t_code_mih -p "$STANDBY_PORT"
assert_index_equals_seq "on the standby" -p "$STANDBY_PORT"
as_pg "$PG_BIN/pg_ctl" -D "$standby" -w -t 60 promote >/dev/null || fail "the standby cannot be promoted"
assert_mih_check t_code_mih -p "$STANDBY_PORT"
assert_index_equals_seq "on the promoted standby" -p "$STANDBY_PORT"

finish
