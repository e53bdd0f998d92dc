//! In-memory tests of the whole index: results equal a brute-force scan for random and clustered
//! codes of several lengths, after build, inserts and vacuum; structure checks; probing stays
//! sub-linear on clustered data; corrupt pages are reported as corruption, never a panic.

use super::layout::{
    bucket_page, meta_page, row_page, BlockNo, Bucket, MihError, Params, RowPage, Tables, Tid,
    DEFAULT_PROBE_BUDGET, INVALID_BLOCK, NEVER_READ, PAGE_HEADER,
};
use super::{MemStore, Mih, PageGuard, PageStore, Search};
use crate::code::{hamming, storage_bytes};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_code(rng: &mut StdRng, nbits: u32) -> Vec<u8> {
    let mut c = vec![0u8; storage_bytes(nbits)];
    for i in 0..nbits {
        if rng.random_bool(0.5) {
            c[(i / 8) as usize] |= 0x80 >> (i % 8);
        }
    }
    c
}

fn noisy(rng: &mut StdRng, centre: &[u8], nbits: u32, p: f64) -> Vec<u8> {
    let mut c = centre.to_vec();
    for i in 0..nbits {
        if rng.random_bool(p) {
            c[(i / 8) as usize] ^= 0x80 >> (i % 8);
        }
    }
    c
}

/// `n` codes: uniform when `centres == 0`, else noisy copies (p = 0.1) of `centres` centres.
fn dataset(seed: u64, nbits: u32, n: usize, centres: usize) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cs: Vec<Vec<u8>> = (0..centres).map(|_| random_code(&mut rng, nbits)).collect();
    (0..n)
        .map(|_| {
            if centres == 0 {
                random_code(&mut rng, nbits)
            } else {
                let c = rng.random_range(0..centres);
                noisy(&mut rng, &cs[c], nbits, 0.1)
            }
        })
        .collect()
}

pub(crate) fn tid(i: usize) -> Tid {
    Tid::new((i / 100) as u32, (i % 100) as u16 + 1)
}

fn build<'a>(store: &'a MemStore, nbits: u32, codes: &[Vec<u8>], m: Option<u32>) -> Mih<&'a MemStore> {
    let params = Params::choose(nbits, codes.len() as u64, m, 90).unwrap();
    let flat: Vec<u8> = codes.concat();
    let tids: Vec<Tid> = (0..codes.len()).map(tid).collect();
    Mih::build(store, params, DEFAULT_PROBE_BUDGET, None, &flat, &tids, |_| {}).unwrap()
}

/// Sorted distances of the `k` nearest rows by brute force, among `live` rows.
fn brute(codes: &[Vec<u8>], live: &[bool], q: &[u8], k: usize) -> Vec<u32> {
    let mut d: Vec<u32> = codes.iter().zip(live).filter(|(_, &l)| l).map(|(c, _)| hamming(c, q)).collect();
    d.sort_unstable();
    d.truncate(k);
    d
}

fn knn(mih: &Mih<&MemStore>, codes: &[Vec<u8>], q: &[u8], k: usize) -> Vec<u32> {
    take(&mut Search::new(mih, q, None).unwrap(), mih, codes, q, k)
}

/// The distances of the next `k` rows of `s` (fewer if it runs out), each checked against the
/// row's code and in non-decreasing order.
fn take(s: &mut Search, mih: &Mih<&MemStore>, codes: &[Vec<u8>], q: &[u8], k: usize) -> Vec<u32> {
    let mut out = Vec::new();
    let mut last = 0;
    while out.len() < k {
        match s.next(mih).unwrap() {
            Some((t, d)) => {
                let i = (t.block as usize) * 100 + t.offset as usize - 1;
                assert_eq!(hamming(&codes[i], q), d, "reported distance is the true one");
                assert!(d >= last, "non-decreasing distances");
                last = d;
                out.push(d);
            }
            None => break,
        }
    }
    out
}

/// Probe budgets that make a search read at once, probe until reading is as dear as what it
/// spent, or probe far more (on these small tables: up to a few thousand probes) before reading.
/// Never NEVER_READ here: a k-NN search for every row would then probe every substring value.
const BUDGETS: [u16; 4] = [0, DEFAULT_PROBE_BUDGET, 3000, 60000];

fn check_knn(nbits: u32, n: usize, centres: usize, m: Option<u32>, seed: u64) {
    let codes = dataset(seed, nbits, n, centres);
    let store = MemStore::new();
    let mut mih = build(&store, nbits, &codes, m);
    mih.check().unwrap();
    let live = vec![true; n];
    let mut rng = StdRng::seed_from_u64(seed ^ 7);
    for qi in 0..12 {
        let q =
            if qi % 3 == 0 { codes[rng.random_range(0..n)].clone() } else { random_code(&mut rng, nbits) };
        for budget in BUDGETS {
            mih.meta.probe_budget = budget;
            // k = n + 5: a read in bands of 128, 256, ... rows.
            for k in [1, 10, 100, n + 5] {
                let want = brute(&codes, &live, &q, k);
                assert_eq!(knn(&mih, &codes, &q, k), want, "{nbits} bits, k = {k}, budget {budget}");
            }
        }
    }
}

#[test]
fn knn_equals_brute_force_uniform_and_clustered() {
    for nbits in [16u32, 32, 64, 128, 256] {
        check_knn(nbits, 3000, 0, None, nbits as u64);
        check_knn(nbits, 3000, 30, None, nbits as u64 + 1);
    }
    // Odd lengths and explicit substring counts, including m = 1 and substrings of 64 bits.
    check_knn(37, 1500, 10, Some(5), 3);
    check_knn(64, 1500, 10, Some(1), 4);
    check_knn(200, 1500, 10, Some(4), 5);
    check_knn(7, 500, 0, Some(7), 6);
}

