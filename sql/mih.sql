-- The mih index access method: exact Hamming k-NN (ORDER BY code <~> q) and radius search
-- (WHERE code <@ jdsh.ball(q, r)) by Multi-Index Hashing, and the bitball type for radius
-- queries.

------------------------------------------------------------------------------------------------
-- bitball: "within Hamming distance r of q"

CREATE TYPE bitball;
CREATE FUNCTION bitball_in(cstring) RETURNS bitball
    AS 'MODULE_PATHNAME', 'bitball_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitball_out(bitball) RETURNS cstring
    AS 'MODULE_PATHNAME', 'bitball_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE bitball (
    INPUT = bitball_in,
    OUTPUT = bitball_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = plain,
    ALIGNMENT = int4
);
COMMENT ON TYPE bitball IS 'Hamming ball: the codes within a radius of a centre code (text form code:radius)';

CREATE FUNCTION jdsh.ball(bitcode, integer) RETURNS bitball
    AS 'MODULE_PATHNAME', 'bitball_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION jdsh.ball(bitcode, integer) IS
    'the codes within Hamming distance r of q: use as code <@ jdsh.ball(q, r)';

CREATE FUNCTION bitcode_in_ball(bitcode, bitball) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitcode_in_ball' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION bitball_contains(bitball, bitcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'bitball_contains' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OPERATOR <@ (
    LEFTARG = bitcode, RIGHTARG = bitball, FUNCTION = bitcode_in_ball,
    COMMUTATOR = @>, RESTRICT = contsel, JOIN = contjoinsel
);
COMMENT ON OPERATOR <@ (bitcode, bitball) IS 'code is within the Hamming ball';
CREATE OPERATOR @> (
    LEFTARG = bitball, RIGHTARG = bitcode, FUNCTION = bitball_contains,
    COMMUTATOR = <@, RESTRICT = contsel, JOIN = contjoinsel
);
COMMENT ON OPERATOR @> (bitball, bitcode) IS 'Hamming ball contains the code';

------------------------------------------------------------------------------------------------
-- The access method

CREATE FUNCTION jdsh.mih_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'mih_handler' LANGUAGE C;
CREATE ACCESS METHOD mih TYPE INDEX HANDLER jdsh.mih_handler;
COMMENT ON ACCESS METHOD mih IS
    'Multi-Index Hashing: exact Hamming k-NN (ORDER BY code <~> q) and radius (code <@ jdsh.ball(q, r)) search';

-- Strategy 1 orders by distance; strategy 2 is the radius predicate. No support functions:
-- the access method knows the bitcode layout.
CREATE OPERATOR CLASS bitcode_hamming_ops DEFAULT FOR TYPE bitcode USING mih AS
    OPERATOR 1 <~> (bitcode, bitcode) FOR ORDER BY integer_ops,
    OPERATOR 2 <@ (bitcode, bitball);

CREATE FUNCTION jdsh.mih_check(index regclass)
    RETURNS TABLE (rows bigint, heap_rows bigint, dead_entries bigint, bucket_pages bigint,
                   free_pages bigint, longest_chain bigint, partial_entries bigint)
    AS 'MODULE_PATHNAME', 'mih_check_wrapper' LANGUAGE C STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION jdsh.mih_check(regclass) IS
    'verifies a mih index (pages, chains, entries) against its table; raises XX002 on corruption';
REVOKE ALL ON FUNCTION jdsh.mih_check(regclass) FROM PUBLIC;

CREATE FUNCTION jdsh.mih_info(index regclass)
    RETURNS TABLE (substrings integer, substring_bits integer[], buckets_per_table bigint,
                   built_rows bigint, chosen_by text, probe_budget integer,
                   probe_budget_top100 integer)
    AS 'MODULE_PATHNAME', 'mih_info_wrapper' LANGUAGE C STRICT STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION jdsh.mih_info(regclass) IS
    'layout of a mih index: substrings (hash tables) and their bits, buckets, the rows they were written for (at build, or at the VACUUM that chose them again once the index held twice as many), what chose the number of substrings, and the probe budget (percent of a whole-table read a search may spend probing before it reads instead; probe_budget_top100: the budget once a search has returned 10 rows and is asked for more, NULL for none)';
