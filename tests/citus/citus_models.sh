#!/usr/bin/env bash
# Models on a Citus cluster: jdsh.train on the coordinator reads a distributed table; before
# jdsh.sync_models() a worker has no such model (an error naming the node), after it every worker
# encodes bit for bit as the coordinator (INSERT … SELECT jdsh.encode_text(…) runs on the shards;
# jdsh.encode_table works on a distributed table);
# `ORDER BY code <~> jdsh.encode_text('m', …) LIMIT 10` on the distributed table returns what one
# node returns; as a prepared statement with the encoded text as its argument, the text is
# encoded once, on the coordinator (no shard query calls the encoder); a retrained model reaches
# the workers' open sessions at the next sync, a dropped one is gone there; SET LOCAL jdsh.threads
# reaches the workers with citus.propagate_set_commands; privileges and row-level security on
# jdsh.models hold on the workers.
#
#   tests/citus/citus_models.sh     # needs Citus: scripts/citus.sh builds it from its tarball
TEST_NAME=citus_models
CITUS_TEST=1
source "$(dirname "$0")/../cluster/lib.sh"
citus_fixture

# Training data: 2,000 items, 16 image features and a two-word text, in a distributed table.
q -f - >/dev/null <<'SQL' || fail "cannot create the training table"
CREATE TABLE docs (id bigint PRIMARY KEY, img real[], txt text, code bitcode(64));
SELECT create_distributed_table('docs', 'id');
SELECT setseed(0.25);
INSERT INTO docs (id, img, txt)
SELECT i, ARRAY(SELECT (random() + (i % 8 = j % 8)::int)::real FROM generate_series(1, 16) j),
       (ARRAY['red','fruit','green','apple','rocket','rain','cloud','face'])[1 + i % 8] || ' ' ||
       (ARRAY['big','small','round','blue'])[1 + i % 4]
  FROM generate_series(1, 2000) i;
SQL
v=$(q -F ' ' -c "SELECT version FROM jdsh.train('m', 'docs', 'img', 'txt', epochs => 3, options => '{\"seed\": 1}')") ||
  fail "jdsh.train on the coordinator from a distributed table failed"
[ "$v" = 1 ] || fail "jdsh.train gave version '$v'"
say "jdsh.train on the coordinator read the distributed table docs: model m v1"

# Before the sync, the shard queries find no model on the workers, and the hint says what to do.
out=$(qv -c "SELECT count(*) FROM docs WHERE code IS DISTINCT FROM jdsh.encode_text('m', txt)" || true)
grep -q 'ERROR:  42704: model "m" does not exist' <<<"$out" && grep -q 'while executing command on 127.0.0.1:' <<<"$out" &&
  grep -q 'HINT:  This node is a Citus worker.*jdsh.sync_models()' <<<"$out" ||
  fail "before jdsh.sync_models(), a shard query with model m gives: $out"
say "before the sync: $(grep -m1 -o 'model "m" does not exist' <<<"$out"), on $(grep -m1 -o 'command on 127.0.0.1:[0-9]*' <<<"$out" | cut -d' ' -f3), hint: $(grep -m1 -o 'run SELECT .* coordinator' <<<"$out")"

sync=$(q -F ' ' -c "SELECT * FROM jdsh.sync_models()") || fail "jdsh.sync_models() failed"
[ "$(wc -l <<<"$sync")" = 2 ] && ! grep -qv ' 1$' <<<"$sync" || fail "jdsh.sync_models() returned: $sync"
say "jdsh.sync_models(): $(tr '\n' ';' <<<"$sync")"

# Codes of a distributed table two ways: jdsh.encode_table on the coordinator (it encodes, Citus
# routes the updates), and INSERT … SELECT into a co-located table, which runs on the shards (the
# workers encode). (Citus refuses UPDATE … SET code = jdsh.encode_text('m', txt): a STABLE function
# with column references in an UPDATE.) They must agree bit for bit.
n=$(q -c "SELECT jdsh.encode_table('m', 'docs', 'txt', 'code')") && [ "$n" = 2000 ] ||
  fail "jdsh.encode_table on the distributed table: $n"
q -c "CREATE TABLE docs_w (id bigint PRIMARY KEY, code bitcode(64))" \
  -c "SELECT create_distributed_table('docs_w', 'id', colocate_with => 'docs')" >/dev/null