/// The index cannot see a query's LIMIT: a k-NN search keeps to the first budget for its first
/// `TUNE_K` rows, then to the top-100 one. Here 60000 % then 0 %: it probes for 10 rows and reads
/// for the 11th, exactly; with no top-100 budget it probes on; a radius search keeps the first.
#[test]
fn past_ten_rows_the_top100_budget_applies() {
    use crate::mih::tune::TUNE_K;
    let (nbits, n) = (64u32, 20_000usize);
    let codes = dataset(31, nbits, n, 40);
    let store = MemStore::new();
    let mut mih = build(&store, nbits, &codes, None);
    mih.meta.probe_budget = 60000;
    let live = vec![true; n];
    let mut rng = StdRng::seed_from_u64(32);
    for _ in 0..4 {
        let near = rng.random_range(0..n);
        let q = noisy(&mut rng, &codes[near], nbits, 0.05);
        let want = brute(&codes, &live, &q, 100);
        for top100 in [Some(0), None] {
            mih.meta.probe_budget_top100 = top100;
            let mut s = Search::new(&mih, &q, None).unwrap();
            let mut got = take(&mut s, &mih, &codes, &q, TUNE_K);
            assert_eq!(s.stats.full_scans, 0, "the first {TUNE_K} rows were probed for");
            got.extend(take(&mut s, &mih, &codes, &q, 100 - TUNE_K));
            assert_eq!(got, want, "top-100 budget {top100:?}");
            // Reading (in one band or more) after the 10th row, or never.
            assert_eq!(s.stats.full_scans > 0, top100.is_some(), "top-100 budget {top100:?}");
        }
        let mut s = Search::new(&mih, &q, Some(want[TUNE_K + 5])).unwrap();
        while s.next(&mih).unwrap().is_some() {}
        assert_eq!(s.stats.full_scans, 0, "a radius search keeps the first budget");
    }
}

/// A k-NN search keeps only the rows within the radius it may probe to (its horizon, from its
/// budget): most rows its probes meet are farther, and a read finds those when a search gets
/// there. Searches for every row cross the horizon and stay exact.
#[test]
fn rows_beyond_the_horizon_are_left_to_the_read() {
    let (nbits, n) = (64u32, 20_000usize);
    let codes = dataset(41, nbits, n, 0);
    let store = MemStore::new();
    let mut mih = build(&store, nbits, &codes, Some(4));
    mih.meta.probe_budget = 400;
    let live = vec![true; n];
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..3 {
        let q = random_code(&mut rng, nbits);
        let mut s = Search::new(&mih, &q, None).unwrap();
        assert!(s.horizon < nbits, "a finite budget gives a horizon: {}", s.horizon);
        for _ in 0..10 {
            s.next(&mih).unwrap();
        }
        assert!(
            s.stats.full_scans > 0 || s.stats.candidates * 2 < s.stats.visited,
            "most rows met are not kept: {:?}",
            s.stats
        );
        assert_eq!(knn(&mih, &codes, &q, n), brute(&codes, &live, &q, n), "every row, in order");
    }
}

/// Told that the last search of its statement returned more than `TUNE_K` rows, a k-NN search
/// starts with the top-100 budget: here 0 %, so it reads before its first row; told 10 or less,
/// it probes first. Exact either way.
#[test]
fn a_search_told_to_expect_more_rows_starts_with_the_top100_budget() {
    use crate::mih::tune::TUNE_K;
    let (nbits, n) = (64u32, 20_000usize);
    let codes = dataset(33, nbits, n, 40);
    let store = MemStore::new();
    let mut mih = build(&store, nbits, &codes, None);
    (mih.meta.probe_budget, mih.meta.probe_budget_top100) = (60000, Some(0));
    let live = vec![true; n];
    let q = codes[7].clone();
    let want = brute(&codes, &live, &q, 100);
    for (expected, reads_first) in [(100, true), (TUNE_K, false), (1, false)] {
        let mut s = Search::new(&mih, &q, None).unwrap();
        s.expect(expected);
        let mut got = take(&mut s, &mih, &codes, &q, 1);
        assert_eq!(s.stats.full_scans > 0, reads_first, "expecting {expected} rows");
        got.extend(take(&mut s, &mih, &codes, &q, 99));
        assert_eq!((got, s.returned()), (want.clone(), 100), "expecting {expected} rows");
    }
}

#[test]
fn rows_asked_remembers_the_latest_per_key() {
    use crate::mih::search::ROWS_ASKED_KEYS;
    use crate::mih::RowsAsked;
    let mut asked = RowsAsked::new();
    assert_eq!(asked.last(1), None);
    asked.record(1, 10);
    asked.record(2, 100);
    asked.record(1, 5);
    assert_eq!((asked.last(1), asked.last(2)), (Some(5), Some(100)));
    // Key 2 is now the least recent: the next ROWS_ASKED_KEYS - 1 new keys push it out, not 1.
    asked.record(1, 7);
    for k in 0..ROWS_ASKED_KEYS as u64 - 1 {
        asked.record(1000 + k, 1);
    }
    assert_eq!((asked.last(1), asked.last(2)), (Some(7), None));
    assert_eq!(asked.last(1000), Some(1));
}

#[test]
fn radius_equals_brute_force() {
    for (nbits, centres) in [(64u32, 20usize), (128, 20), (32, 0)] {
        let codes = dataset(11, nbits, 4000, centres);
        let store = MemStore::new();
        let mut mih = build(&store, nbits, &codes, None);
        let mut rng = StdRng::seed_from_u64(12);
        for budget in BUDGETS.iter().cycle().take(12) {
            mih.meta.probe_budget = *budget;
            let i = rng.random_range(0..codes.len());
            let q = noisy(&mut rng, &codes[i], nbits, 0.05);
            for r in [0u32, 1, 2, 3, 4, 8, 20] {
                let mut s = Search::new(&mih, &q, Some(r)).unwrap();
                let mut got = Vec::new();
                while let Some((t, d)) = s.next(&mih).unwrap() {
                    assert!(d <= r);
                    got.push(t);
                }
                let want: Vec<Tid> =
                    (0..codes.len()).filter(|&i| hamming(&codes[i], &q) <= r).map(tid).collect();
                got.sort_unstable();
                assert_eq!(got, want, "{nbits} bits, radius {r}, budget {budget}");
            }
        }
    }
}

