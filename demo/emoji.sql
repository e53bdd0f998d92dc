-- jdsh demo, part 2: find emoji images by text in plain SQL, with models trained in the database.
-- Run by scripts/demo.sh after it loaded the table `emoji` (5,682 rows: one per emoji and vendor,
-- with name, category, subcategory, keywords and the 64-px PNG) from the npm registry:
--   jdsh-train export --dataset emoji | psql
\pset footer off
\set ON_ERROR_STOP 1
SET client_min_messages = notice;

SELECT vendor, split, count(*) AS images FROM emoji GROUP BY vendor, split ORDER BY vendor, split;

-- Image features, computed once and stored: the 1280 ImageNet features of EfficientNet-Lite0
-- (weights installed by set-up), what both models learn from. One column, so training and
-- encoding never run the network again. (jdsh.threads = 0: one libtorch thread per core.)
SET jdsh.threads = 0;
ALTER TABLE emoji ADD COLUMN features real[];
\timing on
UPDATE emoji SET features = jdsh.image_features(png)
 WHERE vendor = 'facebook' OR (split = 'train' AND vendor IN ('google', 'twitter'));
\timing off

-- Training pairs: the google and twitter images of 4 emoji in 5, with their texts (name +
-- keywords). Facebook's images are never seen in training: they are the database we search.
CREATE VIEW emoji_train AS
    SELECT features, keywords, subcategory_id FROM emoji
     WHERE split = 'train' AND vendor IN ('google', 'twitter');
CREATE TABLE emoji_db AS
    SELECT id, name, subcategory, split, png, features FROM emoji WHERE vendor = 'facebook';

-- Train an unsupervised JDSH model (labels are only used for the hold-out MAP it reports) and a
-- supervised DCMH model (labels = the 99 subcategories), 64-bit codes, from the stored features
-- and the texts. Progress arrives as NOTICEs; Ctrl-C cancels and stores nothing.
SELECT * FROM jdsh.train('emoji', 'emoji_train', image => 'features', text => 'keywords',
                         labels => 'subcategory_id', bits => 64, method => 'jdsh',
                         epochs => :jdsh_epochs);
SET client_min_messages = warning;  -- the second model's per-epoch lines are skipped
SELECT * FROM jdsh.train('emoji_dcmh', 'emoji_train', image => 'features', text => 'keywords',
                         labels => 'subcategory_id', bits => 64, method => 'dcmh',
                         epochs => :dcmh_epochs);
SET client_min_messages = notice;
SELECT name, version, method, bits, size_bytes, round(seconds) AS seconds,
       round(map_image_to_text::numeric, 3) AS holdout_map_i2t,
       round(map_text_to_image::numeric, 3) AS holdout_map_t2i
  FROM jdsh.list_models();

-- Encode the database images once (from their stored features), index the codes, and query by
-- text. The encoder is STABLE: it runs once per query and the mih index does an exact Hamming
-- k-NN search. A new image would be encoded as jdsh.encode_image('emoji', jdsh.image_features(png)).
ALTER TABLE emoji_db ADD COLUMN code bitcode(64), ADD COLUMN code_dcmh bitcode(64);
UPDATE emoji_db SET code = jdsh.encode_image('emoji', features),
                    code_dcmh = jdsh.encode_image('emoji_dcmh', features);
CREATE INDEX emoji_db_code ON emoji_db USING mih (code);
CREATE INDEX emoji_db_code_dcmh ON emoji_db USING mih (code_dcmh);
ANALYZE emoji_db;

EXPLAIN (COSTS OFF) SELECT name FROM emoji_db ORDER BY code <~> jdsh.encode_text('emoji', 'red fruit') LIMIT 8;

\x on
SELECT q.query,
       (SELECT string_agg(name, ', ') FROM (SELECT name FROM emoji_db
          ORDER BY code <~> jdsh.encode_text('emoji', q.query) LIMIT 8) t) AS jdsh_top8,
       (SELECT string_agg(name, ', ') FROM (SELECT name FROM emoji_db
          ORDER BY code_dcmh <~> jdsh.encode_text('emoji_dcmh', q.query) LIMIT 8) t) AS dcmh_top8
  FROM (VALUES ('red fruit'), ('happy face'), ('flag of japan'), ('rocket'), ('cat'),
               ('rain'), ('musical instrument')) AS q(query);
\x off

-- And the other way round: the texts nearest to one image (here facebook's RED APPLE).
SELECT e.name, e.keywords
  FROM (SELECT DISTINCT ON (id) id, name, keywords FROM emoji ORDER BY id) e
 ORDER BY jdsh.encode_text('emoji', e.keywords) <~> (SELECT code FROM emoji_db WHERE name = 'RED APPLE'),
          e.id
 LIMIT 5;

-- Held-out quality on the data card's protocol (subcategory relevance, MAP over all items):
-- text -> image: texts of the 382 test emoji against the facebook images of the training emoji;
-- image -> text: facebook images of the test emoji against the texts of the training emoji.
CREATE VIEW test_texts AS SELECT DISTINCT ON (id) keywords, subcategory_id FROM emoji WHERE split = 'test' ORDER BY id;
CREATE VIEW train_texts AS SELECT DISTINCT ON (id) keywords, subcategory_id FROM emoji WHERE split = 'train' ORDER BY id;
CREATE VIEW test_images AS SELECT features, subcategory_id FROM emoji WHERE split = 'test' AND vendor = 'facebook';
CREATE VIEW train_images AS SELECT features, subcategory_id FROM emoji WHERE split = 'train' AND vendor = 'facebook';
SELECT m.model, d.direction, round(e.value::numeric, 3) AS "MAP@all"
  FROM (VALUES ('emoji'), ('emoji_dcmh')) AS m(model),
       (VALUES ('text->image', 'test_texts', 'keywords', 'train_images', 'features'),
               ('image->text', 'test_images', 'features', 'train_texts', 'keywords')) AS d(direction, q, qc, r, rc),
       LATERAL jdsh.evaluate(m.model, d.q, d.qc, d.r, d.rc, 'subcategory_id', '{}') AS e
 WHERE e.metric = 'map' AND e.k IS NULL
 ORDER BY m.model, d.direction;
