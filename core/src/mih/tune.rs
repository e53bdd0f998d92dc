//! Choosing the number of substrings from the data at build time.
//!
//! The paper's rule `m = b / log2(n)` fits codes whose k-th neighbour is a few bits away. Learned
//! codes are not like that: a hashing model balances its bits and spreads the items, so at 1M
//! rows the 10th neighbour of a query lies ~10 bits away, and with the rule's m = 3 (21-bit
//! substrings) covering that radius takes thousands of probes. More, shorter substrings probe
//! less but verify more candidates. Which m is cheapest depends on the data, so the build
//! measures it: it takes rows of the table as queries, finds their k-th neighbour's distance by
//! brute force, and for each m near the rule's estimates what an exact k-NN search to that radius
//! costs — the probes [`super::cost::probes`] counts, plus the candidates it would verify
//! (counted on a sample of rows: those with some substring within that table's radius).

use super::cost::{probes, table_radius};
use super::layout::{Params, MAX_SUBSTRINGS, MAX_SUBSTRING_BITS};
use crate::code::hamming;
use crate::rng::SeededRng;

/// Below this many rows the rule is kept: every m is fast on a small table.
pub const MIN_ROWS: usize = 1 << 14;
/// The k the choice is made for (`ORDER BY code <~> q LIMIT 10`).
pub const TUNE_K: usize = 10;
/// Rows used as queries.
const QUERIES: usize = 48;
/// At most this many rows stand for the table when finding a query's k-th neighbour (`k` is
/// scaled down for a sample).
const RADIUS_ROWS: usize = 1 << 20;
/// Rows on which the candidate fraction is counted.
const CANDIDATE_ROWS: usize = 1 << 14;
/// Relative costs, in microseconds, fitted to exact top-10 searches on 1M learned-like 64-bit
/// codes through the extension (m = 3, 4, 5 measured 9.6, 2.3 and 3.7 ms): a probe (buffer
/// lookup, pin, lock, binary search in a bucket chain) and a verified candidate (its entry read
/// from a random page and its full distance).
const PROBE_US: f64 = 2.5;
const CANDIDATE_US: f64 = 0.19;
/// A whole table read instead of probing, per entry (what the search falls back to).
const READ_US: f64 = 0.02;

/// What the build measured and chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// The number of substrings chosen.
    pub m: u32,
    /// The rule's choice, for comparison.
    pub rule_m: u32,
    /// Median distance from a sampled row to its k-th nearest other row.
    pub median_radius: u32,
    /// (m, estimated microseconds per exact k-NN search) for every m tried.
    pub costs: Vec<(u32, f64)>,
}

/// Distance from `codes[q]` to its `k`-th nearest row among `rows` (itself excluded).
fn kth_distance(codes: &[u8], cb: usize, nbits: u32, q: usize, rows: &[usize], k: usize) -> u32 {
    let query = &codes[q * cb..(q + 1) * cb];
    let mut hist = vec![0usize; nbits as usize + 1];
    for &j in rows {
        if j != q {
            hist[hamming(query, &codes[j * cb..(j + 1) * cb]) as usize] += 1;
        }
    }
    let mut seen = 0;
    for (d, &c) in hist.iter().enumerate() {
        seen += c;
        if seen >= k {
            return d as u32;
        }
    }
    nbits
}

/// `count` distinct row numbers below `n` (all of them when `count >= n`), in a seeded order.
fn sample(rng: &mut SeededRng, n: usize, count: usize) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    let mut picked = std::collections::HashSet::with_capacity(count);
    while picked.len() < count {
        picked.insert(rng.below(n as u64) as usize);
    }
    let mut v: Vec<usize> = picked.into_iter().collect();
    v.sort_unstable();
    v
}