#[test]
fn inserts_and_vacuum_keep_results_exact() {
    let nbits = 64;
    let codes = dataset(21, nbits, 30_000, 25);
    let store = MemStore::new();
    // Build on the first 1000, insert the rest: chains overflow and grow.
    let mut mih = build(&store, nbits, &codes[..1000], None);
    for (i, c) in codes.iter().enumerate().skip(1000) {
        mih.insert(c, tid(i)).unwrap();
    }
    let report = mih.check().unwrap();
    assert_eq!(report.rows, 30_000);
    assert!(report.longest_chain > 1, "inserts overflowed some bucket pages");
    // The searches' cost decisions see the growth (from the pages, without reading them).
    assert!(mih.estimated_rows() >= 10_000, "{} rows estimated", mih.estimated_rows());
    // Grown 30x past the build: every probe budget still gives the brute-force answer.
    let all = vec![true; codes.len()];
    let mut rng = StdRng::seed_from_u64(23);
    for budget in BUDGETS {
        mih.meta.probe_budget = budget;
        for qi in 0..4 {
            let q = if qi % 2 == 0 {
                codes[rng.random_range(0..codes.len())].clone()
            } else {
                random_code(&mut rng, nbits)
            };
            for k in [1, 10, 300] {
                assert_eq!(
                    knn(&mih, &codes, &q, k),
                    brute(&codes, &all, &q, k),
                    "grown, k = {k}, budget {budget}"
                );
            }
        }
    }
    mih.meta.probe_budget = DEFAULT_PROBE_BUDGET;
    let mut live = vec![true; codes.len()];
    let mut rng = StdRng::seed_from_u64(22);
    // Most late rows die: whole overflow pages empty out.
    for (i, l) in live.iter_mut().enumerate() {
        *l = i < 5000 && rng.random_bool(0.7);
    }
    let stats = mih.bulk_delete(|t| !live[t.block as usize * 100 + t.offset as usize - 1]).unwrap();
    let nlive = live.iter().filter(|&&l| l).count() as u64;
    assert_eq!(stats.remaining, nlive);
    assert_eq!(stats.removed, 30_000 - nlive);
    assert!(stats.pages_freed > 0, "emptied overflow pages are unlinked");
    assert_eq!(store.free_pages() as u64, stats.pages_freed);
    let report = mih.check().unwrap();
    assert_eq!(report.rows, nlive);
    for _ in 0..10 {
        let q = random_code(&mut rng, nbits);
        let mut s = Search::new(&mih, &q, None).unwrap();
        let mut got = Vec::new();
        while let Some((t, d)) = s.next(&mih).unwrap() {
            assert!(live[t.block as usize * 100 + t.offset as usize - 1], "no dead row returned");
            got.push(d);
        }
        assert_eq!(got, brute(&codes, &live, &q, usize::MAX));
    }
    // Freed pages are reused by later inserts before the relation grows.
    let blocks = store.nblocks();
    for (i, c) in codes.iter().enumerate().take(500) {
        if !live[i] {
            mih.insert(c, tid(i)).unwrap();
        }
    }
    assert_eq!(store.nblocks(), blocks);
    mih.check().unwrap();
}

/// Every bucket chain as (pages, entries per page).
fn chains(mih: &Mih<&MemStore>, store: &MemStore) -> Vec<Vec<usize>> {
    mih.load_heads()
        .unwrap()
        .into_iter()
        .filter(|&h| h != INVALID_BLOCK)
        .map(|mut blk| {
            let mut counts = Vec::new();
            while blk != INVALID_BLOCK {
                let g = store.read(blk);
                counts.push(Bucket::count(g.page()));
                blk = Bucket::next(g.page());
            }
            counts
        })
        .collect()
}

#[test]
fn a_bucket_that_fits_one_page_is_built_as_one() {
    // Uniform codes: bucket sizes scatter around the fill factor's share of a page, about half of
    // them over it; nearly all still fit one page, and are built as one.
    let codes = dataset(7, 64, 40_000, 0);
    let store = MemStore::new();
    let mih = build(&store, 64, &codes, Some(2));
    let p = mih.params().clone();
    let all = chains(&mih, &store);
    let over_fill = all.iter().filter(|c| c.len() == 1 && c[0] > p.build_fill()).count();
    assert!(over_fill * 4 > all.len(), "{over_fill} of {} buckets past the fill factor", all.len());
    let pages: usize = all.iter().map(Vec::len).sum();
    assert!(pages as f64 <= all.len() as f64 * 1.03, "{pages} pages for {} buckets", all.len());
    let row_pages = 2 * 40_000usize.div_ceil(p.row_capacity());
    assert_eq!(store.nblocks() as usize, 1 + p.dir_pages() as usize + pages + row_pages);
    // Clustered codes: long buckets, spread evenly over pages at the fill factor.
    let codes = dataset(8, 64, 40_000, 20);
    let store = MemStore::new();
    let mih = build(&store, 64, &codes, Some(4));
    let p = mih.params().clone();
    let long: Vec<Vec<usize>> = chains(&mih, &store).into_iter().filter(|c| c.len() > 1).collect();
    assert!(!long.is_empty());
    for c in &long {
        let total: usize = c.iter().sum();
        assert_eq!(c.len(), p.build_pages(total), "{c:?}");
        assert!(c.iter().all(|&n| n <= p.build_fill() && n + 1 >= total / c.len()), "{c:?}");
    }
    mih.check().unwrap();
}

#[test]
fn probing_is_sublinear_on_clustered_codes() {
    let nbits = 64;
    let codes = dataset(31, nbits, 50_000, 50);
    let store = MemStore::new();
    let mut mih = build(&store, nbits, &codes, None);
    // Probing alone (reading 50k codes would cost about as much as the probes).
    mih.meta.probe_budget = NEVER_READ;
    let mut rng = StdRng::seed_from_u64(32);
    let i = rng.random_range(0..codes.len());
    let q = noisy(&mut rng, &codes[i], nbits, 0.05);
    let mut s = Search::new(&mih, &q, None).unwrap();
    for _ in 0..10 {
        s.next(&mih).unwrap().unwrap();
    }
    assert_eq!(s.stats.full_scans, 0);
    assert!(s.stats.candidates < 10_000, "{:?}", s.stats);
}

#[test]
fn wrong_lengths_and_bad_parameters_are_errors() {
    let codes = dataset(41, 64, 100, 0);
    let store = MemStore::new();
    let mih = build(&store, 64, &codes, None);
    assert!(Search::new(&mih, &[0u8; 16], None).is_err());
    assert!(mih.insert(&[0u8; 16], Tid::new(9, 9)).is_err());
    assert!(Params::choose(64, 100, Some(0), 90).is_err());
    assert!(Params::choose(64, 100, Some(65), 90).is_err());
    assert!(Params::choose(128, 100, Some(1), 90).is_err(), "substrings are at most 64 bits");
}

fn is_corrupt<T>(r: Result<T, MihError>) -> bool {
    matches!(r, Err(MihError::Corrupt(_)))
}

/// A k-NN search run to the end (with 100 rows it reads all of table 0).
/// Every row by a search that only probes (so visits every bucket), then by one that reads at
/// once (the row list).
fn search_all(mih: &Mih<&MemStore>, q: &[u8]) -> Result<(), MihError> {
    for budget in [NEVER_READ, 0] {
        let mut mih = Mih::open(mih.store)?;
        mih.meta.probe_budget = budget;
        let mut s = Search::new(&mih, q, None)?;
        while s.next(&mih)?.is_some() {}
    }
    Ok(())
}

/// A fresh 100-row index whose page `which` (chosen from the built index) `damage` changes in
/// place; returns the store and a code stored on that page.
type BlockSelector = Box<dyn Fn(&Mih<&MemStore>) -> BlockNo>;

