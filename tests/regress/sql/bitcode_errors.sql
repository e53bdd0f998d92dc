-- Bad input: each case reports its SQLSTATE and message (never a crash or a panic text).
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.err(q) FROM (VALUES
  -- malformed literals
  ($$SELECT '012'::bitcode$$),
  ($$SELECT ''::bitcode$$),
  ($$SELECT 'x'::bitcode$$),
  ($$SELECT 'xg0'::bitcode$$),
  ($$SELECT ' 0101'::bitcode$$),
  ($$SELECT '0101 '::bitcode$$),
  ($$SELECT 'b0101'::bitcode$$),
  -- overlong
  ($$SELECT repeat('1', 4097)::bitcode$$),
  ($$SELECT ('x' || repeat('f', 1025))::bitcode$$),
  ($$SELECT decode(repeat('ff', 513), 'hex')::bitcode$$),
  ($$SELECT array_fill(1::real, ARRAY[4097])::bitcode$$),
  -- type modifiers
  ($$SELECT '1'::bitcode(0)$$),
  ($$SELECT '1'::bitcode(4097)$$),
  ($$SELECT '0101'::bitcode(3)$$),
  ($$SELECT 'xff'::bitcode(4)$$),
  ($$CREATE TEMP TABLE tm (c bitcode(8)); INSERT INTO tm VALUES ('0101')$$),
  -- codes of different lengths
  ($$SELECT '01'::bitcode <~> '011'$$),
  ($$SELECT jdsh.hamming('01', '011')$$),
  ($$SELECT '01'::bitcode # '011'$$),
  ($$SELECT '01'::bitcode & '011'$$),
  ($$SELECT '01'::bitcode | '011'$$),
  -- binarization
  ($$SELECT ARRAY['NaN', 1]::real[]::bitcode$$),
  ($$SELECT jdsh.binarize(ARRAY[1, 'NaN']::float8[])$$),
  ($$SELECT '{}'::real[]::bitcode$$),
  ($$SELECT ARRAY[1, NULL]::real[]::bitcode$$),
  ($$SELECT '{{1,2},{3,4}}'::real[]::bitcode$$),
  -- casts
  ($$SELECT '1'::bitcode::bigint$$),
  ($$SELECT ''::bytea::bitcode$$),
  ($$SELECT B''::bitcode$$),
  ($$SELECT 5::bigint::bitcode(32)$$)
) v(q);
-- the error position is reported for literals
SELECT '0120'::bitcode;
