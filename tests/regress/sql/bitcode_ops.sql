-- Hamming distance, bit functions, bitwise operators, comparison and operator classes.
SELECT '0110'::bitcode <~> '1111'::bitcode AS d, jdsh.hamming('0110', '1111') AS h;
SELECT 'x0123456789abcdef'::bitcode <~> 'xfedcba9876543210'::bitcode AS d64,
       repeat('1', 4096)::bitcode <~> repeat('0', 4096)::bitcode AS d4096,
       repeat('01', 50)::bitcode <~> repeat('10', 50)::bitcode AS d100;
SELECT jdsh.bit_count('10110'), jdsh.bit_length('10110'), jdsh.bit_count(repeat('1', 130)::bitcode);
SELECT '1100'::bitcode # '1010' AS xor, '1100'::bitcode & '1010' AS and, '1100'::bitcode | '1010' AS or,
       ~'1100'::bitcode AS not, ~'101'::bitcode AS not3;
SELECT pg_typeof('1'::bitcode <~> '0'::bitcode);
-- comparison: lexicographic by bit, a proper prefix first
SELECT c FROM (VALUES ('0111'::bitcode), ('1'), ('011'), ('0110'), ('00000'), ('0110')) v(c) ORDER BY c;
SELECT '011'::bitcode < '0110' AS prefix_first, '0110'::bitcode = '0110' AS eq, '0110'::bitcode <> '011' AS ne,
       '1'::bitcode > '0111' AS gt, '0110'::bitcode >= '0110' AS ge, '0110'::bitcode <= '0111' AS le;
SELECT bitcode_cmp('0110', '0111'), bitcode_cmp('0111', '0110'), bitcode_cmp('01', '01');
-- operator classes
SELECT amname, opcname, opcdefault FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
WHERE opcintype = 'bitcode'::regtype ORDER BY amname;
CREATE TEMP TABLE ops (id int, c bitcode(16));
INSERT INTO ops SELECT i, (i % 7)::bit(16)::bitcode FROM generate_series(1, 70) i;
SELECT c, count(*) FROM ops GROUP BY c ORDER BY c;
SET enable_hashagg = off;
SELECT count(DISTINCT c) AS distinct_by_sort FROM ops;
RESET enable_hashagg;
CREATE INDEX ON ops USING btree (c);
CREATE INDEX ON ops USING hash (c);
SET enable_seqscan = off;
SELECT count(*) AS via_btree FROM ops WHERE c = 'x0003';
EXPLAIN (COSTS OFF) SELECT * FROM ops WHERE c = 'x0003';
RESET enable_seqscan;
CREATE TEMP TABLE uniq (c bitcode PRIMARY KEY);
INSERT INTO uniq VALUES ('0101'), ('01010'), ('x6');
INSERT INTO uniq VALUES ('x5');  -- the same code as '0101'
-- hash partitioning uses the extended hash function
CREATE TEMP TABLE parts (c bitcode) PARTITION BY HASH (c);
CREATE TEMP TABLE parts0 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TEMP TABLE parts1 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO parts SELECT ('x' || substr(md5(i::text), 1, 16))::bitcode(64) FROM generate_series(1, 200) i;
SELECT sum(n) = 200 AS all_rows, count(*) = 2 AND bool_and(n > 40) AS both_partitions_used
FROM (SELECT tableoid, count(*) n FROM parts GROUP BY tableoid) s;
-- top-k by distance agrees with an explicit sort on the same values
CREATE TEMP TABLE knn AS SELECT i, ('x' || substr(md5(i::text), 1, 16))::bitcode(64) AS c FROM generate_series(1, 1000) i;
SELECT array_agg(d ORDER BY d) = (SELECT array_agg(d) FROM (SELECT jdsh.bit_count(c # 'x0f0f0f0f0f0f0f0f') d FROM knn ORDER BY 1 LIMIT 10) s) AS same_top10
FROM (SELECT c <~> 'x0f0f0f0f0f0f0f0f' AS d FROM knn ORDER BY c <~> 'x0f0f0f0f0f0f0f0f' LIMIT 10) t;
