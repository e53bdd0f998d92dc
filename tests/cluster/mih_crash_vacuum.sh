#!/usr/bin/env bash
# Crash recovery of the mih index during VACUUM (Generic WAL): after a big DELETE (two thirds of
# ~90k rows), VACUUM is killed by kill -9 while it vacuums the index (or right after it, when it is
# too quick to catch); after crash recovery the index passes jdsh.mih_check and equals a
# sequential scan; a full VACUUM leaves no dead entry, a plain count(*) works, and 30k new rows
# (reusing the freed heap slots and index pages) keep it correct.
#
#   tests/cluster/mih_crash_vacuum.sh      # JDSH_CRASH_VACUUM_PORT (54354)
TEST_NAME=mih_crash_vacuum
JDSH_PGPORT=${JDSH_CRASH_VACUUM_PORT:-54354}
JDSH_CLUSTER="$(cd "$(dirname "$0")/../.." && pwd)/.cluster-crash-vacuum"
source "$(dirname "$0")/lib.sh"

fresh_cluster
say "fresh cluster on port $PGPORT"
# As mih_crash_insert.sh leaves it before its crash: 50k rows indexed by CREATE INDEX, then 4
# batches of 10k inserted through the index (each deleting some older rows), a VACUUM after the
# second, and 5k more rows.
mih_table 50000
for b in 1 2 3 4; do
  lo=$((50000 + (b - 1) * 10000 + 1)); hi=$((50000 + b * 10000))
  q -c "BEGIN" -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series($lo, $hi) i" \
    -c "DELETE FROM t WHERE id % 61 = $b" -c "COMMIT" >/dev/null
  if [ "$b" = 2 ]; then q -c "VACUUM t" >/dev/null; fi
done
q -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(1000001, 1005000) i" >/dev/null
before=$(q -c "SELECT count(id) FROM t")
assert_mih_check t_code_mih

q -c "DELETE FROM t WHERE id % 3 <> 0" >/dev/null
say "deleted $(( before - $(q -c "SELECT count(id) FROM t") )) of $before rows; VACUUM"
crash_during_vacuum "vacuuming indexes" 0.05
recover
assert_mih_check t_code_mih
make_queries crash2
assert_index_equals_seq "after the crash during VACUUM"
q -c "VACUUM (INDEX_CLEANUP ON) t" >/dev/null  # (never the index-pass bypass: see mih_concurrency)
assert_mih_check t_code_mih
assert_no_dead_entries
check_plain_count
q -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(2000001, 2030000) i" >/dev/null
assert_mih_check t_code_mih
make_queries crash3
assert_index_equals_seq "after VACUUM and 30k inserts into the freed space"

finish
