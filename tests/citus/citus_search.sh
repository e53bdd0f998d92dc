#!/usr/bin/env bash
# jdsh on a Citus cluster (a coordinator and two workers): CREATE EXTENSION on the coordinator
# reaches the workers; bitcode columns in a hash-distributed table (loaded by COPY) and in a
# reference table; CREATE INDEX USING mih builds the index on every shard; k-NN (`ORDER BY code <~>
# q LIMIT k`, k = 1, 10, 100) and radius (`code <@ jdsh.ball(q, r)`) queries on the distributed
# table, as plain statements and as prepared ones with the query code as a parameter, equal a
# single-node sequential scan exactly; EXPLAIN shows a mih index scan on every shard.
#
#   tests/citus/citus_search.sh     # needs Citus: scripts/citus.sh builds it from its tarball
TEST_NAME=citus_search
CITUS_TEST=1
source "$(dirname "$0")/../cluster/lib.sh"
citus_fixture

v=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'jdsh'")
for w in 1 2; do
  got=$(wq "$w" -c "SELECT extversion FROM pg_extension WHERE extname = 'jdsh'")
  [ "$got" = "$v" ] || fail "CREATE EXTENSION jdsh did not reach worker $(worker_addr "$w"): '$got'"
done
say "CREATE EXTENSION jdsh on the coordinator reached both workers (version $v)"

N=200000
citus_tables "$N"
shards=$(q -c "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 't'::regclass")
n=$(q -c "SELECT count(*) FROM t")
[ "$n" = "$N" ] || fail "COPY loaded $n rows into the distributed table, not $N"
idx=0
for w in 1 2; do
  # (Citus hides the shards from pg_class on a worker unless told not to.)
  c=$(wq "$w" -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                   WHERE a.amname = 'mih' AND c.relname ~ '^t_code_mih_[0-9]+$'")
  [ "$c" -gt 0 ] || fail "worker $(worker_addr "$w") has no mih index on its shards of t"
  idx=$((idx + c))
done
[ "$idx" = "$shards" ] || fail "$idx mih indexes on the shards, for $shards shards"
say "distributed table t: $N rows by COPY over $shards shards; CREATE INDEX USING mih built $idx shard indexes"

# A reference table with a bitcode column: a copy on every node, and a join with the distributed
# table on it (pushed down: the reference table is local to every shard).
q -c "CREATE TABLE anchors (name text PRIMARY KEY, code bitcode(64))" \
  -c "SELECT create_reference_table('anchors')" \
  -c "INSERT INTO anchors SELECT 'a' || id, code FROM t_local WHERE id IN (11, 222, 3333) ORDER BY id" >/dev/null ||
  fail "cannot create the reference table"
for w in 1 2; do
  got=$(wq "$w" -c "SELECT string_agg(code::text, ',' ORDER BY name) FROM anchors")
  want=$(q -c "SELECT string_agg(code::text, ',' ORDER BY name) FROM anchors")
  [ "$got" = "$want" ] || fail "the reference table on worker $(worker_addr "$w") differs: $got"
done
got=$(q -c "SELECT count(*) FROM t JOIN anchors a ON t.code <~> a.code <= 3")
want=$(q -c "SELECT count(*) FROM t_local t JOIN anchors a ON t.code <~> a.code <= 3")
[ "$got" = "$want" ] || soft_fail "join of the distributed table with the reference table: $got rows, single node $want"
say "reference table anchors: the same codes on every node; its join with t within distance 3 = single node ($got rows)"

# Plans: every shard's task is a mih index scan (k-NN ordered by it; radius by an index or bitmap scan).
c="'0101010101010101010101010101010101010101010101010101010101010101'::bitcode"
p=$(q -c "SET citus.explain_all_tasks = on" -c "EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY code <~> $c LIMIT 10")
grep -q 'Custom Scan (Citus Adaptive)' <<<"$p" || fail "k-NN is not a Citus distributed plan: $p"
m=$(grep -cE 'Index Scan using t_code_mih_[0-9]+ on t_[0-9]+' <<<"$p" || true)
[ "$m" = "$shards" ] || fail "k-NN: $m of $shards shard tasks are mih index scans: $p"
grep -qE "Order By: \((t\.)?code <~> " <<<"$p" || fail "k-NN: the shards' index scans are not ordered by the distance: $p"
p=$(q -c "SET citus.explain_all_tasks = on" -c "EXPLAIN (COSTS OFF) SELECT id FROM t WHERE code <@ jdsh.ball($c, 3)")
m=$(grep -cE '(Index Scan using|Bitmap Index Scan on) t_code_mih_[0-9]+' <<<"$p" || true)
[ "$m" = "$shards" ] || fail "radius: $m of $shards shard tasks scan the mih index: $p"
say "EXPLAIN: k-NN and radius are pushed down as a mih index scan on each of the $shards shards, merged by the coordinator"

assert_citus_exact "plain statements" plain
assert_citus_exact "prepared statements (query code as \$1; 90 + 150 executions)" prepared
# Citus keeps planning a prepared statement on a distributed table afresh for each execution
# (custom plans: the parameter is a constant in the shard queries); a forced generic plan is
# refused ("could not create distributed plan"), and so are parameters of SQL-language functions.
# The README states the limit and its work-around (leave plan_cache_mode at auto; PL/pgSQL).
out=$(q -F ' ' -c "PREPARE k1(bitcode) AS SELECT id FROM t ORDER BY code <~> \$1 LIMIT 5" \
        -c "SELECT count(*) FROM (SELECT 1 FROM generate_series(1, 7)) s" \
        -c "EXECUTE k1($c)" -c "EXECUTE k1($c)" -c "EXECUTE k1($c)" -c "EXECUTE k1($c)" \
        -c "EXECUTE k1($c)" -c "EXECUTE k1($c)" -c "EXECUTE k1($c)" \
        -c "SELECT 'plans', generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'k1'" | grep '^plans')
read -r _ generic custom <<<"$out"
[ "$generic" = 0 ] && [ "$custom" = 7 ] || soft_fail "prepared k-NN: $generic generic and $custom custom plans for 7 executions (expected 0 and 7)"
forced=$(q -c "PREPARE k2(bitcode) AS SELECT id FROM t ORDER BY code <~> \$1 LIMIT 5" \
           -c "SET plan_cache_mode = force_generic_plan" -c "EXECUTE k2($c)" 2>&1 | grep -m1 ERROR || true)
say "prepared k-NN with the default plan_cache_mode: $custom custom plans, $generic generic; with force_generic_plan: ${forced:-no error}"

finish
