#!/usr/bin/env bash
# Image features in SQL: jdsh.image_features gives EfficientNet-Lite0's 1280 ImageNet features of
# PNG bytes (finite, within ReLU6's [0, 6]), the same one image at a time as in one batch (where a
# NULL image gives a row of NULLs), and the hand-crafted extractor's by name; models trained in
# SQL from a stored feature column find emoji images by text and texts by image (unseen emoji,
# unseen vendor, subcategory relevance) far better with the ImageNet features than with the
# hand-crafted ones, and encode a new image through jdsh.image_features; truncated, oversized
# and non-image bytes are 22P03 errors, returned at once.
#
#   tests/cluster/models_image_features.sh   # JDSH_MODELS_PORT (54361); needs the emoji packages
#                                            # (.cache/emoji, scripts/fetch-emoji.sh) and the
#                                            # backbone weights (scripts/fetch-backbone.sh)
TEST_NAME=models_image_features
MODELS_TEST=1
source "$(dirname "$0")/lib.sh"
models_fixture

load_emoji ef
# Training pairs: google images of the training emoji with their texts (1,529); queries and
# retrieval: the facebook images of the test emoji (371) and their texts.
q -c "CREATE TABLE ef AS SELECT id, vendor, split, subcategory_id, keywords, png FROM emoji_all
       WHERE (vendor = 'google' AND split = 'train') OR (vendor = 'facebook' AND split = 'test')" >/dev/null
counts=$(q -F ' ' -c "SELECT count(*) FILTER (WHERE vendor = 'google'), count(*) FILTER (WHERE vendor = 'facebook') FROM ef")
[ "$counts" = "1529 371" ] || fail "the emoji subset has $counts google/facebook rows, expected 1529 371"

say "jdsh.image_features on $(q -c "SELECT count(*) FROM ef") PNGs (one per call, one CPU thread)"
t0=$(date +%s.%N)
q -c "SET jdsh.threads = 1" -c "ALTER TABLE ef ADD COLUMN f real[], ADD COLUMN h real[]" \
  -c "UPDATE ef SET f = jdsh.image_features(png)" >/dev/null || fail "jdsh.image_features failed"
t1=$(date +%s.%N)
q -c "UPDATE ef SET h = jdsh.image_features(png, 'handcrafted')" >/dev/null || fail "jdsh.image_features(png, 'handcrafted') failed"
per_s=$(python3 -c "print(round(1900 / ($t1 - $t0), 1))")
shape=$(q -F ' ' -c "SELECT min(array_length(f, 1)), max(array_length(f, 1)), min(array_length(h, 1)), max(array_length(h, 1)),
                            count(*) FILTER (WHERE array_ndims(f) <> 1) FROM ef")
read -r fmin fmax hmin hmax nd <<<"$shape"
[ "$fmin $fmax $nd" = "1280 1280 0" ] || soft_fail "efficientnet-lite0 features are not 1280-d vectors: lengths $fmin..$fmax, $nd not one-dimensional"
[ "$hmin" = "$hmax" ] && [ "$hmin" -gt 0 ] && [ "$hmin" != 1280 ] || soft_fail "hand-crafted features have lengths $hmin..$hmax"
range=$(q -F ' ' -c "SELECT min(v), max(v), count(*) FILTER (WHERE v = 'NaN' OR v IN ('Infinity', '-Infinity'))
                       FROM ef, unnest(f) v")
read -r vmin vmax nonfinite <<<"$range"
[ "$nonfinite" = 0 ] && above "$vmin" 0 && above 6 "$vmax" || soft_fail "features outside ReLU6's [0, 6] or not finite: min $vmin, max $vmax, $nonfinite not finite"
say "features: 1280-d, values $vmin..$vmax; hand-crafted: $hmin-d; $per_s images/s (backbone)"

# The batch form: one call over 40 images (four of them NULL) gives the per-row features, row by row.
batch=$(q -c "WITH s AS (SELECT row_number() OVER (ORDER BY id) AS i, png, f
                           FROM ef WHERE vendor = 'facebook' ORDER BY id LIMIT 40),
                   b AS (SELECT jdsh.image_features(array_agg(CASE WHEN i % 10 = 3 THEN NULL ELSE png END ORDER BY i)) AS m
                           FROM s)
              SELECT array_length(m, 1), array_length(m, 2),
                     (SELECT count(*) FROM s
                       WHERE CASE WHEN i % 10 = 3
                                  THEN (SELECT bool_and(x IS NULL) FROM unnest(m[i:i][1:1280]) x)
                                  ELSE (SELECT array_agg(x) FROM unnest(m[i:i][1:1280]) x) = f END)
                FROM b")
[ "$batch" = "40|1280|40" ] || soft_fail "the batch form over 40 images (NULLs included) differs from the per-row features: rows|cols|matching = $batch"
[ "$(q -c "SELECT coalesce(array_length(jdsh.image_features('{}'::bytea[]), 1), 0)")" = 0 ] || soft_fail "an empty batch does not give an empty array"
[ "$(q -c "SELECT jdsh.image_features(NULL::bytea) IS NULL")" = t ] || soft_fail "NULL in, not NULL out"

say "CCA-ITQ models trained in SQL from the stored columns; MAP@all on unseen emoji, unseen vendor"
for col in f h; do
  q -c "SELECT jdsh.drop_model('ef_$col') FROM jdsh.models WHERE name = 'ef_$col' LIMIT 1" >/dev/null
  q -c "SELECT version FROM jdsh.train('ef_$col', 'SELECT $col, keywords, subcategory_id FROM ef WHERE vendor = ''google''',
                                       image => '$col', text => 'keywords', labels => 'subcategory_id',
                                       method => 'cca-itq', bits => 64, options => '{\"holdout\": 0}')" >/dev/null ||
    fail "jdsh.train from column $col failed"
done
ev() {  # ev MODEL COLUMN DIRECTION: MAP@all
  local qsrc rsrc qcol rcol
  local fb="'SELECT $2, keywords, subcategory_id FROM ef WHERE vendor = ''facebook'''"
  local gt="'SELECT keywords, subcategory_id FROM ef WHERE vendor = ''google'''"
  if [ "$3" = "image->text" ]; then qsrc=$fb; qcol=$2; rsrc=$gt; rcol=keywords; else qsrc=$fb; qcol=keywords; rsrc=$fb; rcol=$2; fi
  q -c "SELECT round(value::numeric, 3) FROM jdsh.evaluate('$1', $qsrc, '$qcol', $rsrc, '$rcol', 'subcategory_id',
                                                   direction => '$3') WHERE metric = 'map' AND k IS NULL"
}
f_i2t=$(ev ef_f f 'image->text') && f_t2i=$(ev ef_f f 'text->image') &&
  h_i2t=$(ev ef_h h 'image->text') && h_t2i=$(ev ef_h h 'text->image') || fail "jdsh.evaluate failed"
