-- Exact top-10 sequential scan: jdsh bitcode(64) <~> versus pgvector bit(64) <~> versus plain
-- bit_count(a # b) on bit(64), on the same 1,000,000 codes and the same 100 queries, in one run.
-- Run through bench/seqscan.sh. Times are server-side (clock_timestamp around EXECUTE), so the
-- client round trip is not in them; every query runs once per method, methods interleaved.
\set ON_ERROR_STOP 1
\timing off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS jdsh;
CREATE EXTENSION IF NOT EXISTS vector;

-- 64 random bits as bigint.
CREATE OR REPLACE FUNCTION pg_temp.rand64() RETURNS bigint LANGUAGE sql VOLATILE AS
$$ SELECT ((random() * 4294967296)::bigint << 32) # (random() * 4294967296)::bigint $$;
-- A mask with each bit set with probability p.
CREATE OR REPLACE FUNCTION pg_temp.noise64(p float8) RETURNS bigint LANGUAGE sql VOLATILE AS
$$ SELECT coalesce(bit_or(1::bigint << b), 0) FROM generate_series(0, 63) b WHERE random() < p $$;

DO $$ BEGIN PERFORM setseed(0.42); END $$;

DROP TABLE IF EXISTS bench_src, bench_jdsh, bench_pgv, bench_queries;
CREATE TABLE bench_src (dataset text, id int, v bigint);
-- uniform: 1M independent random codes
INSERT INTO bench_src SELECT 'uniform', i, pg_temp.rand64() FROM generate_series(1, :n) i;
-- clustered: noisy copies (p = 0.1 per bit) of 1,000 random centres
CREATE TEMP TABLE centres AS SELECT k, pg_temp.rand64() AS c FROM generate_series(0, 999) k;
INSERT INTO bench_src
SELECT 'clustered', i, c # pg_temp.noise64(0.1)
FROM generate_series(1, :n) i JOIN centres ON k = i % 1000;

CREATE TABLE bench_jdsh AS SELECT dataset, id, v::bitcode(64) AS code FROM bench_src;
CREATE TABLE bench_pgv AS SELECT dataset, id, v::bit(64) AS code FROM bench_src;
-- queries not in the table: fresh random codes, and fresh noisy copies of centres
CREATE TABLE bench_queries AS
SELECT 'uniform' AS dataset, q, pg_temp.rand64() AS v FROM generate_series(1, :nq) q
UNION ALL
SELECT 'clustered', q, (SELECT c FROM centres WHERE k = (q * 7919) % 1000) # pg_temp.noise64(0.1)
FROM generate_series(1, :nq) q;
VACUUM ANALYZE bench_jdsh;
VACUUM ANALYZE bench_pgv;

-- Warm the buffer cache for both tables.
SELECT count(*) FROM bench_jdsh WHERE jdsh.bit_count(code) >= 0;
SELECT count(*) FROM bench_pgv WHERE bit_count(code) >= 0;

CREATE OR REPLACE FUNCTION pg_temp.time_ms(sql text, q anyelement, ds text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  t0 := clock_timestamp();
  EXECUTE sql USING q, ds;
  RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END $$;

-- Same answers? (distance multisets of the top 10 agree between all three methods)
SELECT dataset, count(*) FILTER (WHERE a IS DISTINCT FROM b OR a IS DISTINCT FROM c) AS mismatching_queries
FROM (
  SELECT qq.dataset,
    (SELECT array_agg(d) FROM (SELECT code <~> qq.v::bitcode(64) d FROM bench_jdsh WHERE dataset = qq.dataset ORDER BY 1 LIMIT 10) s) a,
    (SELECT array_agg(d::int) FROM (SELECT code <~> qq.v::bit(64) d FROM bench_pgv WHERE dataset = qq.dataset ORDER BY 1 LIMIT 10) s) b,
    (SELECT array_agg(d::int) FROM (SELECT bit_count(code # qq.v::bit(64)) d FROM bench_pgv WHERE dataset = qq.dataset ORDER BY 1 LIMIT 10) s) c
  FROM bench_queries qq WHERE qq.q <= 10) t
GROUP BY dataset ORDER BY dataset;

CREATE TEMP TABLE timings (parallel text, dataset text, method text, q int, ms float8);
CREATE OR REPLACE PROCEDURE pg_temp.run(label text) LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM bench_queries ORDER BY q, dataset LOOP
    INSERT INTO timings VALUES (label, r.dataset, 'jdsh bitcode <~>', r.q, pg_temp.time_ms(
      'SELECT id FROM bench_jdsh WHERE dataset = $2 ORDER BY code <~> $1 LIMIT 10', r.v::bitcode(64), r.dataset));
    INSERT INTO timings VALUES (label, r.dataset, 'pgvector bit <~>', r.q, pg_temp.time_ms(
      'SELECT id FROM bench_pgv WHERE dataset = $2 ORDER BY code <~> $1 LIMIT 10', r.v::bit(64), r.dataset));
    INSERT INTO timings VALUES (label, r.dataset, 'bit_count(a # b)', r.q, pg_temp.time_ms(
      'SELECT id FROM bench_pgv WHERE dataset = $2 ORDER BY bit_count(code # $1) LIMIT 10', r.v::bit(64), r.dataset));
  END LOOP;
END $$;

SET max_parallel_workers_per_gather = 0;
CALL pg_temp.run('1 process');
RESET max_parallel_workers_per_gather;
CALL pg_temp.run('parallel (default)');

\echo
\echo Exact top-10 sequential scan over :n codes of 64 bits, :nq queries each (ms, server side)
SELECT parallel, dataset, method,
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
  round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p95_ms
FROM timings GROUP BY 1, 2, 3 ORDER BY 1, 2, 4;

\echo Speed-up of jdsh (ratio of p50 times; > 1 means jdsh is faster)
WITH p AS (
  SELECT parallel, dataset, method, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50
  FROM timings GROUP BY 1, 2, 3)
SELECT j.parallel, j.dataset,
  round((v.p50 / j.p50)::numeric, 2) AS vs_pgvector,
  round((b.p50 / j.p50)::numeric, 2) AS vs_bit_count
FROM p j JOIN p v USING (parallel, dataset) JOIN p b USING (parallel, dataset)
WHERE j.method LIKE 'jdsh%' AND v.method LIKE 'pgvector%' AND b.method LIKE 'bit_count%'
ORDER BY 1, 2;
