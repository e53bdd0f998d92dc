-- Text input and output, type modifiers, NULLs.
SELECT '0110'::bitcode, 'x3fa0'::bitcode, 'X3FA0'::bitcode AS upper_hex;
SELECT '1'::bitcode AS one_bit, repeat('10', 2048)::bitcode = repeat('10', 2048)::bitcode AS max_len_ok;
SELECT jdsh.bit_length(repeat('1', 4096)::bitcode) AS max_bits;
SET jdsh.bitcode_output = hex;
SELECT 'x3fa0'::bitcode AS hex_out, '011'::bitcode AS not_multiple_of_4_stays_bits, '1111'::bitcode;
SHOW jdsh.bitcode_output;
RESET jdsh.bitcode_output;
SELECT 'x00ff'::bitcode AS back_in_bits;
-- type modifier
SELECT '0101'::bitcode(4), 'xff'::bitcode(8);
CREATE TEMP TABLE io (id int, c bitcode(8));
INSERT INTO io VALUES (1, '01010101'), (2, 'xa5'), (3, NULL);
SELECT id, c, jdsh.bit_length(c) FROM io ORDER BY id;
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'io'::regclass AND attname = 'c';
SELECT pg_typeof('0'::bitcode), pg_column_size('x0123456789abcdef'::bitcode) AS bytes_for_64_bits;
-- binary I/O: a COPY round trip in binary format goes through send and recv
\copy io TO '/tmp/jdsh_regress_io.bin' WITH (FORMAT binary)
CREATE TEMP TABLE io2 (id int, c bitcode(8));
\copy io2 FROM '/tmp/jdsh_regress_io.bin' WITH (FORMAT binary)
SELECT count(*) AS same_rows FROM io JOIN io2 USING (id) WHERE io.c = io2.c OR (io.c IS NULL AND io2.c IS NULL);
SELECT bitcode_send('1011'::bitcode) AS wire_format;
-- NULLs propagate through every STRICT function and operator
SELECT NULL::bitcode <~> '1' IS NULL AS d, jdsh.hamming(NULL, '1') IS NULL AS h,
       jdsh.bit_count(NULL) IS NULL AS bc, ('1'::bitcode # NULL) IS NULL AS x,
       (NULL::bitcode = '1') IS NULL AS eq, jdsh.binarize(NULL::real[]) IS NULL AS b;
