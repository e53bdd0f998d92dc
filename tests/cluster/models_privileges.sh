#!/usr/bin/env bash
# Privileges and row-level security of the registry: anyone encodes and lists models; storing a
# model needs INSERT on jdsh.models (checked before reading any data), dropping and renaming
# need DELETE and UPDATE; row-level security keeps each role's models its own (no version,
# rename, drop or direct row write by another role); training reads its source as the caller
# (SELECT on it is needed).
#
#   tests/cluster/models_privileges.sh      # JDSH_MODELS_PORT (54361); needs data/wikipedia ($JDSH_DATA)
TEST_NAME=models_privileges
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

# The code of row 5's text with wiki v1, as the superuser sees it.
c1=$(q -c "SELECT jdsh.encode_text('wiki', $X, 1)") || fail "cannot encode with wiki v1"
say "privileges"
q -c "CREATE ROLE models_r1 LOGIN" -c "CREATE ROLE models_r2 LOGIN" -c "GRANT SELECT ON wikipedia TO models_r1" >/dev/null
R1=(-U models_r1); R2=(-U models_r2)
SUB="'SELECT * FROM wikipedia WHERE id % 4 = 0'"
[ "$(q "${R1[@]}" -c "SELECT jdsh.encode_text('wiki', $X, 1)")" = "$c1" ] ||
  soft_fail "a role without grants cannot encode: $(qv "${R1[@]}" -c "SELECT jdsh.encode_text('wiki', $X, 1)")"
[ "$(q "${R2[@]}" -c "SELECT count(*) > 0 FROM jdsh.list_models()")" = t ] || soft_fail "a role without grants cannot list models"
out=$(qv "${R1[@]}" -c "SET client_min_messages = notice" -c "SELECT * FROM jdsh.train('r1_model', $SUB, 'image', 'text', epochs => 1)") || true
grep -q 'ERROR:  42501' <<<"$out" || soft_fail "jdsh.train without INSERT on jdsh.models: expected 42501, got $(grep -m1 ERROR <<<"$out")"
grep -q 'jdsh.train: read' <<<"$out" && soft_fail "jdsh.train without INSERT on jdsh.models read the data before failing"
expect_error 42501 "import_model without INSERT on jdsh.models" "SELECT jdsh.import_model('r1_model', jdsh.export_model('wiki', 1));"
expect_error 42501 "drop_model without DELETE on jdsh.models" "SELECT jdsh.drop_model('wiki');"
expect_error 42501 "rename_model without UPDATE on jdsh.models" "SELECT jdsh.rename_model('wiki', 'mine');"
run_errors "${R1[@]}"
q -c "GRANT INSERT, UPDATE, DELETE ON jdsh.models TO models_r1, models_r2" >/dev/null
v=$(q "${R1[@]}" -c "SELECT version FROM jdsh.train('r1_model', $SUB, 'image', 'text', epochs => 1)") ||
  fail "models_r1 cannot train after the GRANT"
v=$(q "${R1[@]}" -c "SELECT version FROM jdsh.train('r1_model', $SUB, 'image', 'text', epochs => 1, options => '{\"seed\": 2}')") &&
  [ "$v" = 2 ] || soft_fail "models_r1 cannot add version 2 to its own model ($v)"
[ "$(q -c "SELECT string_agg(DISTINCT owner, ',') FROM jdsh.models WHERE name = 'r1_model'")" = models_r1 ] ||
  soft_fail "r1_model is not owned by models_r1"
expect_error 42501 "another role adds a version (train)" "$(train_sql "$SUB, 'image', 'text', epochs => 1" r1_model)"
expect_error 42501 "another role adds a version (import)" "SELECT jdsh.import_model('r1_model', jdsh.export_model('wiki', 1));"
expect_error 42501 "another role renames" "SELECT jdsh.rename_model('r1_model', 'r2_model');"
expect_error 42501 "another role drops" "SELECT jdsh.drop_model('r1_model');"
expect_error 42501 "another role drops a version" "SELECT jdsh.drop_model('r1_model', 1);"
expect_error 42501 "another role inserts a row owned by the model's owner" \
  "INSERT INTO jdsh.models (name, version, method, bits, owner, params, metrics, model)
   SELECT name, 9, method, bits, owner, params, metrics, model FROM jdsh.models WHERE name = 'r1_model' AND version = 1;"
expect_error 42501 "another role inserts a version as its own" \
  "INSERT INTO jdsh.models (name, version, method, bits, params, metrics, model)
   SELECT name, 9, method, bits, params, metrics, model FROM jdsh.models WHERE name = 'r1_model' AND version = 1;"
expect_error 42501 "training from a table without SELECT" "$(train_sql "'wikipedia', 'image', 'text', epochs => 1" r2_model)"
expect_error 42501 "training from a query on a table without SELECT" "$(train_sql "$SUB, 'image', 'text', epochs => 1" r2_model)"
run_errors "${R2[@]}"
res=$(q "${R2[@]}" -F '|' -c "WITH u AS (UPDATE jdsh.models SET name = 'stolen' WHERE name = 'r1_model' RETURNING 1),
                                 d AS (DELETE FROM jdsh.models WHERE name = 'r1_model' RETURNING 1)
                            SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM d)")
IFS='|' read -r n n2 <<<"$res"
[ "$n|$n2" = "0|0" ] || soft_fail "models_r2 changed $n and deleted $n2 rows of models_r1's model directly"
[ "$(q -c "SELECT count(*) FROM jdsh.models WHERE name = 'r1_model'")" = 2 ] || soft_fail "r1_model does not have its 2 versions any more"
[ "$(q -c "SELECT count(*) FROM jdsh.models WHERE owner = 'models_r2'")" = 0 ] || soft_fail "models_r2 stored a model"
[ "$(q "${R1[@]}" -c "SELECT jdsh.rename_model('r1_model', 'r1_renamed')")" = 2 ] || soft_fail "models_r1 cannot rename its model"
[ "$(q "${R1[@]}" -c "SELECT jdsh.drop_model('r1_renamed')")" = 2 ] || soft_fail "models_r1 cannot drop its model"
say "anyone encodes; storing needs INSERT (checked before reading); models_r2 can neither add to, rename, drop nor write rows of models_r1's model; source SELECT is checked"

assert_no_crash "the test" ""
finish