fn damaged(
    which: impl Fn(&Mih<&MemStore>) -> BlockNo,
    damage: impl FnOnce(&mut [u8], &Params),
) -> (MemStore, Vec<u8>) {
    let codes = dataset(42, 64, 100, 0);
    let store = MemStore::new();
    let (blk, params) = {
        let mih = build(&store, 64, &codes, None);
        mih.check().unwrap();
        (which(&mih), mih.params().clone())
    };
    let code = {
        let mut g = store.write(blk);
        let code =
            if Bucket::is_bucket(g.page()) { Bucket::entry(g.page(), &params, 0).0.to_vec() } else { vec![] };
        store.modify(&mut [&mut g], |pages| damage(pages[0], &params));
        code
    };
    (store, code)
}

/// The first non-empty bucket of table 0 (a bucket that a search reading table 0 visits).
fn first_bucket(mih: &Mih<&MemStore>) -> BlockNo {
    let heads = mih.load_heads().unwrap();
    let nb = mih.params().nbuckets as usize;
    *heads[..nb].iter().find(|&&h| h != INVALID_BLOCK).unwrap()
}

#[test]
fn corrupt_pages_are_errors_not_panics() {
    const KIND: usize = PAGE_HEADER; // where every page's kind (u16) is
    let q = vec![0x5Au8; 8];

    // Meta page: wrong kind, another format version, substring bounds that do not add up.
    for (what, damage) in [
        ("kind", Box::new(|pg: &mut [u8]| pg[KIND] ^= 0xFF) as Box<dyn Fn(&mut [u8])>),
        ("version", Box::new(|pg: &mut [u8]| pg[meta_page::VERSION] = 1)),
        ("bounds", Box::new(|pg: &mut [u8]| pg[meta_page::BOUNDS + 2] = 0)),
        ("nbits", Box::new(|pg: &mut [u8]| pg[meta_page::NBITS..meta_page::NBITS + 4].fill(0))),
    ] {
        let (store, _) = damaged(|_| 0, |pg, _| damage(pg));
        assert!(is_corrupt(Mih::open(&store)), "meta page with a bad {what}");
    }
    let (store, _) = damaged(|_| 0, |pg, _| pg[meta_page::VERSION] = 1);
    let err = Mih::open(&store).err().unwrap().to_string();
    assert!(err.contains("format version 1") && err.contains("REINDEX"), "{err}");

    // Directory page with a wrong kind: every phase stops at it.
    let (store, code) = damaged(|_| 1, |pg, _| pg[KIND] ^= 0xFF);
    assert!(code.is_empty());
    let mih = Mih::open(&store).unwrap();
    assert!(is_corrupt(Search::new(&mih, &q, None)));
    assert!(is_corrupt(mih.insert(&q, Tid::new(7, 7))));
    assert!(is_corrupt(mih.bulk_delete(|_| true)));
    assert!(is_corrupt(mih.check()));

    // Bucket page: wrong kind, a count past the page's capacity (entries beyond `pd_lower`), a
    // page of another table or bucket in the chain. Search, insert, vacuum and check all refuse it.
    type Damage = Box<dyn Fn(&mut [u8], &Params)>;
    let cases: [(&str, Damage); 4] = [
        ("kind", Box::new(|pg, _| pg[KIND] ^= 0xFF)),
        (
            "count",
            Box::new(|pg, p| {
                pg[bucket_page::COUNT..][..2].copy_from_slice(&(p.capacity() as u16 + 1).to_le_bytes())
            }),
        ),
        ("table", Box::new(|pg, _| pg[bucket_page::TABLE] ^= 1)),
        ("bucket", Box::new(|pg, _| pg[bucket_page::BUCKET] ^= 1)),
    ];
    for (what, damage) in cases {
        let (store, code) = damaged(first_bucket, damage);
        let mih = Mih::open(&store).unwrap();
        assert!(is_corrupt(search_all(&mih, &q)), "search through a bucket page with a bad {what}");
        assert!(is_corrupt(mih.insert(&code, Tid::new(7, 7))), "insert into a bucket page with a bad {what}");
        assert!(is_corrupt(mih.bulk_delete(|_| false)), "vacuum of a bucket page with a bad {what}");
        assert!(is_corrupt(mih.check()), "check of a bucket page with a bad {what}");
    }

    // Row list: a row page of the wrong kind or with a count past its capacity, a tid page of
    // another row page. A reading search, insert (which appends to it), vacuum and check refuse it.
    fn rows_head(mih: &Mih<&MemStore>) -> BlockNo {
        mih.meta.row_list.unwrap().head
    }
    fn its_tids(mih: &Mih<&MemStore>) -> BlockNo {
        RowPage::tids_block(mih.store.read(rows_head(mih)).page())
    }
    let cases: [(&str, BlockSelector, Damage); 3] = [
        ("row page kind", Box::new(rows_head), Box::new(|pg, _| pg[KIND] ^= 0xFF)),
        (
            "row page count",
            Box::new(rows_head),
            Box::new(|pg, p| {
                pg[row_page::COUNT..][..2].copy_from_slice(&(p.row_capacity() as u16 + 1).to_le_bytes())
            }),
        ),
        ("tid page owner", Box::new(its_tids), Box::new(|pg, _| pg[row_page::OWNER] ^= 1)),
    ];
    for (what, which, damage) in cases {
        let (store, _) = damaged(which, damage);
        let mih = Mih::open(&store).unwrap();
        assert!(is_corrupt(search_all(&mih, &q)), "search through a bad {what}");
        assert!(is_corrupt(mih.insert(&q, Tid::new(7, 7))), "insert with a bad {what}");
        assert!(is_corrupt(mih.bulk_delete(|_| false)), "vacuum with a bad {what}");
        assert!(is_corrupt(mih.check()), "check with a bad {what}");
    }

    // Entries out of order (the first and last swapped): only a check reads a whole page.
    let (store, _) = damaged(first_bucket, |pg, p| {
        let n = Bucket::count(pg);
        assert!(n >= 2);
        let (es, first, last) =
            (p.code_bytes(), bucket_page::ENTRIES, bucket_page::ENTRIES + (n - 1) * p.code_bytes());
        let a = pg[first..first + es].to_vec();
        pg.copy_within(last..last + es, first);
        pg[last..last + es].copy_from_slice(&a);
    });
    let mih = Mih::open(&store).unwrap();
    let err = mih.check().err().unwrap().to_string();
    assert!(err.contains("fences do not match"), "{err}");

    // Entries out of order under fences that match them: the check still sees it.
    let (store, _) = damaged(first_bucket, |pg, p| {
        let n = Bucket::count(pg);
        let (es, first, last) =
            (p.code_bytes(), bucket_page::ENTRIES, bucket_page::ENTRIES + (n - 1) * p.code_bytes());
        let a = pg[first..first + es].to_vec();
        pg.copy_within(last..last + es, first);
        pg[last..last + es].copy_from_slice(&a);
        Bucket::seal(pg, p);
    });
    let err = Mih::open(&store).unwrap().check().err().unwrap().to_string();
    assert!(err.contains("out of order") || err.contains("wrong bucket"), "{err}");
}

