#!/usr/bin/env bash
# A physical standby replays the mih index's Generic WAL: with a streaming standby
# (pg_basebackup) attached, inserts, deletes and a VACUUM on the primary; on the standby, once it
# has replayed them, the plans use the index and index = sequential scan; then the standby is
# promoted and jdsh.mih_check verifies the replayed index (it needs a lock that a hot standby
# cannot take), which still equals a sequential scan.
#
#   tests/cluster/mih_standby.sh      # JDSH_STANDBY_PRIMARY_PORT (54355), JDSH_STANDBY_PORT (54353)
TEST_NAME=mih_standby
JDSH_PGPORT=${JDSH_STANDBY_PRIMARY_PORT:-54355}
STANDBY_PORT=${JDSH_STANDBY_PORT:-54353}
JDSH_CLUSTER="$(cd "$(dirname "$0")/../.." && pwd)/.cluster-standby"
source "$(dirname "$0")/lib.sh"

port_free "$STANDBY_PORT"
fresh_cluster
say "fresh cluster on port $PGPORT"
# An index with history before the base backup: built on 50k rows, two thirds deleted and
# vacuumed (freed pages), 30k rows inserted through it.
mih_table 50000
q -c "DELETE FROM t WHERE id % 3 <> 0" -c "VACUUM t" \
  -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(2000001, 2030000) i" >/dev/null
assert_mih_check t_code_mih

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
