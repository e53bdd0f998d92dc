// In-server tests (`cargo pgrx test`): properties checked through SQL in a live backend against
// reference implementations written here, on random codes. The exact-output SQL tests (errors,
// NULLs, casts) are in `tests/regress/`.

use pgrx::prelude::*;

/// The project's one seeded generator: the tests are compiled into the extension library for
/// `cargo pgrx test`, where dev-dependencies such as `rand` are not available.
use jdsh_core::rng::SeededRng as Rng;

/// A random code as a string of 0/1, each bit set with probability `p`.
fn random_bits(rng: &mut Rng, n: usize, p: f64) -> String {
    (0..n).map(|_| if rng.next_f64() <= p { '1' } else { '0' }).collect()
}

/// Reference Hamming distance: differing characters.
fn ref_hamming(a: &str, b: &str) -> i32 {
    a.chars().zip(b.chars()).filter(|(x, y)| x != y).count() as i32
}

const LENGTHS: [usize; 12] = [1, 3, 8, 16, 32, 63, 64, 65, 128, 256, 1000, 4096];

fn values_list(rows: &[(String, String)]) -> String {
    rows.iter()
        .enumerate()
        .map(|(i, (a, b))| format!("({i}, '{a}', '{b}')"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[pg_test]
fn hamming_matches_reference_on_random_codes() {
    let mut rng = Rng::new(1);
    for n in LENGTHS {
        // Sparse, dense and balanced codes, so distances span the whole range.
        let rows: Vec<(String, String)> = (0..40)
            .map(|i| {
                let p = [0.05, 0.5, 0.95][i % 3];
                (random_bits(&mut rng, n, p), random_bits(&mut rng, n, 0.5))
            })
            .collect();
        let sql = format!(
            "SELECT array_agg(a::bitcode <~> b::bitcode ORDER BY i) || \
                    array_agg(jdsh.hamming(a::bitcode, b::bitcode) ORDER BY i) || \
                    array_agg(jdsh.bit_count(a::bitcode # b::bitcode) ORDER BY i) \
             FROM (VALUES {}) v(i, a, b)",
            values_list(&rows)
        );
        let got: Vec<i32> = Spi::get_one::<Vec<i32>>(&sql).unwrap().unwrap();
        let want: Vec<i32> = rows.iter().map(|(a, b)| ref_hamming(a, b)).collect();
        let want3: Vec<i32> = want.iter().chain(&want).chain(&want).copied().collect();
        assert_eq!(got, want3, "distances at {n} bits");
    }
}

#[pg_test]
fn bit_functions_match_reference() {
    let mut rng = Rng::new(2);
    for n in LENGTHS {
        let a = random_bits(&mut rng, n, 0.3);
        let b = random_bits(&mut rng, n, 0.6);
        let row = Spi::get_two::<i32, i32>(&format!(
            "SELECT jdsh.bit_count('{a}'), jdsh.bit_length('{a}')"
        ))
        .unwrap();
        assert_eq!(row, (Some(a.matches('1').count() as i32), Some(n as i32)));
        let ops = Spi::get_three::<String, String, String>(&format!(
            "SELECT ('{a}'::bitcode & '{b}')::text, ('{a}'::bitcode | '{b}')::text, (~'{a}'::bitcode)::text"
        ))
        .unwrap();
        let zip = |f: fn(bool, bool) -> bool| -> String {
            a.chars().zip(b.chars()).map(|(x, y)| if f(x == '1', y == '1') { '1' } else { '0' }).collect()
        };
        let not: String = a.chars().map(|x| if x == '1' { '0' } else { '1' }).collect();
        assert_eq!(ops, (Some(zip(|x, y| x && y)), Some(zip(|x, y| x || y)), Some(not)), "bitwise at {n} bits");
    }
}

#[pg_test]
fn text_round_trips_in_bits_and_hex() {
    let mut rng = Rng::new(3);
    for n in LENGTHS {
        let a = random_bits(&mut rng, n, 0.5);
        let back = Spi::get_one::<String>(&format!("SELECT '{a}'::bitcode::text")).unwrap();
        assert_eq!(back.as_deref(), Some(a.as_str()));
        Spi::run("SET LOCAL jdsh.bitcode_output = hex").unwrap();
        let hex = Spi::get_one::<String>(&format!("SELECT '{a}'::bitcode::text")).unwrap().unwrap();
        Spi::run("RESET jdsh.bitcode_output").unwrap();
        if n % 4 == 0 {
            assert!(hex.starts_with('x') && hex.len() == 1 + n / 4, "hex form {hex}");
        } else {
            assert_eq!(hex, a, "lengths that are not a multiple of 4 stay in bits");
        }
        let again = Spi::get_one::<String>(&format!("SELECT '{hex}'::bitcode::text")).unwrap();
        assert_eq!(again.as_deref(), Some(a.as_str()));
    }
}

#[pg_test]
fn casts_round_trip_on_random_codes() {
    let mut rng = Rng::new(4);
    for n in LENGTHS {
        let a = random_bits(&mut rng, n, 0.5);
        let sql = format!(
            "SELECT bool_and(x) FROM (VALUES \
               ('{a}'::bitcode::bit({n})::bitcode = '{a}'::bitcode), \
               ('{a}'::bitcode::varbit::bitcode = '{a}'::bitcode), \
               ('{a}'::bitcode::varbit::text = '{a}'), \
               ('{a}'::bitcode::real[]::bitcode = '{a}'::bitcode), \
               (jdsh.binarize('{a}'::bitcode::real[]::float8[]) = '{a}'::bitcode), \
               (length('{a}'::bitcode::bytea) = ({n} + 7) / 8) \
             ) v(x)"
        );
        assert_eq!(Spi::get_one::<bool>(&sql).unwrap(), Some(true), "casts at {n} bits");
        if n % 8 == 0 {
            let sql = format!("SELECT '{a}'::bitcode::bytea::bitcode = '{a}'::bitcode");
            assert_eq!(Spi::get_one::<bool>(&sql).unwrap(), Some(true), "bytea at {n} bits");
        }
    }
    // int8: agrees with PostgreSQL's own bit(64) <-> bigint casts, sign bit first.
    for _ in 0..50 {
        let v = rng.next_u64() as i64;
        let sql = format!(
            "SELECT ({v})::bigint::bitcode(64)::bigint = ({v}) AND ({v})::bigint::bitcode::bit(64) = ({v})::bigint::bit(64)"
        );
        assert_eq!(Spi::get_one::<bool>(&sql).unwrap(), Some(true), "int8 {v}");
    }
}

#[pg_test]
fn order_group_and_hash_agree_with_reference() {
    let mut rng = Rng::new(5);
    // Mixed lengths and many duplicates: a total order, and equality only for equal lengths.
    let mut codes: Vec<String> = Vec::new();
    for i in 0..300 {
        let n = [3, 4, 5, 64][i % 4];
        codes.push(random_bits(&mut rng, n, 0.5));
    }
    let list = codes.iter().map(|c| format!("('{c}')")).collect::<Vec<_>>().join(",");
    Spi::run(&format!("CREATE TEMP TABLE codes AS SELECT c::bitcode AS c FROM (VALUES {list}) v(c)")).unwrap();

    let mut sorted = codes.clone();
    sorted.sort();
    let got = Spi::get_one::<Vec<String>>("SELECT array_agg(c::text ORDER BY c) FROM codes").unwrap().unwrap();
    assert_eq!(got, sorted, "ORDER BY matches string order");

    let mut distinct = sorted.clone();
    distinct.dedup();
    for method in ["hashagg", "sort"] {
        let setting = if method == "hashagg" { "on" } else { "off" };
        Spi::run(&format!("SET LOCAL enable_hashagg = {setting}")).unwrap();
        let n = Spi::get_one::<i64>("SELECT count(*) FROM (SELECT c FROM codes GROUP BY c) g").unwrap();
        assert_eq!(n, Some(distinct.len() as i64), "GROUP BY via {method}");
    }
    // A hash join and a merge join find the same pairs as a nested loop over the reference.
    let want: i64 = codes.iter().map(|a| codes.iter().filter(|b| *b == a).count() as i64).sum();
    for (hash, merge) in [("on", "off"), ("off", "on")] {
        Spi::run(&format!("SET LOCAL enable_hashjoin = {hash}; SET LOCAL enable_mergejoin = {merge}; SET LOCAL enable_nestloop = off")).unwrap();
        let n = Spi::get_one::<i64>("SELECT count(*) FROM codes a JOIN codes b ON a.c = b.c").unwrap();
        assert_eq!(n, Some(want), "join with hashjoin={hash}");
    }
}

#[pg_test]
fn top_k_by_distance_matches_reference() {
    let mut rng = Rng::new(6);
    let codes: Vec<String> = (0..2000).map(|_| random_bits(&mut rng, 64, 0.5)).collect();
    let list = codes.iter().enumerate().map(|(i, c)| format!("({i}, '{c}')")).collect::<Vec<_>>().join(",");
    Spi::run(&format!("CREATE TEMP TABLE t AS SELECT i, c::bitcode(64) AS c FROM (VALUES {list}) v(i, c)")).unwrap();
    for _ in 0..10 {
        let q = random_bits(&mut rng, 64, 0.5);
        let got = Spi::get_one::<Vec<i32>>(&format!(
            "SELECT array_agg(d) FROM (SELECT c <~> '{q}' AS d FROM t ORDER BY c <~> '{q}', i LIMIT 25) s"
        ))
        .unwrap()
        .unwrap();
        let mut want: Vec<i32> = codes.iter().map(|c| ref_hamming(c, &q)).collect();
        want.sort();
        want.truncate(25);
        assert_eq!(got, want);
    }
}

/// Flips each bit of `centre` with probability `p`.
fn noisy(rng: &mut Rng, centre: &str, p: f64) -> String {
    let flips = random_bits(rng, centre.len(), p);
    centre.chars().zip(flips.chars()).map(|(c, f)| if (c == '1') != (f == '1') { '1' } else { '0' }).collect()
}

/// The plan of `query`, as EXPLAIN (COSTS OFF) prints it.
fn plan(query: &str) -> String {
    Spi::connect(|client| {
        let t = client.select(&format!("EXPLAIN (COSTS OFF) {query}"), None, &[]).unwrap();
        t.map(|row| row.get::<String>(1).unwrap().unwrap_or_default()).collect::<Vec<_>>().join("\n")
    })
}

/// The mih index answers k-NN and radius queries exactly as the reference (a brute-force
/// ranking here), for random and clustered codes of 16..256 bits, with k from 1 to past the
/// table size and radii 0..4, after a build and after inserts into the built index. Each query
/// shape is checked to be planned as a scan of the mih index (index scan for k-NN, index and
/// bitmap scans for the radius), so the comparison is of the index, not of a fallback.
#[pg_test]
fn mih_index_equals_sequential_scan() {
    for &nbits in &[16usize, 32, 64, 128, 256] {
        for clustered in [false, true] {
            let mut rng = Rng::new(nbits as u64 * 31 + clustered as u64);
            let centres: Vec<String> = (0..20).map(|_| random_bits(&mut rng, nbits, 0.5)).collect();
            let code = |rng: &mut Rng| {
                if clustered {
                    let c = (rng.next_u64() % 20) as usize;
                    noisy(rng, &centres[c], 0.1)
                } else {
                    random_bits(rng, nbits, 0.5)
                }
            };
            let rows: Vec<String> = (0..3000).map(|_| code(&mut rng)).collect();
            let values = |range: std::ops::Range<usize>| {
                range.map(|i| format!("({i}, '{}')", rows[i])).collect::<Vec<_>>().join(", ")
            };
            Spi::run(&format!("DROP TABLE IF EXISTS mp; CREATE TABLE mp (id int, code bitcode({nbits}))")).unwrap();
            Spi::run(&format!("INSERT INTO mp VALUES {}", values(0..2000))).unwrap();
            Spi::run("CREATE INDEX mp_mih ON mp USING mih (code)").unwrap();
            // Rows added after the build go through aminsert.
            Spi::run(&format!("INSERT INTO mp VALUES {}", values(2000..3000))).unwrap();
            for qi in 0..8 {
                let q = if qi % 2 == 0 { rows[(rng.next_u64() % 3000) as usize].clone() } else { code(&mut rng) };
                let mut all: Vec<i32> = rows.iter().map(|r| ref_hamming(r, &q)).collect();
                all.sort_unstable();
                for k in [1usize, 10, 100, 3500] {
                    Spi::run("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off").unwrap();
                    let knn = format!("SELECT code <~> '{q}' AS d FROM mp ORDER BY code <~> '{q}' LIMIT {k}");
                    if qi == 0 {
                        let p = plan(&knn);
                        assert!(p.contains("Index Scan using mp_mih"), "k-NN not planned on the index:\n{p}");
                    }
                    let got: Vec<i32> = Spi::get_one::<Vec<i32>>(&format!("SELECT array_agg(d) FROM ({knn}) t"))
                    .unwrap()
                    .unwrap();
                    let want: Vec<i32> = all.iter().copied().take(k).collect();
                    assert_eq!(got, want, "{nbits} bits, clustered {clustered}, k {k}");
                }
                for r in 0..=4 {
                    let mut want: Vec<i32> =
                        (0..3000).filter(|&i| ref_hamming(&rows[i], &q) <= r).map(|i| i as i32).collect();
                    want.sort_unstable();
                    for (scan, node) in
                        [("enable_bitmapscan = off", "Index Scan using mp_mih"), ("enable_indexscan = off", "Bitmap Index Scan on mp_mih")]
                    {
                        Spi::run(&format!("SET LOCAL enable_seqscan = off; SET LOCAL {scan}")).unwrap();
                        if qi == 0 && r == 0 {
                            let p = plan(&format!("SELECT id FROM mp WHERE code <@ jdsh.ball('{q}', {r})"));
                            assert!(p.contains(node), "radius query with {scan} not planned as {node}:\n{p}");
                        }
                        let got: Vec<i32> = Spi::get_one::<Vec<i32>>(&format!(
                            "SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM mp WHERE code <@ jdsh.ball('{q}', {r})"
                        ))
                        .unwrap()
                        .unwrap();
                        assert_eq!(got, want, "{nbits} bits, clustered {clustered}, radius {r}, {scan}");
                    }
                    Spi::run("RESET enable_indexscan; RESET enable_bitmapscan").unwrap();
                }
            }
            let (rows_indexed, heap_rows) =
                Spi::get_two::<i64, i64>("SELECT rows, heap_rows FROM jdsh.mih_check('mp_mih')").unwrap();
            assert_eq!((rows_indexed, heap_rows), (Some(3000), Some(3000)));
        }
    }
}
