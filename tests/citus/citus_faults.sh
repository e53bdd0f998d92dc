#!/usr/bin/env bash
# Faults on a Citus cluster: a worker stopped in the middle of a distributed query makes the query
# fail with an error that names the worker, not return a partial answer; while it is down, k-NN
# queries on the distributed table fail the same way; once it is back, the answers equal a
# single-node sequential scan again (k-NN k = 1, 10, 100 and radius 0..4 over 30 queries).
#
#   tests/citus/citus_faults.sh     # needs Citus: scripts/citus.sh builds it from its tarball
TEST_NAME=citus_faults
CITUS_TEST=1
source "$(dirname "$0")/../cluster/lib.sh"
citus_fixture
citus_tables 100000
W2=$(worker_addr 2)
worker2() {  # worker2 start|stop: scripts/cluster.sh on the second worker's node
  JDSH_CLUSTER="$ROOT/.cluster-citus/worker2" JDSH_PGPORT=$((JDSH_PGPORT + 2)) JDSH_PRELOAD=citus,jdsh PGDATABASE=jdsh \
    bash "$ROOT/scripts/cluster.sh" "$1" >/dev/null
}

# A query that keeps every shard busy for seconds: all codes against 600 generated ones.
slow="SELECT count(*) FROM t, generate_series(1, 600) g
       WHERE t.code <~> ((g::int8 * 2654435761) # (g::int8 << 40))::bit(64)::bitcode(64) < 24"
expected=$(q -c "${slow/FROM t,/FROM t_local t,}")
t0=$(date +%s%N)
(qv -c "$slow" >"$JDSH_CLUSTER/slow.out" 2>&1; echo "rc=$?" >>"$JDSH_CLUSTER/slow.out") &
BG_PIDS+=("$!")
sleep 1.5
grep -q 'rc=' "$JDSH_CLUSTER/slow.out" 2>/dev/null && fail "the slow query ended within 1.5 s: $(cat "$JDSH_CLUSTER/slow.out"); make it slower"
worker2 stop
wait "${BG_PIDS[-1]}" || true
out=$(cat "$JDSH_CLUSTER/slow.out")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q 'rc=0' <<<"$out" && fail "the query in flight while worker $W2 stopped succeeded: $(head -1 <<<"$out") (single node: $expected)"
grep -q "ERROR" <<<"$out" && grep -q "$W2" <<<"$out" ||
  fail "the query in flight while worker $W2 stopped failed without naming it: $out"
say "worker $W2 stopped mid-query: the query fails after ${ms} ms: $(grep -m1 'ERROR' <<<"$out" | cut -c1-120)"

out=$(qv -c "SELECT id FROM t ORDER BY code <~> (SELECT code FROM qs WHERE qid = 1) LIMIT 10" || true)
grep -q 'ERROR' <<<"$out" && grep -q "$W2" <<<"$out" || fail "k-NN with worker $W2 down: $out"
say "k-NN with the worker down: $(grep -m1 'ERROR' <<<"$out" | cut -c1-120)"

worker2 start
assert_citus_exact "worker $W2 back" plain
got=$(q -c "$slow")
[ "$got" = "$expected" ] || fail "the slow query with every worker up: $got, single node $expected"
say "the interrupted query, run again: $got rows = single node"

finish
