-- The mih index: exact k-NN and radius results equal a sequential scan's, EXPLAIN shows the
-- index, options, lifecycle (insert, delete, VACUUM, REINDEX, unlogged) and bad input.
SET client_min_messages = warning;
SELECT setseed(0.25);

-- 20,000 clustered 64-bit codes: noisy copies (each bit flipped with p = 0.1) of 200 centres.
CREATE TABLE centres AS SELECT c, (random() * 2^62)::int8 # ((random() * 3)::int8 << 62) AS v
  FROM generate_series(0, 199) c;
CREATE FUNCTION noise(salt int) RETURNS int8 LANGUAGE sql VOLATILE AS
  $$ SELECT coalesce(sum(1::int8 << b), 0)::int8 FROM generate_series(0, 62) b WHERE random() < 0.1 AND salt IS NOT NULL $$;
CREATE TABLE mt (id int PRIMARY KEY, code bitcode(64));
INSERT INTO mt SELECT i, ((SELECT v FROM centres WHERE c = i % 200) # noise(i))::bitcode(64)
  FROM generate_series(1, 20000) i;
INSERT INTO mt VALUES (20001, NULL);     -- NULL codes are not indexed and never returned
CREATE INDEX mt_mih ON mt USING mih (code);
SELECT rows, heap_rows, dead_entries FROM jdsh.mih_check('mt_mih');
-- Without the substrings option, a table of 16k rows or more gets the number of substrings its
-- codes call for (measured at build: their 10-NN distances); smaller ones, b / log2(rows). The
-- build also chooses how much a search may probe before it reads a whole table instead: for its
-- first 10 rows, and once it is asked for more (top-100 searches are priced for that one).
SELECT substrings, substring_bits, built_rows, chosen_by, probe_budget, probe_budget_top100
  FROM jdsh.mih_info('mt_mih');

-- 40 queries: 20 codes of the table, 20 fresh noisy copies of centres.
CREATE TABLE mq AS
  SELECT q AS qid, CASE WHEN q <= 20 THEN (SELECT code FROM mt WHERE id = q * 97)
                        ELSE ((SELECT v FROM centres WHERE c = q * 7 % 200) # noise(q))::bitcode(64) END AS code
  FROM generate_series(1, 40) q;

-- Results through the index ...
SET enable_seqscan = off; SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM mt ORDER BY code <~> (SELECT code FROM mq WHERE qid = 1) LIMIT 10;
-- Under the build's probe budget, reading at once (0), and probing far longer (10000 %).
CREATE TABLE via_index (budget int, qid int, k int, dists int[]);
DO $$
DECLARE b int;
BEGIN
  FOREACH b IN ARRAY ARRAY[-1, 0, 10000] LOOP
    PERFORM set_config('jdsh.mih_probe_budget', b::text, true);
    INSERT INTO via_index
      SELECT b, qid, k, ARRAY(SELECT mt.code <~> mq.code FROM mt ORDER BY mt.code <~> mq.code LIMIT k)
      FROM mq, (VALUES (1), (10), (100), (25000)) ks(k);
  END LOOP;
END $$;
SET enable_bitmapscan = on; SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM mt WHERE code <@ jdsh.ball((SELECT code FROM mq WHERE qid = 1), 3);
CREATE TABLE radius_bitmap AS
  SELECT qid, r, ARRAY(SELECT id FROM mt WHERE mt.code <@ jdsh.ball(mq.code, r) ORDER BY id) AS ids
  FROM mq, generate_series(0, 12, 2) r;
SET enable_bitmapscan = off; SET enable_indexscan = on;
CREATE TABLE radius_index AS
  SELECT qid, r, ARRAY(SELECT id FROM mt WHERE mt.code <@ jdsh.ball(mq.code, r) ORDER BY id) AS ids
  FROM mq, generate_series(0, 12, 2) r;
SET jdsh.mih_probe_budget = 0;
CREATE TABLE radius_read AS
  SELECT qid, r, ARRAY(SELECT id FROM mt WHERE mt.code <@ jdsh.ball(mq.code, r) ORDER BY id) AS ids
  FROM mq, generate_series(0, 12, 2) r;
RESET jdsh.mih_probe_budget;
-- ... and through a sequential scan.
RESET enable_seqscan; SET enable_indexscan = off; SET enable_bitmapscan = off;
CREATE TABLE via_seq AS
  SELECT qid, k, ARRAY(SELECT mt.code <~> mq.code FROM mt WHERE mt.code IS NOT NULL ORDER BY mt.code <~> mq.code LIMIT k) AS dists
  FROM mq, (VALUES (1), (10), (100), (25000)) ks(k);
CREATE TABLE radius_seq AS
  SELECT qid, r, ARRAY(SELECT id FROM mt WHERE mt.code <~> mq.code <= r ORDER BY id) AS ids
  FROM mq, generate_series(0, 12, 2) r;
RESET ALL;
SELECT budget, count(*) AS knn_cases, count(*) FILTER (WHERE i.dists = s.dists) AS equal,
       min(cardinality(i.dists)) FILTER (WHERE i.k = 25000) AS rows_for_k_above_table
  FROM via_index i JOIN via_seq s USING (qid, k) GROUP BY budget ORDER BY budget;
SELECT count(*) AS radius_cases,
       count(*) FILTER (WHERE b.ids = s.ids AND x.ids = s.ids AND rd.ids = s.ids) AS equal,
       sum(cardinality(s.ids)) > 1000 AS nontrivial
  FROM radius_seq s JOIN radius_bitmap b USING (qid, r) JOIN radius_index x USING (qid, r)
       JOIN radius_read rd USING (qid, r);

-- ORDER BY and a radius qual together, around different centres: rows are rechecked.
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) = 0 AS all_within FROM (
  SELECT id, code FROM mt WHERE code <@ jdsh.ball((SELECT code FROM mq WHERE qid = 2), 10)
  ORDER BY code <~> (SELECT code FROM mq WHERE qid = 3) LIMIT 50) t
  WHERE code <~> (SELECT code FROM mq WHERE qid = 2) > 10;
-- A NULL query orders nothing but still returns rows, as a sequential scan does.
SELECT count(*) FROM (SELECT id FROM mt ORDER BY code <~> NULL LIMIT 7) t;
SELECT count(*) FROM mt WHERE code <@ NULL::bitball;
RESET ALL;

-- Bad input: each case reports its SQLSTATE and message.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE TABLE untyped (code bitcode);
SELECT pg_temp.err(q) FROM (VALUES
  ($$SELECT id FROM mt ORDER BY code <~> '0101'::bitcode LIMIT 1$$),
  ($$SET LOCAL enable_seqscan = off; SELECT id FROM mt ORDER BY code <~> 'x0123456789abcdef01'::bitcode LIMIT 1$$),
  ($$SET LOCAL enable_seqscan = off; SELECT id FROM mt WHERE code <@ jdsh.ball('x0123'::bitcode, 1)$$),
  ($$SELECT jdsh.ball('x0f'::bitcode, -1)$$),
  ($$SET jdsh.mih_probe_budget = -2$$),
  ($$SELECT 'x0f:-2'::bitball$$),
  ($$SELECT 'x0f'::bitball$$),
  ($$SELECT 'x0g:1'::bitball$$),
  ($$SELECT 'x0f:one'::bitball$$),
  ($$SELECT '0101'::bitcode <@ jdsh.ball('01', 1)$$),
  ($$CREATE INDEX ON untyped USING mih (code)$$),
  ($$INSERT INTO untyped VALUES ('0101'), ('011'); CREATE INDEX ON untyped USING mih (code)$$),
  ($$CREATE INDEX ON mt USING mih (code) WITH (substrings = 65)$$),
  ($$CREATE INDEX ON mt USING mih (code) WITH (substrings = 300)$$),
  ($$CREATE INDEX ON mt USING mih (code) WITH (fillfactor = 5)$$),
  ($$CREATE INDEX ON mt USING mih (id)$$),
  ($$SELECT * FROM jdsh.mih_check('mt_pkey')$$),
  ($$SELECT * FROM jdsh.mih_check('mt')$$),
  ($$SELECT * FROM jdsh.mih_info('mt_pkey')$$)
) AS t(q);
INSERT INTO untyped VALUES ('0101');
CREATE INDEX untyped_mih ON untyped USING mih (code);
SELECT pg_temp.err($$INSERT INTO untyped VALUES ('011')$$);
SELECT 'x0f:3'::bitball, jdsh.ball('0101', 2), '0101'::bitcode <@ jdsh.ball('0110', 2), jdsh.ball('0110', 1) @> '0101'::bitcode;

-- Options: an explicit number of substrings gives the same answers.
CREATE INDEX mt_mih8 ON mt USING mih (code) WITH (substrings = 8, fillfactor = 50);
SELECT substrings, substring_bits, chosen_by FROM jdsh.mih_info('mt_mih8');
DROP INDEX mt_mih;
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FILTER (WHERE ARRAY(SELECT mt.code <~> mq.code FROM mt ORDER BY mt.code <~> mq.code LIMIT 10) = s.dists) AS equal
  FROM mq JOIN via_seq s USING (qid) WHERE s.k = 10;
RESET ALL;

-- Lifecycle: inserts overflow bucket pages; DELETE + VACUUM frees them; inserts reuse them.
CREATE TABLE life (id int, code bitcode(64));
INSERT INTO life SELECT i, ((SELECT v FROM centres WHERE c = i % 5) # noise(i))::bitcode(64) FROM generate_series(1, 500) i;
CREATE INDEX life_mih ON life USING mih (code);
SELECT substrings, built_rows, chosen_by FROM jdsh.mih_info('life_mih');
INSERT INTO life SELECT i, ((SELECT v FROM centres WHERE c = i % 5) # noise(i))::bitcode(64) FROM generate_series(501, 30000) i;
SELECT rows, heap_rows, longest_chain > 1 AS overflowed FROM jdsh.mih_check('life_mih');
DELETE FROM life WHERE id > 2000;
VACUUM life;
SELECT rows, heap_rows, dead_entries, free_pages > 0 AS pages_freed FROM jdsh.mih_check('life_mih');
SELECT pg_relation_size('life_mih') AS size_before \gset
INSERT INTO life SELECT i, ((SELECT v FROM centres WHERE c = i % 5) # noise(i))::bitcode(64) FROM generate_series(2001, 12000) i;
SELECT pg_relation_size('life_mih') = :size_before AS reused_free_pages, rows, heap_rows FROM jdsh.mih_check('life_mih');
REINDEX INDEX life_mih;
REINDEX INDEX CONCURRENTLY life_mih;
SELECT rows, heap_rows, longest_chain FROM jdsh.mih_check('life_mih');

-- Unlogged tables get an empty index in their init fork.
CREATE UNLOGGED TABLE ul (id int, code bitcode(16));
CREATE INDEX ul_mih ON ul USING mih (code);
INSERT INTO ul SELECT i, (i * 40503 % 65536)::bit(16)::bitcode FROM generate_series(1, 3000) i;
SET enable_seqscan = off;
SELECT id, code <~> '0000000000000000' AS d FROM ul ORDER BY code <~> '0000000000000000', id LIMIT 3;
RESET ALL;
SELECT rows, heap_rows FROM jdsh.mih_check('ul_mih');

-- The planner: index for k-NN on a large table, a sequential scan on a tiny one.
ANALYZE mt;
EXPLAIN (COSTS OFF) SELECT id FROM mt ORDER BY code <~> 'x0123456789abcdef' LIMIT 10;
CREATE TABLE tiny AS SELECT * FROM mt WHERE id <= 20;
CREATE INDEX ON tiny USING mih (code);
ANALYZE tiny;
EXPLAIN (COSTS OFF) SELECT id FROM tiny ORDER BY code <~> 'x0123456789abcdef' LIMIT 10;

-- A query that reads no column of the index: with sequential scans off and the table all-visible,
-- PostgreSQL 18 answers count(*) by an index-only scan of the mih index (15 does not), which must
-- give one (column-less) tuple per row.
VACUUM ul;
SET enable_seqscan = off;
SELECT count(*) FROM ul;
RESET ALL;

-- VACUUM chooses the tables again once an index holds twice the rows they were chosen for,
-- within maintenance_work_mem: with too little it says so (tests/cluster/mih_crash_retune.sh
-- checks the message) and leaves them; with enough it retunes.
CREATE TABLE grown (id int, code bitcode(64));
INSERT INTO grown SELECT i, ('x' || left(md5(i::text), 16))::bitcode FROM generate_series(1, 20000) i;
CREATE INDEX grown_mih ON grown USING mih (code);
INSERT INTO grown SELECT i, ('x' || left(md5(i::text), 16))::bitcode FROM generate_series(20001, 45000) i;
SET client_min_messages = warning;
SET maintenance_work_mem = '1MB';
VACUUM grown;
SELECT built_rows, chosen_by FROM jdsh.mih_info('grown_mih');
RESET maintenance_work_mem;
VACUUM grown;
RESET client_min_messages;
SELECT built_rows, chosen_by FROM jdsh.mih_info('grown_mih');
SELECT rows, heap_rows FROM jdsh.mih_check('grown_mih');
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE i.d = s.d) AS equal, count(*) AS queries FROM
  (SELECT q, ARRAY(SELECT code <~> q FROM grown ORDER BY code <~> q LIMIT 10) AS d
     FROM (SELECT ('x' || left(md5((-i)::text), 16))::bitcode AS q FROM generate_series(1, 20) i) qs) i
  JOIN (SELECT q, ARRAY(SELECT g.code <~> q FROM grown g ORDER BY (g.code <~> q) + 0 LIMIT 10) AS d
     FROM (SELECT ('x' || left(md5((-i)::text), 16))::bitcode AS q FROM generate_series(1, 20) i) qs) s
  USING (q);
RESET ALL;
