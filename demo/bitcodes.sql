-- jdsh demo: binary codes and Hamming queries in plain SQL (run by scripts/demo.sh in a fresh
-- database, jdsh_demo).
\pset footer off
CREATE EXTENSION jdsh;

-- Codes as bit strings or hex; <~> is the Hamming distance.
SELECT '0110'::bitcode AS code, 'x3fa0'::bitcode AS from_hex, '0110'::bitcode <~> '1111' AS hamming;

-- A table of 100,000 64-bit codes: noisy copies of 100 "cluster centres".
CREATE TABLE items (id int PRIMARY KEY, centre int, code bitcode(64));
INSERT INTO items
SELECT i, i % 100,
       ('x' || substr(md5((i % 100)::text), 1, 16))::bitcode(64)           -- the centre, xor
       # (('x' || substr(md5(i::text), 1, 16))::bitcode(64)                -- random bits thinned
          & ('x' || substr(md5('mask' || i), 1, 16))::bitcode(64)          -- to one in eight
          & ('x' || substr(md5('thin' || i), 1, 16))::bitcode(64))
FROM generate_series(1, 100000) i;
ANALYZE items;

-- The 5 nearest neighbours of a query code (exact, by Hamming distance).
SELECT id, centre, code <~> ('x' || substr(md5('42'), 1, 16))::bitcode(64) AS distance
FROM items ORDER BY code <~> ('x' || substr(md5('42'), 1, 16))::bitcode(64), id LIMIT 5;

-- Everything within distance 8 of the query, grouped by centre.
SELECT centre, count(*) FROM items
WHERE code <~> ('x' || substr(md5('42'), 1, 16))::bitcode(64) <= 8
GROUP BY centre ORDER BY count(*) DESC LIMIT 3;

-- A Multi-Index Hashing index answers both exactly, without reading every row.
\timing on
CREATE INDEX items_mih ON items USING mih (code);
\timing off
EXPLAIN (COSTS OFF)
SELECT id FROM items ORDER BY code <~> ('x' || substr(md5('42'), 1, 16))::bitcode(64) LIMIT 5;
SELECT id, centre, code <~> ('x' || substr(md5('42'), 1, 16))::bitcode(64) AS distance
FROM items ORDER BY code <~> ('x' || substr(md5('42'), 1, 16))::bitcode(64) LIMIT 5;
SELECT centre, count(*) FROM items
WHERE code <@ jdsh.ball(('x' || substr(md5('42'), 1, 16))::bitcode(64), 8)
GROUP BY centre ORDER BY count(*) DESC LIMIT 3;
SELECT * FROM jdsh.mih_check('items_mih');

-- Bit helpers, bitwise operators and casts.
SELECT jdsh.bit_count(code) AS ones, jdsh.bit_length(code) AS bits, code::bigint AS as_bigint,
       code::bytea AS as_bytea, code # ~code AS all_ones
FROM items WHERE id = 1;
SELECT jdsh.binarize(ARRAY[0.7, -1.2, 0.01, -0.3]::real[]) AS from_a_network_output;

-- Codes are ordered, hashable and unique-able like any scalar.
SELECT count(DISTINCT code) AS distinct_codes FROM items;

-- Bad input is a clear error (each with its SQLSTATE, see the README), never a crash:
\set ON_ERROR_STOP 0
\set VERBOSITY default
SELECT '0102'::bitcode;
SELECT '0101'::bitcode <~> '010';
SELECT jdsh.binarize(ARRAY['NaN']::real[]);
