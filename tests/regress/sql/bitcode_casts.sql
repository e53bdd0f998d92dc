-- Casts to and from bit, varbit, bytea, bigint, real[] and double precision[].
SELECT '1011'::bitcode::bit(4) AS to_bit, '1011'::bitcode::varbit AS to_varbit, B'10110'::bitcode AS from_bit,
       B'101'::varbit::bitcode AS from_varbit;
CREATE TEMP TABLE casts (c bitcode(4));
INSERT INTO casts VALUES (B'1010');            -- assignment cast from bit
INSERT INTO casts SELECT B'0101'::varbit;      -- and from varbit
SELECT * FROM casts;
SELECT '10110000'::bitcode::bytea AS to_bytea, '\xb0ff'::bytea::bitcode AS from_bytea,
       '101'::bitcode::bytea AS padded_to_a_byte;
SELECT (-1)::bigint::bitcode AS minus_one, 1::bigint::bitcode(64)::bigint AS one,
       (-9223372036854775808)::bigint::bitcode = ('1' || repeat('0', 63))::bitcode AS sign_bit_first,
       1234567890123::bigint::bitcode::bit(64) = 1234567890123::bigint::bit(64) AS same_as_bit64;
SELECT ARRAY[0.5, -1, 0, 2]::real[]::bitcode AS from_real, ARRAY[1e-30, -0.0, 3]::float8[]::bitcode AS from_float8,
       jdsh.binarize(ARRAY[1, -1, 1]::real[]) AS binarize_real, jdsh.binarize(ARRAY[-1, 1]::float8[]) AS binarize_float8,
       '101'::bitcode::real[] AS to_real;
SELECT jdsh.binarize('101'::bitcode::real[]) = '101' AS sign_round_trip;
SELECT ARRAY[1, 2]::real[]::bitcode(2) AS with_typmod;
-- explicit casts between lengths are errors, not truncation (codes of another length come from another model)
SELECT '10110'::bitcode::bitcode(4);
SELECT B'10110'::bitcode(4);
SELECT ARRAY[1, 2, 3]::real[]::bitcode(2);