out=$(qv -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = notice" \
        -c "INSERT INTO docs_w SELECT id, jdsh.encode_text('m', txt) FROM docs") ||
  fail "INSERT … SELECT jdsh.encode_text into a co-located table failed: $out"
pushed=$(grep -c 'issuing INSERT INTO public.docs_w_[0-9]* .*jdsh.encode_text' <<<"$out" || true)
shards=$(q -c "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'docs'::regclass")
[ "$pushed" = "$shards" ] || soft_fail "INSERT … SELECT jdsh.encode_text ran as $pushed shard commands, not $shards"
bad=$(q -c "SELECT count(*) FROM docs d FULL JOIN docs_w w USING (id) WHERE d.code IS DISTINCT FROM w.code")
[ "$bad" = 0 ] || fail "$bad of 2000 codes encoded on the workers differ from the coordinator's"
say "2000 codes: jdsh.encode_table on the coordinator = INSERT … SELECT jdsh.encode_text on the $pushed shards (the workers), bit for bit"
q -c "CREATE TABLE docs_local AS SELECT id, txt, code FROM docs" >/dev/null

# Search by text on the distributed table = the same on one node (distances, and the ids closer
# than the 10th distance), for five texts.
q -c "CREATE INDEX docs_code_mih ON docs USING mih (code)" >/dev/null
for text in 'red fruit' 'green apple' 'rocket blue' 'rain cloud' 'face small'; do
  sql="SELECT id, code <~> jdsh.encode_text('m', '$text') FROM %s ORDER BY code <~> jdsh.encode_text('m', '$text') LIMIT 10"
  got=$(q -F ' ' -c "$(printf "$sql" docs)") || fail "search by '$text' on the distributed table failed"
  want=$(q -F ' ' -c "$(printf "$sql" docs_local)")
  dk=$(tail -1 <<<"$want" | cut -d' ' -f2)
  [ "$(cut -d' ' -f2 <<<"$got" | sort -n)" = "$(cut -d' ' -f2 <<<"$want" | sort -n)" ] &&
    [ "$(awk -v k="$dk" '$2 < k {print $1}' <<<"$got" | sort)" = "$(awk -v k="$dk" '$2 < k {print $1}' <<<"$want" | sort)" ] ||
    fail "search by '$text': distributed $(tr '\n' ' ' <<<"$got"), one node $(tr '\n' ' ' <<<"$want")"
done
say "ORDER BY code <~> jdsh.encode_text('m', …) LIMIT 10 on the distributed table = one node, for 5 texts"

# Encoded once: the plain form sends the encoder call to every shard; EXECUTE with the encoded
# text as its argument evaluates it on the coordinator and sends the code.
plain=$(qv -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = notice" \
          -c "SELECT id FROM docs ORDER BY code <~> jdsh.encode_text('m', 'red fruit') LIMIT 10" | grep -c 'issuing SELECT.*encode_text' || true)
prep=$(qv -c "PREPARE s(bitcode) AS SELECT id FROM docs ORDER BY code <~> \$1 LIMIT 10" \
         -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = notice" \
         -c "EXECUTE s(jdsh.encode_text('m', 'red fruit'))")
[ "$plain" = "$shards" ] || soft_fail "the plain form called the encoder in $plain shard queries (expected one per shard: $shards)"
calls=$(grep -c 'issuing SELECT.*encode_text' <<<"$prep" || true)
sent=$(grep -c "issuing SELECT.*'[01]\{64\}'::public.bitcode" <<<"$prep" || true)
[ "$calls" = 0 ] && [ "$sent" = "$shards" ] ||
  soft_fail "EXECUTE s(jdsh.encode_text(…)): $calls shard queries call the encoder, $sent carry the code"
say "encoded once: the plain form calls the encoder in all $plain shard queries; EXECUTE s(jdsh.encode_text(…)) in $calls, sending the code to $sent"

# Retrained: the workers' open sessions (Citus keeps its connections) encode with v1 until the
# sync, then with v2.
c1=$(q -c "SELECT jdsh.encode_text('m', 'red fruit')")
w_before=$(q -c "SELECT string_agg(DISTINCT jdsh.encode_text('m', 'red fruit')::text, ',') FROM docs")
v=$(q -F ' ' -c "SELECT version FROM jdsh.train('m', 'docs', 'img', 'txt', epochs => 3, options => '{\"seed\": 2}')")
c2=$(q -c "SELECT jdsh.encode_text('m', 'red fruit')")
[ "$v" = 2 ] && [ "$c2" != "$c1" ] || fail "retraining m gave version $v, code $c2 (v1: $c1)"
w_stale=$(q -c "SELECT string_agg(DISTINCT jdsh.encode_text('m', 'red fruit')::text, ',') FROM docs")
q -c "SELECT * FROM jdsh.sync_models()" >/dev/null || fail "the second jdsh.sync_models() failed"
w_after=$(q -c "SELECT string_agg(DISTINCT jdsh.encode_text('m', 'red fruit')::text, ',') FROM docs")
[ "$w_before" = "$c1" ] && [ "$w_stale" = "$c1" ] && [ "$w_after" = "$c2" ] ||
  fail "retrain: the shards encode $w_before before, $w_stale after the retrain, $w_after after the sync (v1 $c1, v2 $c2)"
for w in 1 2; do
  [ "$(wq "$w" -c "SELECT max(version) FROM jdsh.models WHERE name = 'm'")" = 2 ] || fail "worker $(worker_addr "$w") has not got m v2"
done
say "retrained: the workers' sessions encode with v1 until jdsh.sync_models(), then with v2 on every shard"

# SET LOCAL of jdsh's settings reaches the shard queries when Citus propagates SET LOCAL.
th=$(q -c "SET citus.propagate_set_commands = 'local'" -c "BEGIN" -c "SET LOCAL jdsh.threads = 2" \
       -c "SELECT string_agg(DISTINCT current_setting('jdsh.threads'), ',') FROM docs" -c "COMMIT" | tail -1)
[ "$th" = 2 ] || soft_fail "SET LOCAL jdsh.threads = 2 with citus.propagate_set_commands = 'local': the shards see '$th'"
say "SET LOCAL jdsh.threads = 2 (citus.propagate_set_commands = 'local'): the shard queries run with $th"

# Privileges and row-level security on the workers: the extension's grants and policies are
# there (CREATE EXTENSION ran on each); a role Citus propagated may read but not write.
q -c "DROP ROLE IF EXISTS citus_alice" -c "CREATE ROLE citus_alice LOGIN" >/dev/null
for w in 1 2; do
  # (it reads m's two versions)
  out=$(wq "$w" -v VERBOSITY=verbose -c "SET ROLE citus_alice" -c "SELECT count(*) FROM jdsh.models" \
          -c "INSERT INTO jdsh.models (name, version, method, bits, params, metrics, model) VALUES ('x', 1, 'jdsh', 64, '{}', '{}', '')" 2>&1 || true)
  grep -q '^2$' <<<"$out" && grep -q 'ERROR:  42501' <<<"$out" ||
    fail "worker $(worker_addr "$w"): citus_alice reading and writing jdsh.models gives: $out"
  rls=$(wq "$w" -c "SELECT relrowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) FROM pg_class c WHERE oid = 'jdsh.models'::regclass")
  [ "$rls" = "t|4" ] || fail "worker $(worker_addr "$w"): row-level security on jdsh.models is '$rls' (expected on, 4 policies)"
done
out=$(qv -c "SET ROLE citus_alice" -c "SELECT * FROM jdsh.sync_models()" || true)
grep -q 'ERROR:  42501' <<<"$out" || fail "citus_alice may run jdsh.sync_models(): $out"
say "on the workers citus_alice reads jdsh.models and may not write it (42501); row-level security is on with its 4 policies; jdsh.sync_models() is for superusers"

# Dropped: gone on every worker after the sync; the error names the node.
q -c "SELECT jdsh.drop_model('m')" -c "SELECT * FROM jdsh.sync_models()" >/dev/null
out=$(qv -c "SELECT id FROM docs ORDER BY code <~> jdsh.encode_text('m', 'red fruit') LIMIT 1" || true)
grep -q 'model "m" does not exist' <<<"$out" || fail "after drop_model and the sync, m still encodes: $out"
for w in 1 2; do
  [ "$(wq "$w" -c "SELECT count(*) FROM jdsh.models")" = 0 ] || fail "worker $(worker_addr "$w") still holds models after the drop and the sync"
done
say "dropped: after the sync no worker holds m, and the query says so (42704)"
q -c "DROP ROLE citus_alice" >/dev/null 2>&1 || true

finish
