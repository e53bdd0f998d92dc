-- The bitcode type: 1..4096 bits packed in 64-bit words, with Hamming distance and the usual
-- comparison, hashing and cast machinery. Written by hand (not generated) so that every name,
-- volatility and operator-class entry of the type is visible in one file.
--
-- The type and its operators live in the extension's schema (public by default) so that
-- `bitcode(64)` and `a <~> b` need no qualification; user-facing functions live in schema jdsh.

CREATE SCHEMA jdsh;
COMMENT ON SCHEMA jdsh IS 'jdsh functions: Hamming helpers, binarization, models and encoders';

CREATE TYPE bitcode;

CREATE FUNCTION bitcode_in(cstring, oid, integer) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bitcode_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_out(bitcode) RETURNS cstring
    AS 'MODULE_PATHNAME', 'bitcode_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME', 'bitcode_typmod_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_typmod_out(integer) RETURNS cstring
    AS 'MODULE_PATHNAME', 'bitcode_typmod_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_recv(internal, oid, integer) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bitcode_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_send(bitcode) RETURNS bytea
    AS 'MODULE_PATHNAME', 'bitcode_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE bitcode (
    INPUT = bitcode_in,
    OUTPUT = bitcode_out,
    TYPMOD_IN = bitcode_typmod_in,
    TYPMOD_OUT = bitcode_typmod_out,
    RECEIVE = bitcode_recv,
    SEND = bitcode_send,
    INTERNALLENGTH = VARIABLE,
    -- Codes are short and incompressible: never compress, never move out of line, never use a
    -- short header. Reading a code is then a pointer cast, which the distance kernel relies on.
    STORAGE = plain,
    ALIGNMENT = int4,
    CATEGORY = 'V'
);
COMMENT ON TYPE bitcode IS 'binary hash code of 1..4096 bits; bitcode(n) fixes the length';

-- Length coercion behind bitcode(n): errors on any other length (no silent truncation).
CREATE FUNCTION bitcode(bitcode, integer, boolean) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bitcode_coerce' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (bitcode AS bitcode) WITH FUNCTION bitcode(bitcode, integer, boolean) AS IMPLICIT;

------------------------------------------------------------------------------------------------
-- Hamming distance and bit functions