#[test]
fn chosen_substrings_follow_the_paper_rule() {
    assert_eq!(Params::choose(64, 1_000_000, None, 90).unwrap().m(), 3);
    assert_eq!(Params::choose(128, 1_000_000, None, 90).unwrap().m(), 6);
    assert_eq!(Params::choose(64, 10_000_000, None, 90).unwrap().m(), 3);
    assert_eq!(Params::choose(256, 1_000_000, None, 90).unwrap().m(), 13);
    assert_eq!(Params::choose(64, 10, None, 90).unwrap().m(), 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn knn_prefix_equals_brute(
        seed in 0u64..1000, nbits in 1u32..300, n in 1usize..400, k in 1usize..50, budget in 0usize..4
    ) {
        let codes = dataset(seed, nbits, n, (seed % 4) as usize * 5);
        let store = MemStore::new();
        let mut mih = build(&store, nbits, &codes, None);
        mih.meta.probe_budget = BUDGETS[budget];
        let mut rng = StdRng::seed_from_u64(seed);
        let q = random_code(&mut rng, nbits);
        prop_assert_eq!(knn(&mih, &codes, &q, k), brute(&codes, &vec![true; n], &q, k));
    }
}

#[test]
fn the_row_list_holds_every_row_through_inserts_and_vacuum() {
    // Built on 500 rows, then 3000 inserted: the list grows by pairs of pages linked at its end.
    let n = 3500;
    let codes = dataset(11, 64, n, 10);
    let store = MemStore::new();
    let mut mih = build(&store, 64, &codes[..500], None);
    for (i, c) in codes.iter().enumerate().skip(500) {
        mih.insert(c, tid(i)).unwrap();
    }
    let per_page = mih.params().row_capacity();
    let report = mih.check().unwrap();
    assert_eq!((report.rows, report.partial_entries), (n as u64, 0));
    assert_eq!(report.row_pages, 2 * n.div_ceil(per_page) as u64, "row pages packed full");
    // The tail hint followed the list to its last page.
    let list = Mih::open(&store).unwrap().meta.row_list.unwrap();
    let mut last = list.head;
    while RowPage::next(store.read(last).page()) != INVALID_BLOCK {
        last = RowPage::next(store.read(last).page());
    }
    assert_eq!(list.tail, last);

    let mut rng = StdRng::seed_from_u64(5);
    let queries: Vec<Vec<u8>> = (0..5).map(|_| random_code(&mut rng, 64)).collect();
    mih.meta.probe_budget = 0; // read at once: the row list only
    for q in &queries {
        assert_eq!(knn(&mih, &codes, q, 40), brute(&codes, &vec![true; n], q, 40));
    }
    // Vacuum removes every third row from the tables and the list alike.
    let live: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
    let row = |t: Tid| t.block as usize * 100 + t.offset as usize - 1;
    mih.bulk_delete(|t| !live[row(t)]).unwrap();
    let report = mih.check().unwrap();
    assert_eq!((report.rows, report.partial_entries), (live.iter().filter(|&&l| l).count() as u64, 0));
    for q in &queries {
        assert_eq!(knn(&mih, &codes, q, 40), brute(&codes, &live, q, 40));
    }
}

#[test]
fn a_built_row_list_is_one_run_of_row_pages_then_one_of_tid_pages() {
    // A read streams the row pages; in a run of blocks they usually sit in consecutive buffers.
    let n = 5000;
    let codes = dataset(12, 64, n, 0);
    let store = MemStore::new();
    let mih = build(&store, 64, &codes, None);
    let list = mih.meta.row_list.unwrap();
    let pages = n.div_ceil(mih.params().row_capacity()) as BlockNo;
    let (mut blk, mut walked) = (list.head, Vec::new());
    while blk != INVALID_BLOCK {
        let g = store.read(blk);
        walked.push((blk, RowPage::tids_block(g.page())));
        blk = RowPage::next(g.page());
    }
    let want: Vec<(BlockNo, BlockNo)> = (0..pages).map(|i| (list.head + i, list.head + pages + i)).collect();
    assert_eq!(walked, want);
    assert_eq!(list.tail, list.head + pages - 1);
    assert_eq!(mih.check().unwrap().rows, n as u64);
}

#[test]
fn an_index_of_format_2_reads_table_0() {
    // Format 2 had no row list: its meta page (version 2) names none, and a read goes through
    // table 0's buckets; inserts add nothing to a list.
    let codes = dataset(12, 64, 2000, 0);
    let store = MemStore::new();
    build(&store, 64, &codes[..1500], None);
    {
        let mut g = store.write(0);
        store.modify(&mut [&mut g], |pg| pg[0][meta_page::VERSION] = 2);
    }
    let mut mih = Mih::open(&store).unwrap();
    assert_eq!(mih.meta.row_list, None);
    for (i, c) in codes.iter().enumerate().skip(1500) {
        mih.insert(c, tid(i)).unwrap();
    }
    let report = mih.check().unwrap();
    assert_eq!((report.rows, report.partial_entries, report.row_pages), (2000, 0, 0));
    mih.meta.probe_budget = 0;
    let mut rng = StdRng::seed_from_u64(6);
    for _ in 0..5 {
        let q = random_code(&mut rng, 64);
        assert_eq!(knn(&mih, &codes, &q, 30), brute(&codes, &vec![true; 2000], &q, 30));
    }
}

/// k-NN (at every probe budget) and radius searches of `mih` equal brute force over `live`.
fn assert_exact(mih: &mut Mih<&MemStore>, codes: &[Vec<u8>], live: &[bool], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for budget in BUDGETS {
        mih.meta.probe_budget = budget;
        let i = rng.random_range(0..codes.len());
        let q = noisy(&mut rng, &codes[i], mih.params().nbits, 0.05);
        assert_eq!(knn(mih, codes, &q, 25), brute(codes, live, &q, 25), "budget {budget}");
        let mut s = Search::new(mih, &q, Some(6)).unwrap();
        let mut got = Vec::new();
        while let Some((t, _)) = s.next(mih).unwrap() {
            got.push(t);
        }
        got.sort_unstable();
        let want: Vec<Tid> =
            (0..codes.len()).filter(|&i| live[i] && hamming(&codes[i], &q) <= 6).map(tid).collect();
        assert_eq!(got, want, "radius 6, budget {budget}");
    }
    mih.meta.probe_budget = Mih::open(mih.store).unwrap().meta.probe_budget;
}

#[test]
fn a_grown_index_is_retuned_and_its_old_tables_freed_once_no_scan_reads_them() {
    // Built on 200 rows, grown to 20,000: a retune writes tables for 20,000 from the row list
    // (twice the buckets; and 3 substrings, as `WITH (substrings = 3)` would ask), on an index
    // of format 3 (directory at block 1), and writes format 4, the directory where its new
    // blocks start.
    let n = 20_000;
    let codes = dataset(21, 64, n + 2000, 300);
    let store = MemStore::new();
    let mih = build(&store, 64, &codes[..200], None);
    for (i, c) in codes.iter().enumerate().take(n).skip(200) {
        mih.insert(c, tid(i)).unwrap();
    }
    {
        let mut g = store.write(0);
        store.modify(&mut [&mut g], |pg| pg[0][meta_page::VERSION] = 3);
    }
    let mut mih = Mih::open(&store).unwrap();
    assert_eq!(mih.meta.tables, Tables::built(0));
    let before = mih.params().clone();
    let blocks_before = store.nblocks();
    let done = mih.retune(Some(3), |_| {}).unwrap();
    assert_eq!((done.rows, done.caught_up, done.m_before, done.m), (n as u64, 0, before.m(), 3));
    assert_eq!(mih.params(), &Params { generation: 1, ..Params::choose(64, n as u64, Some(3), 90).unwrap() });
    assert!(mih.params().nbuckets > before.nbuckets, "buckets for 20,000 rows, not 10,000");
    let reopened = Mih::open(&store).unwrap();
    assert_eq!(reopened.meta, mih.meta, "the switch is on the meta page");
    let t = mih.meta.tables;
    assert_eq!((t.dir_start, t.reserved), (blocks_before, None));
    assert_eq!(t.retired.map(|r| (r.dir_start, r.dir_pages)), Some((1, before.dir_pages())));
    assert_eq!(mih.meta.built_rows, n as u64);
    assert!(!mih.outgrown(n as u64));
    let report = mih.check().unwrap();
    let fresh_store = MemStore::new();
    let fresh = build(&fresh_store, 64, &codes[..n], Some(3)).check().unwrap();
    assert_eq!(
        (report.rows, report.partial_entries, report.longest_chain, report.bucket_pages),
        (n as u64, 0, fresh.longest_chain, fresh.bucket_pages),
        "tables as a build on the 20,000 rows writes them"
    );
    let mut live = vec![true; n];
    assert_exact(&mut mih, &codes[..n], &live, 1);

    // A scan from before the switch may still read the old tables: they stay.
    let stamp = t.retired.unwrap().stamp;
    store.hold_scans_from(Some(stamp));
    assert_eq!(mih.free_retired().unwrap(), 0);
    assert!(mih.meta.tables.retired.is_some());
    // Once it has ended, every page of theirs is freed: directory and chains.
    store.hold_scans_from(Some(stamp + 1));
    let freed = mih.free_retired().unwrap();
    assert!(freed > 0);
    assert_eq!(store.free_pages() as u64, freed);
    assert_eq!(Mih::open(&store).unwrap().meta.tables.retired, None);
    assert_eq!(mih.free_retired().unwrap(), 0, "nothing left to free");
    assert_eq!(mih.check().unwrap().rows, n as u64);
    // Inserts reuse the freed pages; VACUUM and searches stay exact.
    live.resize(n + 2000, true);
    for (i, c) in codes.iter().enumerate().skip(n) {
        mih.insert(c, tid(i)).unwrap();
    }
    assert!(store.free_pages() < freed as usize);
    let row = |t: Tid| t.block as usize * 100 + t.offset as usize - 1;
    for (i, l) in live.iter_mut().enumerate() {
        *l = i % 4 != 1;
    }
    mih.bulk_delete(|t| !live[row(t)]).unwrap();
    let report = mih.check().unwrap();
    assert_eq!((report.rows, report.partial_entries), (live.iter().filter(|&&l| l).count() as u64, 0));
    assert_exact(&mut mih, &codes, &live, 2);
}

#[test]
fn rows_inserted_while_a_retune_writes_reach_its_tables() {
    let codes = dataset(22, 64, 4500, 0);
    let store = MemStore::new();
    let mut mih = build(&store, 64, &codes[..1000], None);
    for (i, c) in codes.iter().enumerate().take(3000).skip(1000) {
        mih.insert(c, tid(i)).unwrap();
    }
    let new = mih.write_tables(None, |_| {}).unwrap();
    // Another backend's inserts, meanwhile: into the old tables (the meta page names them still).
    let other = Mih::open(&store).unwrap();
    assert!(other.meta.tables.reserved.is_some());
    for (i, c) in codes.iter().enumerate().skip(3000) {
        other.insert(c, tid(i)).unwrap();
    }
    let done = mih.switch_tables(new).unwrap();
    assert_eq!((done.rows, done.caught_up), (4500, 1500));
    let report = mih.check().unwrap();
    assert_eq!((report.rows, report.partial_entries), (4500, 0));
    assert_exact(&mut mih, &codes, &[true; 4500], 3);
    // A handle opened before the switch inserts into the new tables: it reads the meta page again.
    let late = dataset(23, 64, 1, 0).remove(0);
    other.insert(&late, tid(4500)).unwrap();
    assert_eq!(mih.check().unwrap().rows, 4501);
}

#[test]
fn a_retune_cut_short_leaves_blocks_the_next_vacuum_frees() {
    let codes = dataset(24, 64, 3000, 10);
    let store = MemStore::new();
    let mut mih = build(&store, 64, &codes[..500], None);
    for (i, c) in codes.iter().enumerate().skip(500) {
        mih.insert(c, tid(i)).unwrap();
    }
    let blocks = store.nblocks();
    drop(mih.write_tables(None, |_| {}).unwrap()); // a crash before the switch
    let mut mih = Mih::open(&store).unwrap();
    let reserved = mih.meta.tables.reserved.unwrap();
    assert_eq!(reserved.first, blocks);
    assert_eq!(mih.meta.tables.dir_start, 1, "the old tables still serve");
    assert!(!mih.outgrown(1_000_000), "no second retune while blocks are reserved");
    assert_exact(&mut mih, &codes, &[true; 3000], 4);
    assert_eq!(mih.check().unwrap().rows, 3000);
    assert_eq!(mih.free_reserved().unwrap(), reserved.count as u64);
    assert_eq!(store.free_pages(), reserved.count as usize);
    assert_eq!(Mih::open(&store).unwrap().meta.tables.reserved, None);
    assert_eq!(mih.free_blocks().len(), reserved.count as usize, "free pages, as VACUUM finds them");
    // A retune after it uses freed pages? No: its run is new blocks at the end; it still works.
    let done = mih.retune(None, |_| {}).unwrap();
    assert_eq!(done.rows, 3000);
    assert_exact(&mut mih, &codes, &[true; 3000], 5);
}

#[test]
fn an_index_is_outgrown_at_twice_its_tuned_rows() {
    let codes = dataset(25, 32, 3000, 0);
    let store = MemStore::new();
    let mut mih = build(&store, 32, &codes[..1000], None);
    // Below MIN_ROWS the mark is twice MIN_ROWS, above it twice the rows tuned for.
    let small = 2 * super::tune::MIN_ROWS as u64;
    assert!(!mih.outgrown(small - 1) && mih.outgrown(small));
    mih.meta.built_rows = 50_000;
    assert!(!mih.outgrown(99_999) && mih.outgrown(100_000));
    // Not while an earlier retune's tables wait to be freed, nor in an index without a row list.
    mih.meta.built_rows = 1000;
    for (i, c) in codes.iter().enumerate().skip(1000) {
        mih.insert(c, tid(i)).unwrap();
    }
    mih.retune(None, |_| {}).unwrap();
    assert_eq!(mih.meta.built_rows, 3000);
    assert!(!mih.outgrown(1_000_000), "the retired tables are not freed yet");
    mih.free_retired().unwrap();
    assert!(mih.outgrown(1_000_000));
    mih.meta.row_list = None;
    assert!(!mih.outgrown(1_000_000));
}

#[test]
fn a_scan_on_tables_freed_under_it_is_told_so_never_answered_wrong() {
    // A scan that opened the index before a retune (as a standby's may, unseen by the primary's
    // VACUUM) and searches after its tables were freed and their pages reused: an error that
    // says so (never another table's page taken for its own, never a wrong answer).
    let codes = dataset(26, 64, 5000, 20);
    let store = MemStore::new();
    let mut mih = build(&store, 64, &codes[..500], None);
    for (i, c) in codes.iter().enumerate().take(3000).skip(500) {
        mih.insert(c, tid(i)).unwrap();
    }
    let mut stale = Mih::open(&store).unwrap();
    stale.meta.probe_budget = NEVER_READ; // probing only: the tables, not the row list
    mih.retune(None, |_| {}).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let queries: Vec<Vec<u8>> = (0..8).map(|i| noisy(&mut rng, &codes[i * 300], 64, 0.05)).collect();
    // Before the old tables are freed, the stale scan still answers exactly.
    for q in &queries {
        assert_eq!(knn(&stale, &codes[..3000], q, 10), brute(&codes[..3000], &[true; 3000], q, 10));
    }
    mih.free_retired().unwrap();
    for (i, c) in codes.iter().enumerate().skip(3000) {
        mih.insert(c, tid(i)).unwrap(); // into the freed pages
    }
    let mut told = 0;
    for q in &queries {
        let run = || -> Result<Vec<u32>, MihError> {
            let mut s = Search::new(&stale, q, None)?;
            let mut out = Vec::new();
            while out.len() < 10 {
                match s.next(&stale)? {
                    Some((_, d)) => out.push(d),
                    None => break,
                }
            }
            Ok(out)
        };
        match run() {
            Ok(got) => assert_eq!(got, brute(&codes[..3000], &[true; 3000], q, 10)),
            Err(e) => {
                assert!(matches!(stale.explain(e), MihError::Retuned));
                told += 1;
            }
        }
    }
    assert!(told > 0, "the freed directory cannot be read as one");
    // A page of the same table and bucket in other tables is not taken for one's own.
    let heads = mih.load_heads().unwrap();
    let (slot, &head) = heads.iter().enumerate().find(|(_, &h)| h != INVALID_BLOCK).unwrap();
    let nb = mih.params().nbuckets as usize;
    let (t, b) = ((slot / nb) as u32, (slot % nb) as u32);
    let older = Params { generation: mih.params().generation.wrapping_sub(1), ..mih.params().clone() };
    assert!(Bucket::check(store.read(head).page(), mih.params(), t, b).is_ok());
    assert!(Bucket::check(store.read(head).page(), &older, t, b).is_err());
    // With the meta page unchanged, a wrong page is corruption, as ever.
    assert!(matches!(mih.explain(MihError::Corrupt("x".into())), MihError::Corrupt(_)));
}

/// A store that "crashes" (panics) before its `after`-th change: what was changed before stays,
/// as WAL replay restores it, and pages handed back stay in the free list, as a free space map
/// written to disk may keep them.
struct CrashStore<'a> {
    inner: &'a MemStore,
    left: std::cell::Cell<u64>,
}

