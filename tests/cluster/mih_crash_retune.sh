#!/usr/bin/env bash
# Crash recovery of the mih index during a retune (core/src/mih/retune.rs): an index built on 20k
# rows is given 100k more, so that VACUUM's cleanup chooses and writes its tables again; kill -9
# hits while VACUUM cleans up the index (or right after, when it is too quick to catch). After
# crash recovery the index passes jdsh.mih_check and equals a sequential scan, whichever tables
# the meta page names; the next VACUUM frees what the cut-short retune reserved (or the tables
# a finished one retired) and retunes if it had not; then the index is retuned, checks clean,
# equals a sequential scan, and 20k more rows go in through it. First, a VACUUM within 1MB of
# maintenance_work_mem leaves the tables and says so.
#
#   tests/cluster/mih_crash_retune.sh      # JDSH_CRASH_RETUNE_PORT (54356)
TEST_NAME=mih_crash_retune
JDSH_PGPORT=${JDSH_CRASH_RETUNE_PORT:-54356}
JDSH_CLUSTER="$(cd "$(dirname "$0")/../.." && pwd)/.cluster-crash-retune"
source "$(dirname "$0")/lib.sh"

fresh_cluster
say "fresh cluster on port $PGPORT"
mih_table 20000
q -c "ALTER TABLE t SET (autovacuum_enabled = off)" \
  -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(20001, 120000) i" >/dev/null
say "120k rows in an index built on 20k"

# Within too little memory a VACUUM leaves the tables and says what would let it retune.
out=$(q -c "SET client_min_messages = notice" -c "SET maintenance_work_mem = '1MB'" -c "VACUUM t" 2>&1) \
  || fail "VACUUM in 1MB failed: $out"
grep -q 'choosing them again needs about [0-9]* MB, more than maintenance_work_mem (1 MB)' <<<"$out" \
  || fail "a VACUUM in 1MB of maintenance_work_mem did not say why it left the tables: $out"
grep -q 'HINT:  Raise maintenance_work_mem' <<<"$out" || fail "no hint after the skipped retune: $out"
info=$(q -c "SELECT built_rows FROM jdsh.mih_info('t_code_mih')")
[ "$info" = 20000 ] || fail "a VACUUM in 1MB retuned anyway: built_rows $info"
say "VACUUM in 1MB: $(grep -o 'needs about [0-9]* MB' <<<"$out"), tables left; VACUUM again"

# The retune runs in the cleanup phase.
crash_during_vacuum "cleaning up indexes" 0.1
recover
assert_mih_check t_code_mih
make_queries crash1
assert_index_equals_seq "after the crash during the retune"

# The next VACUUM frees a cut-short retune's blocks and retunes, or frees the retired tables of
# a finished one (no scan of that time survived the crash).
out=$(q -c "VACUUM (VERBOSE) t" 2>&1) || fail "VACUUM after the crash failed: $out"
if grep -q "retune cut short" <<<"$out"; then
  say "the crash cut the retune short: $(grep -o 'freed [0-9]* blocks of a retune cut short' <<<"$out")"
fi
info=$(q -F ' | ' -c "SELECT built_rows, substrings, chosen_by FROM jdsh.mih_info('t_code_mih')")
case "$info" in
  "120000 | "*"a retune at VACUUM"*) say "retuned: $info" ;;
  *) soft_fail "the index is not retuned for its 120k rows after two VACUUMs: $info" ;;
esac
# Retired tables are freed once every snapshot of the switch's time is gone, which a transaction
# id tells (nbtree's rule for deleted pages): one is assigned first.
q -c "SELECT txid_current()" -c "VACUUM t" >/dev/null
assert_mih_check t_code_mih
free=$(q -c "SELECT free_pages FROM jdsh.mih_check('t_code_mih')")
[ "$free" -gt 0 ] || soft_fail "no free page after the VACUUMs that follow a retune (the old tables are not freed)"
make_queries crash2
assert_index_equals_seq "after the VACUUMs that follow the crash"
q -c "INSERT INTO t SELECT i, gen_code(i::text) FROM generate_series(200001, 220000) i" >/dev/null
assert_mih_check t_code_mih
make_queries crash3
assert_index_equals_seq "after 20k more rows, into the freed pages"

finish