say "MAP@all image->text: ImageNet features $f_i2t, hand-crafted $h_i2t; text->image: $f_t2i vs $h_t2i"
above "$f_i2t" "$(python3 -c "print($h_i2t + 0.05)")" && above "$f_t2i" "$(python3 -c "print($h_t2i + 0.05)")" ||
  soft_fail "the ImageNet features are not clearly better (by 0.05) than the hand-crafted ones"
above "$f_i2t" 0.15 && above "$f_t2i" 0.15 || soft_fail "MAP@all with ImageNet features below 0.15"

# A new image through the stored-feature model: its code from jdsh.image_features(png) equals the
# code of its stored features.
same=$(q -c "SELECT count(*) > 40 AND bool_and(jdsh.encode_image('ef_f', jdsh.image_features(png)) = jdsh.encode_image('ef_f', f))
               FROM ef WHERE vendor = 'facebook' AND id % 7 = 0")
[ "$same" = t ] || soft_fail "encode_image(model, image_features(png)) differs from encoding the stored features"

say "bad image bytes: SQLSTATE and time"
# A valid PNG (header, one small compressed block, end) whose header declares 100000 x 100000 pixels.
big_png="'\\x89504e470d0a1a0a0000000d49484452000186a0000186a0080200000027309c9f0000000c49444154789c6360a00c000000400001b7347cef0000000049454e44ae426082'::bytea"
expect_error 22P03 "truncated PNG" "SELECT jdsh.image_features(substring(png FROM 1 FOR 200)) FROM ef LIMIT 1;"
expect_error 22P03 "PNG header declaring 100000x100000 pixels" "SELECT jdsh.image_features($big_png);"
expect_error 22P03 "not an image" "SELECT jdsh.image_features('\\xdeadbeef'::bytea);"
expect_error 22P03 "truncated JPEG" "SELECT jdsh.image_features('\\xffd8ffe000104a464946'::bytea);"
expect_error 22P03 "a bad image in a batch" "SELECT jdsh.image_features(ARRAY[png, '\\x00'::bytea]) FROM ef LIMIT 1;"
expect_error 22023 "unknown extractor" "SELECT jdsh.image_features(png, 'resnet') FROM ef LIMIT 1;"
run_errors
# Time per refusal, after one call (which loads what the backend loads once).
ms=$(q -c "SET client_min_messages = notice" -c "DO \$\$ DECLARE t timestamptz; BEGIN
             BEGIN PERFORM jdsh.image_features($big_png);
             EXCEPTION WHEN invalid_binary_representation THEN NULL; END;
             t := clock_timestamp();
             FOR i IN 1..20 LOOP
               BEGIN PERFORM jdsh.image_features($big_png);
               EXCEPTION WHEN invalid_binary_representation THEN NULL; END;
             END LOOP;
             RAISE NOTICE 'ms %', round(extract(epoch FROM clock_timestamp() - t) * 1000 / 20, 2);
           END \$\$" 2>&1 | grep -oE 'ms [0-9.]+' | cut -c4- || true)
above 50 "${ms:-999}" || soft_fail "a PNG declaring 100000x100000 pixels took ${ms:-?} ms to refuse"
say "$ERRORS_CHECKED error checks; the 100000x100000 PNG is refused in $ms ms"
finish