impl<'a> CrashStore<'a> {
    fn new(inner: &'a MemStore, after: u64) -> Self {
        CrashStore { inner, left: std::cell::Cell::new(after) }
    }
}

impl PageStore for CrashStore<'_> {
    type Guard = super::store::MemGuard;
    fn read(&self, blk: BlockNo) -> Self::Guard {
        self.inner.read(blk)
    }
    fn write(&self, blk: BlockNo) -> Self::Guard {
        self.inner.write(blk)
    }
    fn allocate(&self) -> Self::Guard {
        self.inner.allocate()
    }
    fn modify<R>(&self, pages: &mut [&mut Self::Guard], f: impl FnOnce(&mut [&mut [u8]]) -> R) -> R {
        if self.left.get() == 0 {
            panic!("crash");
        }
        self.left.set(self.left.get() - 1);
        self.inner.modify(pages, f)
    }
    fn recycle(&self, blk: BlockNo) {
        self.inner.recycle(blk)
    }
    fn append_built(&self, image: &[u8]) -> BlockNo {
        self.inner.append_built(image)
    }
    fn reserve(&self, count: u32) -> BlockNo {
        self.inner.reserve(count)
    }
    fn write_built(&self, blk: BlockNo, image: &[u8]) {
        self.inner.write_built(blk, image)
    }
    fn stamp(&self) -> u64 {
        self.inner.stamp()
    }
    fn stamp_passed(&self, stamp: u64) -> bool {
        self.inner.stamp_passed(stamp)
    }
    fn nblocks(&self) -> BlockNo {
        self.inner.nblocks()
    }
}