CREATE FUNCTION bitcode_hamming(bitcode, bitcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'bitcode_hamming' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- <~> is Hamming distance, as in pgvector (pgvecto.rs spells it <->).
CREATE OPERATOR <~> (
    LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_hamming, COMMUTATOR = <~>
);
COMMENT ON OPERATOR <~> (bitcode, bitcode) IS 'Hamming distance (number of differing bits)';

CREATE FUNCTION jdsh.hamming(bitcode, bitcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'bitcode_hamming' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION jdsh.hamming(bitcode, bitcode) IS 'Hamming distance, the same as a <~> b';
CREATE FUNCTION jdsh.bit_count(bitcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'bitcode_bit_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION jdsh.bit_count(bitcode) IS 'number of set bits';
CREATE FUNCTION jdsh.bit_length(bitcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'bitcode_bit_length' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION jdsh.bit_length(bitcode) IS 'length of the code in bits';

------------------------------------------------------------------------------------------------
-- Bitwise operators (same length required)

CREATE FUNCTION bitcode_xor(bitcode, bitcode) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bitcode_xor' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_and(bitcode, bitcode) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bitcode_and' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_or(bitcode, bitcode) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bitcode_or' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_not(bitcode) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bitcode_not' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OPERATOR # (LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_xor, COMMUTATOR = #);
CREATE OPERATOR & (LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_and, COMMUTATOR = &);
CREATE OPERATOR | (LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_or, COMMUTATOR = |);
CREATE OPERATOR ~ (RIGHTARG = bitcode, FUNCTION = bitcode_not);

------------------------------------------------------------------------------------------------
-- Comparison: a total order (lexicographic by bit, a proper prefix first, as for bit), so that
-- UNIQUE, ORDER BY, merge joins and GROUP BY work, also on columns of mixed lengths.

CREATE FUNCTION bitcode_eq(bitcode, bitcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitcode_eq' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_ne(bitcode, bitcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitcode_ne' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_lt(bitcode, bitcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitcode_lt' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_le(bitcode, bitcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitcode_le' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_gt(bitcode, bitcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitcode_gt' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_ge(bitcode, bitcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitcode_ge' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_cmp(bitcode, bitcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'bitcode_cmp' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_hash(bitcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'bitcode_hash' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION bitcode_hash_extended(bitcode, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'bitcode_hash_extended' LANGUAGE C IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE;

CREATE OPERATOR = (
    LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR <> (
    LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR < (
    LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR <= (
    LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR > (
    LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR >= (
    LEFTARG = bitcode, RIGHTARG = bitcode, FUNCTION = bitcode_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel
);

CREATE OPERATOR CLASS bitcode_ops DEFAULT FOR TYPE bitcode USING btree AS
    OPERATOR 1 <,
    OPERATOR 2 <=,
    OPERATOR 3 =,
    OPERATOR 4 >=,
    OPERATOR 5 >,
    FUNCTION 1 bitcode_cmp(bitcode, bitcode);

CREATE OPERATOR CLASS bitcode_ops DEFAULT FOR TYPE bitcode USING hash AS
    OPERATOR 1 =,
    FUNCTION 1 bitcode_hash(bitcode),
    FUNCTION 2 bitcode_hash_extended(bitcode, bigint);

------------------------------------------------------------------------------------------------
-- Casts. Bit order is MSB-first everywhere: bit 0 of a code is the first character of its text,
-- the high bit of its first byte, and the sign bit of its bigint.

CREATE FUNCTION bitcode_to_varbit(bitcode) RETURNS varbit
    AS 'MODULE_PATHNAME', 'bitcode_to_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_to_bit(bitcode) RETURNS bit
    AS 'MODULE_PATHNAME', 'bitcode_to_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode(varbit, integer, boolean) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'varbit_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode(bit, integer, boolean) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'varbit_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_to_bytea(bitcode) RETURNS bytea
    AS 'MODULE_PATHNAME', 'bitcode_to_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode(bytea, integer, boolean) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'bytea_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_to_int8(bitcode) RETURNS bigint
    AS 'MODULE_PATHNAME', 'bitcode_to_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode(bigint, integer, boolean) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'int8_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode(real[], integer, boolean) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'float4_array_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode(double precision[], integer, boolean) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'float8_array_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitcode_to_float4_array(bitcode) RETURNS real[]
    AS 'MODULE_PATHNAME', 'bitcode_to_float4_array' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (bitcode AS varbit) WITH FUNCTION bitcode_to_varbit(bitcode);
CREATE CAST (bitcode AS bit) WITH FUNCTION bitcode_to_bit(bitcode);
CREATE CAST (varbit AS bitcode) WITH FUNCTION bitcode(varbit, integer, boolean) AS ASSIGNMENT;
CREATE CAST (bit AS bitcode) WITH FUNCTION bitcode(bit, integer, boolean) AS ASSIGNMENT;
CREATE CAST (bitcode AS bytea) WITH FUNCTION bitcode_to_bytea(bitcode);
CREATE CAST (bytea AS bitcode) WITH FUNCTION bitcode(bytea, integer, boolean);
CREATE CAST (bitcode AS bigint) WITH FUNCTION bitcode_to_int8(bitcode);
CREATE CAST (bigint AS bitcode) WITH FUNCTION bitcode(bigint, integer, boolean);
CREATE CAST (real[] AS bitcode) WITH FUNCTION bitcode(real[], integer, boolean);
CREATE CAST (double precision[] AS bitcode) WITH FUNCTION bitcode(double precision[], integer, boolean);
CREATE CAST (bitcode AS real[]) WITH FUNCTION bitcode_to_float4_array(bitcode);

-- Binarization by sign, the last step of every hashing network: bit i = (v[i] > 0).
CREATE FUNCTION jdsh.binarize(real[]) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'float4_array_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION jdsh.binarize(double precision[]) RETURNS bitcode
    AS 'MODULE_PATHNAME', 'float8_array_to_bitcode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION jdsh.binarize(real[]) IS 'code with bit i set where element i > 0; NaN, NULL or empty input is an error';
