#!/usr/bin/env bash
# SQL and the jdsh-train CLI agree bit for bit: the same model file gives the same codes in SQL
# (per row, the batch forms, encode_table in batches) as `jdsh-train encode`, and jdsh.evaluate
# the MAP of `jdsh-train eval`; a model trained by the CLI and imported encodes as the CLI does.
#
#   tests/cluster/models_cli_parity.sh      # JDSH_MODELS_PORT (54361); needs data/wikipedia ($JDSH_DATA)
TEST_NAME=models_cli_parity
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

say "codes and MAP: SQL vs jdsh-train (the same model file)"
q -c "SELECT array_to_string(image, ',') FROM wikipedia ORDER BY id" >"$FILES/image.csv"
q -c "SELECT array_to_string(text, ',') FROM wikipedia ORDER BY id" >"$FILES/text.csv"
q -c "SELECT encode(jdsh.export_model('wiki'), 'base64')" | base64 -d >"$FILES/wiki.safetensors" ||
  fail "cannot export model wiki"

# same_lines LABEL FILE_A FILE_B: equal, non-empty, 2866 lines.
same_lines() {
  local label=$1 a=$2 b=$3 n diff
  n=$(wc -l <"$b")
  if [ "$n" != 2866 ]; then soft_fail "$label: $n codes instead of 2866"; return; fi
  if ! cmp -s "$a" "$b"; then
    diff=$(paste -d' ' "$a" "$b" | awk '$1 != $2' | wc -l)
    soft_fail "$label: $diff of 2866 codes differ, e.g. line $(paste -d' ' "$a" "$b" | awk '$1 != $2 {print NR ": " $0; exit}')"
    return
  fi
  CODES_COMPARED=$((CODES_COMPARED + n))
}
CODES_COMPARED=0

# compare_with_cli MODEL FILE [VERSION]: per row, batch and (for wiki) encode_table against the CLI.
compare_with_cli() {
  local model=$1 file=$2 v=${3:+, $3}
  "$JT" encode --model "$file" --image-features "$FILES/image.csv" >"$FILES/cli_image.txt" ||
    fail "jdsh-train encode --image-features failed"
  "$JT" encode --model "$file" --text-features "$FILES/text.csv" >"$FILES/cli_text.txt" ||
    fail "jdsh-train encode --text-features failed"
  hexq "SELECT jdsh.encode_image('$model', image$v) FROM wikipedia ORDER BY id" >"$FILES/sql_image.txt"
  same_lines "$model: jdsh.encode_image per row vs CLI" "$FILES/cli_image.txt" "$FILES/sql_image.txt"
  hexq "SELECT jdsh.encode_text('$model', text$v) FROM wikipedia ORDER BY id" >"$FILES/sql_text.txt"
  same_lines "$model: jdsh.encode_text per row vs CLI" "$FILES/cli_text.txt" "$FILES/sql_text.txt"
  hexq "SELECT unnest(jdsh.encode_images('$model', (SELECT array_agg(image ORDER BY id) FROM wikipedia)$v))" >"$FILES/sql_images.txt"
  same_lines "$model: jdsh.encode_images (one batch) vs CLI" "$FILES/cli_image.txt" "$FILES/sql_images.txt"
  hexq "SELECT unnest(jdsh.encode_texts('$model', (SELECT array_agg(text ORDER BY id) FROM wikipedia)$v))" >"$FILES/sql_texts.txt"
  same_lines "$model: jdsh.encode_texts (one batch) vs CLI" "$FILES/cli_text.txt" "$FILES/sql_texts.txt"
}

