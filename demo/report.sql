-- jdsh demo, part 3: look at the answers. One HTML page (pictures inline, no script, no network)
-- with the top 8 pictures of both demo models for the queries of part 2, side by side, the texts
-- nearest to three images, the MAP table and both directions' precision-recall curves.
-- scripts/demo.sh runs it after demo/emoji.sql and writes the page with
--   psql -XAtq -o .demo/report.html -f demo/report.sql
-- The pictures come by the stored code columns' mih indexes (codes => …); without `codes` the
-- report encodes every row of the table once per model instead.
SET jdsh.threads = 0;  -- one libtorch thread per core for the evaluation's encoders
SELECT jdsh.report('{emoji,emoji_dcmh}', 'emoji_db', image => 'png', caption => 'name', encode => 'features',
                   codes => '{code,code_dcmh}',
                   queries => '{red fruit,happy face,flag of japan,rocket,cat,rain,musical instrument}',
                   texts => 'SELECT DISTINCT ON (id) keywords FROM emoji ORDER BY id', text_column => 'keywords',
                   image_queries => '{RED APPLE,CAT FACE,UMBRELLA WITH RAIN DROPS}',
                   evaluation => '[{"direction": "text->image", "queries": "test_texts", "query_column": "keywords",
                                    "retrieval": "train_images", "retrieval_column": "features", "labels": "subcategory_id"},
                                   {"direction": "image->text", "queries": "test_images", "query_column": "features",
                                    "retrieval": "train_texts", "retrieval_column": "keywords", "labels": "subcategory_id"}]',
                   title => 'jdsh demo: emoji images found by text, facebook images never seen in training');
