#!/usr/bin/env bash
# Moving models: export_model / import_model round-trips to the same file and the same codes;
# model_info reads method and bits from a stored model and from a file of the CLI; list_models
# reports name, version, latest, method, bits, epochs, source, size and MAP of every model.
#
#   tests/cluster/models_export.sh      # JDSH_MODELS_PORT (54361); needs data/wikipedia ($JDSH_DATA)
TEST_NAME=models_export
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

say "export_model / import_model / model_info / list_models"
v=$(q -c "SELECT jdsh.import_model('wiki_copy', jdsh.export_model('wiki', 1))") || fail "cannot import wiki_copy"
[ "$v" = 1 ] || soft_fail "import_model('wiki_copy') returned $v"
n=$(q -c "SELECT count(*) FROM wikipedia
           WHERE jdsh.encode_image('wiki_copy', image) IS DISTINCT FROM jdsh.encode_image('wiki', image, 1)
              OR jdsh.encode_text('wiki_copy', text) IS DISTINCT FROM jdsh.encode_text('wiki', text, 1)")
[ "$n" = 0 ] || soft_fail "$n rows encode differently with the exported and re-imported copy of wiki v1"
[ "$(q -c "SELECT md5(jdsh.export_model('wiki_copy')) = md5(jdsh.export_model('wiki', 1))")" = t ] ||
  soft_fail "export_model(import_model(export_model(m))) is not the same file"
info=$(q -F '|' -c "SELECT jdsh.model_info(jdsh.export_model('wiki')) ->> 'method', jdsh.model_info(jdsh.export_model('wiki')) ->> 'bits',
                           jdsh.model_info(jdsh.export_model('dcmh')) ->> 'method', jdsh.model_info(jdsh.export_model('dcmh')) ->> 'bits',
                           jdsh.model_info(pg_read_binary_file('$FILES/cli.safetensors')) ->> 'method'")
[ "$info" = "jdsh|64|dcmh|64|jdsh" ] || soft_fail "model_info gives method|bits: $info"

# list_models over models of every origin: trained in SQL (wiki v1, dcmh: the fixture's; a
# second, 1-epoch version of wiki, so that v1 is no longer the latest), imported from the CLI's
# file (cli, 3 epochs) and imported from SQL (wiki_copy).
v=$(q -c "SELECT jdsh.import_model('cli', pg_read_binary_file('$FILES/cli.safetensors'))") || fail "cannot import the CLI's model"
[ "$v" = 1 ] || soft_fail "import_model('cli') returned $v"
v=$(q -c "SELECT version FROM jdsh.train('wiki', 'SELECT * FROM wikipedia WHERE id % 8 = 0', 'image', 'text', epochs => 1)") ||
  fail "cannot train a second version of wiki"
[ "$v" = 2 ] || soft_fail "the second version of wiki is version $v"
res=$(q -c "SELECT string_agg(format('%s:%s:%s:%s:%s:%s', name, version, latest, method, bits, epochs), ' ' ORDER BY name, version)
              FROM jdsh.list_models()")
expect="cli:1:t:jdsh:64:3 dcmh:1:t:dcmh:64:20 wiki:1:f:jdsh:64:30 wiki:2:t:jdsh:64:1 wiki_copy:1:t:jdsh:64:30"
[ "$res" = "$expect" ] || soft_fail "list_models: $res, expected $expect"
res=$(q -F '|' -c "SELECT source, size_bytes > 100000, map_image_to_text > 0, map_text_to_image > 0, seconds > 0
                     FROM jdsh.list_models() WHERE name = 'wiki' AND version = 1")
[ "$res" = "SELECT * FROM wikipedia WHERE split = 'train'|t|t|t|t" ] || soft_fail "list_models row of wiki v1: $res"
[ "$(q -c "SELECT source FROM jdsh.list_models() WHERE name = 'cli'")" = imported ] || soft_fail "the imported model's source is not 'imported'"
say "round trip gives the same file and codes; model_info and list_models agree"

assert_no_crash "the test" ""
finish
