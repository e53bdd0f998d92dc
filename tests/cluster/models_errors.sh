#!/usr/bin/env bash
# Errors: every bad argument of jdsh.train, the encoders, jdsh.evaluate, encode_table and the
# registry functions raises its SQLSTATE; a corrupt model row is an error (XX001), not a crash;
# jdsh.device = 'cuda' without a GPU is an error (55000); a failed training stores nothing;
# NULL in, NULL out.
#
#   tests/cluster/models_errors.sh      # JDSH_MODELS_PORT (54361); needs data/wikipedia ($JDSH_DATA)
TEST_NAME=models_errors
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

say "errors and their SQLSTATEs"
# The code column that encode_table's checks name (filled by models_cli_parity.sh in its own run).
q -c "ALTER TABLE wikipedia ADD COLUMN tcode bitcode(64)" >/dev/null
expect_error 42P01 "unknown source relation" "$(train_sql "'no_such_table', 'image', 'text'")"
expect_error 42703 "unknown column" "$(train_sql "'wikipedia', 'no_such_column', 'text'")"
expect_error 42804 "wrong column type (integer)" "$(train_sql "'wikipedia', 'label', 'text'")"
expect_error 42804 "wrong column type (text as image)" "$(train_sql "'wikipedia', 'split', 'text'")"
expect_error 42804 "wrong labels type (real[])" "$(train_sql "'wikipedia', 'image', 'text', labels => 'image'")"
expect_error 22023 "empty source" "$(train_sql "'SELECT * FROM wikipedia WHERE false', 'image', 'text'")"
expect_error 22023 "too few rows" "$(train_sql "'SELECT * FROM wikipedia LIMIT 3', 'image', 'text'")"
expect_error 22000 "NaN in image features" \
  "$(train_sql "'SELECT id, CASE WHEN id = 7 THEN array_fill(''NaN''::real, ARRAY[128]) ELSE image END AS image, text FROM wikipedia', 'image', 'text', epochs => 1")"
expect_error 22000 "infinity in text features" \
  "$(train_sql "'SELECT image, CASE WHEN id = 9 THEN array_fill(''Infinity''::real, ARRAY[10]) ELSE text END AS text FROM wikipedia', 'image', 'text', epochs => 1")"
expect_error 22000 "rows of different dimensions" \
  "$(train_sql "'SELECT CASE WHEN id = 9 THEN image[1:5] ELSE image END AS image, text FROM wikipedia', 'image', 'text', epochs => 1")"