#[test]
fn a_crash_at_any_record_of_a_retune_or_of_freeing_what_it_left_loses_nothing() {
    // For every record of a retune and of the VACUUM work after it (freeing reserved blocks or
    // retired tables), a crash before it; then recovery's state reopened, rows inserted into
    // whatever the free list holds, a VACUUM's cleanup run to the end: the index holds every row,
    // checks clean, and searches equal brute force.
    let codes = dataset(27, 64, 3600, 10);
    let base = {
        let store = MemStore::new();
        let mih = build(&store, 64, &codes[..300], None);
        for (i, c) in codes.iter().enumerate().take(3000).skip(300) {
            mih.insert(c, tid(i)).unwrap();
        }
        store
    };
    let snapshot = |from: &MemStore| {
        let store = MemStore::new();
        for blk in 0..from.nblocks() {
            store.append_built(from.read(blk).page());
        }
        store
    };
    // Records a whole retune and its freeing take, counted on an uncrashed run.
    let total = {
        let store = snapshot(&base);
        let counting = CrashStore::new(&store, u64::MAX);
        let mut mih = Mih::open(&counting).unwrap();
        mih.retune(None, |_| {}).unwrap();
        mih.free_retired().unwrap();
        u64::MAX - counting.left.get()
    };
    assert!(total > 10, "{total} records");
    // And a retune cut short before its switch, whose blocks a VACUUM frees: a crash at every
    // record of that.
    let cut_short = snapshot(&base);
    drop(Mih::open(&cut_short).unwrap().write_tables(None, |_| {}).unwrap());
    let total_freeing = {
        let store = snapshot(&cut_short);
        let counting = CrashStore::new(&store, u64::MAX);
        Mih::open(&counting).unwrap().free_reserved().unwrap();
        u64::MAX - counting.left.get()
    };
    assert!(total_freeing > 10, "{total_freeing} records");
    let mut rng = StdRng::seed_from_u64(8);
    let runs =
        (0..total).map(|at| (&base, at, true)).chain((0..total_freeing).map(|at| (&cut_short, at, false)));
    for (from, crash_at, retune) in runs {
        let store = snapshot(from);
        let crashing = CrashStore::new(&store, crash_at);
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut mih = Mih::open(&crashing).unwrap();
            if retune {
                mih.retune(None, |_| {}).unwrap();
                mih.free_retired().unwrap();
            } else {
                mih.free_reserved().unwrap();
            }
        }));
        assert!(crashed.is_err(), "crash before record {crash_at}");
        // Recovery: the pages as they were; then inserts, which take freed pages, and a VACUUM's
        // cleanup (reserved blocks, retired tables, a retune if still due).
        let mut mih = Mih::open(&store).unwrap();
        for (i, c) in codes.iter().enumerate().skip(3000) {
            mih.insert(c, tid(i)).unwrap();
        }
        mih.free_reserved().unwrap();
        mih.free_retired().unwrap();
        if mih.outgrown(u64::MAX) {
            mih.retune(None, |_| {}).unwrap();
            mih.free_retired().unwrap();
        }
        let report = mih.check().unwrap();
        assert_eq!(
            (report.rows, report.partial_entries),
            (3600, 0),
            "crash before record {crash_at} ({retune})"
        );
        let centre = rng.random_range(0..3600);
        let q = noisy(&mut rng, &codes[centre], 64, 0.05);
        assert_eq!(
            knn(&mih, &codes, &q, 20),
            brute(&codes, &[true; 3600], &q, 20),
            "crash at {crash_at} ({retune})"
        );
    }
}

