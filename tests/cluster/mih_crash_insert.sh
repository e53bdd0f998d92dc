#!/usr/bin/env bash
# Crash recovery of the mih index during inserts (Generic WAL): 50k clustered codes, CREATE INDEX
# USING mih, then a bulk insert of up to 300k more rows in batches of 10k (one transaction each,
# with deletes, and a VACUUM after the second), killed by kill -9 in the middle of a batch; after
# crash recovery the index passes jdsh.mih_check, holds the committed rows only, answers k-NN and
# radius queries exactly as a sequential scan does, and takes new rows.
#
#   tests/cluster/mih_crash_insert.sh      # JDSH_CRASH_INSERT_PORT (54351)
TEST_NAME=mih_crash_insert
JDSH_PGPORT=${JDSH_CRASH_INSERT_PORT:-54351}
JDSH_CLUSTER="$(cd "$(dirname "$0")/../.." && pwd)/.cluster-crash-insert"
source "$(dirname "$0")/lib.sh"

fresh_cluster
say "fresh cluster on port $PGPORT"
mih_table 50000
q -c "CREATE TABLE batches (b int PRIMARY KEY, rows_after bigint)" >/dev/null

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

finish