/// Chooses m for `codes` (`n` codes of `nbits`, `storage_bytes(nbits)` each, back to back), or
/// `None` when the table is too small to bother (the caller keeps the rule). Deterministic: the
/// same codes give the same choice.
pub fn choose_substrings(nbits: u32, codes: &[u8], fillfactor: u8) -> Option<Tuning> {
    let cb = crate::code::storage_bytes(nbits);
    let n = codes.len().checked_div(cb)?;
    if n < MIN_ROWS {
        return None;
    }
    let rule = Params::choose(nbits, n as u64, None, fillfactor).ok()?;
    let rule_m = rule.m();
    let min_m = nbits.div_ceil(MAX_SUBSTRING_BITS).max(1);
    // Near the rule: fewer tables than the rule's minus one only help at tiny radii, and every
    // table adds a copy of the codes to the index.
    let max_m = (rule_m + 2).min(nbits.min(MAX_SUBSTRINGS));
    let candidates_m: Vec<u32> = (rule_m.saturating_sub(1).max(min_m)..=max_m).collect();
    let params: Vec<Params> = candidates_m
        .iter()
        .filter_map(|&m| Params::choose(nbits, n as u64, Some(m), fillfactor).ok())
        .collect();

    let mut rng = SeededRng::new(0x6d69_685f_7475_6e65 ^ n as u64);
    let queries = sample(&mut rng, n, QUERIES);
    let radius_rows = sample(&mut rng, n, RADIUS_ROWS);
    let k = ((TUNE_K * radius_rows.len()).div_ceil(n)).max(1);
    let cand_rows = sample(&mut rng, n, CANDIDATE_ROWS);
    let scale = n as f64 / cand_rows.len() as f64;

    let mut radii = Vec::with_capacity(queries.len());
    let mut totals = vec![0f64; params.len()];
    let mut dists = Vec::new();
    for &q in &queries {
        let r = kth_distance(codes, cb, nbits, q, &radius_rows, k);
        radii.push(r);
        let query = &codes[q * cb..(q + 1) * cb];
        for (p, total) in params.iter().zip(totals.iter_mut()) {
            let m = p.m();
            let qsub: Vec<u64> = (0..m).map(|t| p.substring(t, query)).collect();
            let reach: Vec<Option<u32>> = (0..m).map(|t| table_radius(m, t, r)).collect();
            // Found by some table's probes: the search's own per-entry test (search::Verify).
            let found = cand_rows
                .iter()
                .filter(|&&j| {
                    p.sub_distances(&codes[j * cb..(j + 1) * cb], &qsub, &mut dists);
                    dists.iter().zip(&reach).any(|(&d, rt)| rt.is_some_and(|rt| d <= rt))
                })
                .count();
            let search = probes(p, r) * PROBE_US + found as f64 * scale * CANDIDATE_US;
            *total += search.min(n as f64 * READ_US + probes(p, r.min(m - 1)) * PROBE_US);
        }
    }
    radii.sort_unstable();
    let costs: Vec<(u32, f64)> =
        params.iter().zip(&totals).map(|(p, t)| (p.m(), t / queries.len() as f64)).collect();
    // The cheapest; on (near) ties the fewer tables, which make a smaller index.
    let best = costs
        .iter()
        .copied()
        .reduce(|a, b| if b.1 < a.1 * 0.95 { b } else { a })
        .map(|(m, _)| m)
        .unwrap_or(rule_m);
    Some(Tuning { m: best, rule_m, median_radius: radii[radii.len() / 2], costs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::storage_bytes;
    use crate::mih::tests::tid;
    use crate::mih::{MemStore, Mih, Search};
    use crate::synthetic::learned_like;

    /// Probes and candidates of exact top-10 searches for the first `nq` codes, with m tables.
    fn measured(codes: &[u8], nbits: u32, m: u32, nq: usize) -> (u64, u64) {
        let cb = storage_bytes(nbits);
        let n = codes.len() / cb;
        let p = Params::choose(nbits, n as u64, Some(m), 90).unwrap();
        let tids: Vec<_> = (0..n).map(tid).collect();
        let mih = Mih::build(MemStore::new(), p, codes, &tids, |_| {}).unwrap();
        let (mut probes, mut cands) = (0, 0);
        for q in 0..nq {
            let mut s = Search::new(&mih, &codes[q * cb..(q + 1) * cb], None).unwrap();
            for _ in 0..=TUNE_K {
                if s.next(&mih).unwrap().is_none() {
                    break;
                }
            }
            probes += s.stats.probes;
            cands += s.stats.candidates;
        }
        (probes, cands)
    }

    #[test]
    fn small_tables_keep_the_rule() {
        let codes = learned_like(1000, 64, 10, 0.5, 1);
        assert_eq!(choose_substrings(64, &codes, 90), None);
    }

    #[test]
    fn the_choice_is_deterministic_and_near_the_rule() {
        let codes = learned_like(MIN_ROWS * 2, 64, 200, 0.6, 2);
        let a = choose_substrings(64, &codes, 90).unwrap();
        assert_eq!(Some(a.clone()), choose_substrings(64, &codes, 90));
        assert!(a.costs.iter().any(|&(m, _)| m == a.m));
        assert!(a.m + 1 >= a.rule_m && a.m <= a.rule_m + 2, "{a:?}");
        assert!(a.costs.iter().all(|&(_, c)| c.is_finite() && c > 0.0), "{a:?}");
    }

    /// On spread-out codes (k-th neighbour many bits away) the chosen m costs no more, counted by
    /// the searches themselves with the model's prices, than the rule's m.
    #[test]
    fn on_spread_codes_the_choice_beats_the_rule_in_real_searches() {
        const SPREAD: f64 = 0.45;
        let nbits = 64;
        let codes = learned_like(1 << 16, nbits, 2000, SPREAD, 3);
        let t = choose_substrings(nbits, &codes, 90).unwrap();
        assert!(t.median_radius >= 6, "codes not spread enough for the test: {t:?}");
        let price = |(p, c): (u64, u64)| p as f64 * PROBE_US + c as f64 * CANDIDATE_US;
        let chosen = price(measured(&codes, nbits, t.m, 24));
        let rule = price(measured(&codes, nbits, t.rule_m, 24));
        eprintln!("chosen {chosen:.0}, rule {rule:.0}: {t:?}");
        assert!(
            chosen <= rule * 1.05,
            "chosen m = {} costs {chosen:.0}, rule m = {} {rule:.0}: {t:?}",
            t.m,
            t.rule_m
        );
        assert_ne!(t.m, t.rule_m, "spread codes should move m off the rule: {t:?}");
    }
}