expect_error 22004 "NULL features" "$(train_sql "'SELECT NULLIF(image, image) AS image, text FROM wikipedia', 'image', 'text'")"
expect_error 22023 "DCMH without labels" "$(train_sql "'wikipedia', 'image', 'text', method => 'dcmh'")"
expect_error 22023 "unknown method" "$(train_sql "'wikipedia', 'image', 'text', method => 'lsh'")"
expect_error 22023 "bits = 0" "$(train_sql "'wikipedia', 'image', 'text', bits => 0")"
expect_error 22023 "bits = 5000" "$(train_sql "'wikipedia', 'image', 'text', bits => 5000")"
expect_error 22023 "epochs = 0" "$(train_sql "'wikipedia', 'image', 'text', epochs => 0")"
expect_error 22023 "unknown training option" "$(train_sql "'wikipedia', 'image', 'text', options => '{\"learning_rate\": 0.1}'")"
expect_error 22023 "unknown nested training option" "$(train_sql "'wikipedia', 'image', 'text', options => '{\"jdsh\": {\"nope\": 1}}'")"
expect_error 22023 "options of the wrong type" "$(train_sql "'wikipedia', 'image', 'text', options => '{\"epochs\": \"many\"}'")"
expect_error 22023 "options not an object" "$(train_sql "'wikipedia', 'image', 'text', options => '[1]'")"
expect_error 22023 "bits in options" "$(train_sql "'wikipedia', 'image', 'text', options => '{\"bits\": 32}'")"
expect_error 22023 "empty model name" "SELECT * FROM jdsh.train('', 'wikipedia', 'image', 'text');"
expect_error 42704 "unknown model" "SELECT jdsh.encode_text('no_such_model', $V10);"
expect_error 42704 "unknown version" "SELECT jdsh.encode_text('wiki', $V10, 99);"
expect_error 42704 "unknown model (encode_table)" "SELECT jdsh.encode_table('no_such_model', 'wikipedia', 'text', 'tcode', 'text');"
expect_error 42704 "unknown model (export_model)" "SELECT jdsh.export_model('no_such_model');"
expect_error 42704 "unknown model (drop_model)" "SELECT jdsh.drop_model('no_such_model');"
expect_error 42704 "unknown version (drop_model)" "SELECT jdsh.drop_model('wiki', 99);"
expect_error 42704 "unknown model (rename_model)" "SELECT jdsh.rename_model('no_such_model', 'x');"
expect_error 0A000 "jdsh.sync_models() without Citus" "SELECT * FROM jdsh.sync_models();"
expect_error 42710 "rename onto an existing model" "SELECT jdsh.rename_model('wiki', 'dcmh');"
expect_error 42804 "raw text for a text-feature model" "SELECT jdsh.encode_text('wiki', 'some words');"
expect_error 42804 "image bytes for an image-feature model" "SELECT jdsh.encode_image('wiki', '\\x89504e470d0a1a0a'::bytea);"
expect_error 42804 "raw texts for a text-feature model (batch)" "SELECT jdsh.encode_texts('wiki', ARRAY['a', 'b']);"
expect_error 22000 "wrong text dimension" "SELECT jdsh.encode_text('wiki', ARRAY[1, 2]::real[]);"
expect_error 22000 "wrong image dimension" "SELECT jdsh.encode_image('wiki', $V10);"
expect_error 22000 "wrong image dimension (batch)" "SELECT jdsh.encode_images('wiki', ARRAY[[1, 2], [3, 4]]::real[]);"
expect_error 22000 "NaN in an encoder input" "SELECT jdsh.encode_text('wiki', array_fill('NaN'::real, ARRAY[10]));"
expect_error 22000 "infinity in an encoder input" "SELECT jdsh.encode_image('wiki', array_fill('-Infinity'::real, ARRAY[128]));"
expect_error 22000 "NaN in a batch encoder input" "SELECT jdsh.encode_texts('wiki', ARRAY[$V10, array_fill('NaN'::real, ARRAY[10])]);"
expect_error 22000 "empty encoder input" "SELECT jdsh.encode_text('wiki', '{}'::real[]);"
expect_error 22004 "NULL element in an encoder input" "SELECT jdsh.encode_text('wiki', ARRAY[1, NULL, 3, 4, 5, 6, 7, 8, 9, 10]::real[]);"
expect_error 2202E "a 2-D array to a per-row encoder" "SELECT jdsh.encode_text('wiki', ARRAY[$V10]);"
expect_error 22P03 "garbage bytes to import_model" "SELECT jdsh.import_model('junk', '\\xdeadbeef'::bytea);"
expect_error 22P03 "a truncated file to import_model" "SELECT jdsh.import_model('junk', substring(jdsh.export_model('wiki') FROM 1 FOR 5000));"
expect_error 22P03 "garbage bytes to model_info" "SELECT jdsh.model_info('\\x00'::bytea);"
expect_error 22023 "evaluate: both sides feature vectors, no direction" \
  "SELECT * FROM jdsh.evaluate('wiki', 'wikipedia', 'image', 'wikipedia', 'text', 'label');"
expect_error 22023 "evaluate: unknown direction" \
  "SELECT * FROM jdsh.evaluate('wiki', 'wikipedia', 'image', 'wikipedia', 'text', 'label', direction => 'sideways');"
expect_error 22023 "evaluate: no queries" \
  "SELECT * FROM jdsh.evaluate('wiki', 'SELECT * FROM wikipedia WHERE false', 'image', 'wikipedia', 'text', 'label', direction => 'image->text');"
expect_error 22023 "evaluate: k = 0" \
  "SELECT * FROM jdsh.evaluate('wiki', 'wikipedia', 'image', 'wikipedia', 'text', 'label', ks => '{0}', direction => 'image->text');"
expect_error 42703 "encode_table: unknown column" "SELECT jdsh.encode_table('wiki', 'wikipedia', 'no_such_column', 'tcode', 'text');"
expect_error 42804 "encode_table: code column not a bitcode" "SELECT jdsh.encode_table('wiki', 'wikipedia', 'text', 'label', 'text');"
expect_error 42804 "encode_table: input column of type integer" "SELECT jdsh.encode_table('wiki', 'wikipedia', 'label', 'tcode', 'text');"
expect_error 22023 "encode_table: feature column without modality" "SELECT jdsh.encode_table('wiki', 'wikipedia', 'text', 'tcode');"
expect_error 22023 "encode_table: batch_size 0" "SELECT jdsh.encode_table('wiki', 'wikipedia', 'text', 'tcode', 'text', batch_size => 0);"

run_errors