/// A read keeps few rows (each a tid read, a cache miss): its band's limit falls page by page to
/// where the rows kept so far, extrapolated, reach what the search expects, and it still ends
/// with enough rows that no second read is needed. 300k uniform codes read at once (budget 0):
/// the second rule alone (cut to the band's rows whenever twice as many are kept) kept ~650
/// rows per top-10 search at 1M.
#[test]
fn a_read_keeps_few_rows_and_enough() {
    let n = 300_000;
    let codes = dataset(7, 64, n, 0);
    let store = MemStore::new();
    let mut mih = build(&store, 64, &codes, Some(2));
    mih.meta.probe_budget = 0;
    mih.meta.probe_budget_top100 = Some(0);
    let live = vec![true; n];
    let mut rng = StdRng::seed_from_u64(99);
    // (rows asked, rows the search is told to expect, most rows kept on average)
    for (k, expect, most) in [(1, Some(1), 100), (10, Some(10), 140), (100, Some(100), 450), (10, None, 450)]
    {
        let mut kept = 0;
        for _ in 0..40 {
            let q = random_code(&mut rng, 64);
            let mut s = Search::new(&mih, &q, None).unwrap();
            if let Some(e) = expect {
                s.expect(e);
            }
            assert_eq!(take(&mut s, &mih, &codes, &q, k), brute(&codes, &live, &q, k));
            assert_eq!(s.stats.full_scans, 1, "k = {k}: one read was enough");
            kept += s.stats.kept;
        }
        assert!(kept / 40 <= most, "k = {k}, expecting {expect:?}: {} rows kept per search", kept / 40);
    }
    // Told to expect fewer rows than it is asked for (a statement whose last run returned one
    // row): the first band ends short, and further bands read on, still exact.
    for _ in 0..5 {
        let q = random_code(&mut rng, 64);
        let mut s = Search::new(&mih, &q, None).unwrap();
        s.expect(1);
        assert_eq!(take(&mut s, &mih, &codes, &q, 300), brute(&codes, &live, &q, 300));
        assert!(s.stats.full_scans > 1, "300 rows needed more than the first band");
    }
}

/// A row list whose order is not random with respect to the query (rows inserted nearest
/// first): a first band extrapolates from its first pages, ends short, and the bands after it
/// keep and cut only by what they kept, so a search needs a read or two more, never more, and
/// stays exact.
#[test]
fn a_row_list_in_the_queries_order_costs_a_read_more_not_a_row() {
    let n = 40_000;
    let codes = dataset(31, 64, n, 0);
    let mut rng = StdRng::seed_from_u64(5);
    let q = random_code(&mut rng, 64);
    // The first 1,000 rows in the build's spread order; the others appended nearest first.
    let mut order: Vec<usize> = (1000..n).collect();
    order.sort_by_key(|&i| hamming(&codes[i], &q));
    let store = MemStore::new();
    let mut mih = build(&store, 64, &codes[..1000], Some(2));
    for &i in &order {
        mih.insert(&codes[i], tid(i)).unwrap();
    }
    mih.meta.probe_budget = 0;
    mih.meta.probe_budget_top100 = Some(0);
    let live = vec![true; n];
    for (expect, k) in [(10, 10), (100, 100), (1, 50)] {
        let mut s = Search::new(&mih, &q, None).unwrap();
        s.expect(expect);
        assert_eq!(take(&mut s, &mih, &codes, &q, k), brute(&codes, &live, &q, k), "k = {k}");
        assert!(s.stats.full_scans <= 3, "k = {k}: {} reads", s.stats.full_scans);
    }
}