# cli_vs_sql_map MODEL FILE: the CLI's eval (Wikipedia protocol: test queries, training
# retrieval, both in file order = id order) against jdsh.evaluate, to 1e-9.
cli_vs_sql_map() {
  local model=$1 file=$2 json cli sql
  json=$("$JT" eval --model "$file" --dataset wikipedia --json --k 10,100) || fail "jdsh-train eval failed"
  cli=$(python3 -c 'import json, sys; r = json.load(sys.stdin)
print(r["image_to_text"]["map_all"], r["text_to_image"]["map_all"], dict(r["image_to_text"]["map_at"])[100], dict(r["text_to_image"]["map_at"])[100])' <<<"$json")
  sql=$(q -F ' ' -c "SELECT (SELECT value FROM jdsh.evaluate('$model', $TEST_Q, 'image', $TRAIN_Q, 'text', 'label', direction => 'image->text') WHERE metric = 'map' AND k IS NULL),
                            (SELECT value FROM jdsh.evaluate('$model', $TEST_Q, 'text', $TRAIN_Q, 'image', 'label', direction => 'text->image') WHERE metric = 'map' AND k IS NULL),
                            (SELECT value FROM jdsh.evaluate('$model', $TEST_Q, 'image', $TRAIN_Q, 'text', 'label', direction => 'image->text') WHERE metric = 'map' AND k = 100),
                            (SELECT value FROM jdsh.evaluate('$model', $TEST_Q, 'text', $TRAIN_Q, 'image', 'label', direction => 'text->image') WHERE metric = 'map' AND k = 100)")
  if python3 -c "import sys; a = [float(x) for x in '$cli'.split()]; b = [float(x) for x in '$sql'.split()]
sys.exit(0 if len(a) == len(b) == 4 and all(abs(x - y) <= 1e-9 for x, y in zip(a, b)) else 1)"; then
    say "$model: jdsh.evaluate = jdsh-train eval (MAP@all i->t, t->i, MAP@100 i->t, t->i): $sql"
  else
    soft_fail "$model: jdsh.evaluate gives MAP (all i->t, t->i, @100 i->t, t->i) $sql, the CLI $cli"
  fi
}

compare_with_cli wiki "$FILES/wiki.safetensors"
# encode_table: images in batches of 100 (and a last short one), texts in the default 256.
q -c "ALTER TABLE wikipedia ADD COLUMN icode bitcode(64), ADD COLUMN tcode bitcode(64)" >/dev/null
n=$(q -c "SELECT jdsh.encode_table('wiki', 'wikipedia', 'image', 'icode', 'image', batch_size => 100)")
[ "$n" = 2866 ] || soft_fail "encode_table (image) set $n rows, not 2866"
n=$(q -c "SELECT jdsh.encode_table('wiki', 'wikipedia', 'text', 'tcode', modality => 'text')")
[ "$n" = 2866 ] || soft_fail "encode_table (text) set $n rows, not 2866"
hexq "SELECT icode FROM wikipedia ORDER BY id" >"$FILES/table_image.txt"
same_lines "wiki: jdsh.encode_table (image, batches of 100) vs CLI" "$FILES/cli_image.txt" "$FILES/table_image.txt"
hexq "SELECT tcode FROM wikipedia ORDER BY id" >"$FILES/table_text.txt"
same_lines "wiki: jdsh.encode_table (text, batches of 256) vs CLI" "$FILES/cli_text.txt" "$FILES/table_text.txt"
# double precision[] input, read as jdsh.train reads it (float4 -> float8 -> float4 is exact).
q -c "ALTER TABLE wikipedia ADD COLUMN image8 double precision[], ADD COLUMN icode8 bitcode(64);
      UPDATE wikipedia SET image8 = image::float8[]" >/dev/null
n=$(q -c "SELECT jdsh.encode_table('wiki', 'wikipedia', 'image8', 'icode8', 'image', batch_size => 500)")
[ "$n" = 2866 ] || soft_fail "encode_table (double precision[] images) set $n rows, not 2866"
hexq "SELECT icode8 FROM wikipedia ORDER BY id" >"$FILES/table_image8.txt"
same_lines "wiki: jdsh.encode_table (double precision[] images) vs CLI" "$FILES/cli_image.txt" "$FILES/table_image8.txt"
# A partitioned table: its partitions' ctids repeat, so encode_table tells rows apart by tableoid.
q -c "CREATE TABLE wiki_parts (id int, image real[], icode bitcode(64)) PARTITION BY RANGE (id)" \
  -c "CREATE TABLE wiki_parts_a PARTITION OF wiki_parts FOR VALUES FROM (MINVALUE) TO (1500)" \
  -c "CREATE TABLE wiki_parts_b PARTITION OF wiki_parts FOR VALUES FROM (1500) TO (MAXVALUE)" \
  -c "INSERT INTO wiki_parts SELECT id, image FROM wikipedia" >/dev/null
n=$(q -c "SELECT jdsh.encode_table('wiki', 'wiki_parts', 'image', 'icode', 'image', batch_size => 300)")
[ "$n" = 2866 ] || soft_fail "encode_table on a partitioned table set $n rows, not 2866"
hexq "SELECT icode FROM wiki_parts ORDER BY id" >"$FILES/table_parts.txt"
same_lines "wiki: jdsh.encode_table on a partitioned table (2 partitions) vs CLI" "$FILES/cli_image.txt" "$FILES/table_parts.txt"
q -c "DROP TABLE wiki_parts" >/dev/null
say "wiki: $CODES_COMPARED codes equal between the CLI and encode_image/text, encode_images/texts, encode_table (also on a partitioned table)"
cli_vs_sql_map wiki "$FILES/wiki.safetensors"

say "a model trained by the CLI (the fixture's cli.safetensors: jdsh-train train, 3 epochs), imported"
v=$(q -c "SELECT jdsh.import_model('cli', pg_read_binary_file('$FILES/cli.safetensors'))") ||
  fail "import_model of the CLI's model file failed"
[ "$v" = 1 ] || soft_fail "import_model returned version $v, not 1"
CODES_COMPARED=0
compare_with_cli cli "$FILES/cli.safetensors"
say "cli: $CODES_COMPARED codes equal between the CLI and the imported model (per row and batch)"
cli_vs_sql_map cli "$FILES/cli.safetensors"

assert_no_crash "the test" ""
finish