# A corrupt model row (a superuser can write anything into jdsh.models): an error on every use,
# never a crash. One committed for good; others inside the checks' rolled-back transactions.
q -c "SELECT jdsh.import_model('junk', jdsh.export_model('wiki'))" \
  -c "UPDATE jdsh.models SET model = '\\x00' WHERE name = 'junk'" >/dev/null || fail "cannot corrupt model junk"
expect_error XX001 "corrupt model row ('\\x00'): encode_text" "SELECT jdsh.encode_text('junk', $V10);"
expect_error XX001 "corrupt model row ('\\x00'): encode_images" "SELECT jdsh.encode_images('junk', ARRAY[array_fill(0.5::real, ARRAY[128])]);"
expect_error XX001 "corrupt model row ('\\x00'): encode_table" "SELECT jdsh.encode_table('junk', 'wikipedia', 'text', 'tcode', 'text');"
expect_error XX001 "corrupt model row ('\\x00'): evaluate" \
  "SELECT * FROM jdsh.evaluate('junk', 'wikipedia', 'image', 'wikipedia', 'text', 'label', direction => 'image->text');"
for corrupt in "substring(jdsh.export_model('wiki') FROM 1 FOR octet_length(jdsh.export_model('wiki')) / 2)" \
               "overlay(jdsh.export_model('wiki') PLACING '\\x7b7b7b7b'::bytea FROM 9)" \
               "jdsh.export_model('wiki') || '\\x00'::bytea" "'\\xffffffffffffff7f'::bytea || jdsh.export_model('wiki')"; do
  expect_error XX001 "corrupt model row ($corrupt): encode_text" \
    "UPDATE jdsh.models SET model = $corrupt WHERE name = 'junk'; SELECT jdsh.encode_text('junk', $V10);"
done
run_errors
q -c "UPDATE jdsh.models SET model = jdsh.export_model('wiki') WHERE name = 'junk'" >/dev/null
[ "$(q -c "SELECT jdsh.encode_text('junk', $V10) = jdsh.encode_text('wiki', $V10)")" = t ] ||
  soft_fail "model junk does not encode as wiki once repaired"
q -c "SELECT jdsh.drop_model('junk')" >/dev/null || fail "the server is not answering after the corrupt-model checks"
assert_no_crash "a corrupt model row" ""

# jdsh.device = 'cuda' where libtorch sees no GPU: an error from the encoder (and from training).
out=$(qv -c "SET jdsh.device = 'cuda'" -c "SELECT jdsh.encode_text('wiki', $V10) IS NOT NULL") || true
assert_no_crash "jdsh.device = cuda" "$out"
if [ "$out" = t ]; then
  say "jdsh.device = 'cuda' encodes here (libtorch sees a GPU): the no-GPU error checks are skipped"
else
  expect_error 55000 "jdsh.device = cuda without a GPU: encode_text" "SET jdsh.device = 'cuda'; SELECT jdsh.encode_text('wiki', $V10);"
  expect_error 55000 "jdsh.device = cuda without a GPU: encode_texts" "SET jdsh.device = 'cuda'; SELECT jdsh.encode_texts('wiki', ARRAY[$V10]);"
  expect_error 55000 "jdsh.device = cuda without a GPU: train" "SET jdsh.device = 'cuda'; $(train_sql "'SELECT * FROM wikipedia WHERE id % 8 = 0', 'image', 'text', epochs => 1")"
  run_errors
fi
[ "$(rows_of bad)" = 0 ] || soft_fail "a failed jdsh.train left a model row"

# NULL in, NULL out.
res=$(q -c "SELECT jdsh.encode_text('wiki', NULL::real[]) IS NULL, jdsh.encode_image('wiki', NULL::real[]) IS NULL,
                   jdsh.encode_text(NULL, $V10) IS NULL, jdsh.encode_text('wiki', NULL::real[], 1) IS NULL,
                   jdsh.encode_image('wiki', NULL::bytea) IS NULL, jdsh.encode_text('wiki', NULL::text) IS NULL,
                   jdsh.encode_texts('wiki', NULL::real[]) IS NULL, jdsh.encode_images('wiki', NULL::real[]) IS NULL,
                   jdsh.import_model('x', NULL) IS NULL, jdsh.model_info(NULL) IS NULL")
[ "$res" = "t|t|t|t|t|t|t|t|t|t" ] || soft_fail "NULL arguments do not all give NULL: $res"
say "$ERRORS_CHECKED error checks gave their SQLSTATE; a corrupt model row is XX001 (4 corruptions, no crash); NULL in, NULL out"

assert_no_crash "the test" ""
finish
