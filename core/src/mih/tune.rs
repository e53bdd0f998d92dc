//! Choosing the number of substrings and the probe budget from the data at build time.
//!
//! The paper's rule `m = b / log2(n)` fits codes whose k-th neighbour is a few bits away. Learned
//! codes are not like that: a hashing model balances its bits and spreads the items, so at 1M
//! rows the 10th neighbour of a query lies ~10 bits away, and with the rule's m = 3 (21-bit
//! substrings) covering that radius takes thousands of probes. More, shorter substrings probe
//! less but verify more candidates; and where every m probes more than reading the whole index
//! costs (uniform random codes), reading it is the answer. Which is cheapest depends on the data,
//! so the build measures it: it takes rows of the table as queries, finds their k-th neighbour's
//! distance by brute force, and for each m near the rule's estimates what an exact k-NN search
//! to that radius costs — the probes [`super::cost::probes`] counts, plus the entries they visit
//! (counted on a sample of rows: those with some substring within that table's radius) — and
//! what it costs under each probe budget (probing up to the budget, then reading everything).
//! It keeps the (m, budget) of least mean cost for top-[`TUNE_K`] searches, at the prices of
//! [`super::cost`], and for that m the budget of least cost for top-[`TUNE_K_MORE`] searches:
//! the one a search switches to once it has returned `TUNE_K` rows and is asked for more.

use super::cost::{probes, read_us, table_radius, CANDIDATE_US, PROBE_US};
use super::layout::{Params, MAX_SUBSTRINGS, MAX_SUBSTRING_BITS};
use crate::code::hamming;
use crate::rng::SeededRng;

/// Below this many rows the rule is kept: every m is fast on a small table.
pub const MIN_ROWS: usize = 1 << 14;
/// The k that m and the first probe budget are chosen for (`ORDER BY code <~> q LIMIT 10`).
/// Pricing top-100 searches into the same choice (tried) made the build read at once on 1M x 64
/// learned-like codes, top-10 5.3 ms instead of 1.6: a larger k gets its own budget instead.
pub const TUNE_K: usize = 10;
/// The k of the second budget ([`Tuning::probe_budget_top100`]): a search that has returned
/// `TUNE_K` rows and is asked for more is likely a `LIMIT 100` (or larger) one.
pub const TUNE_K_MORE: usize = 100;
/// Rows used as queries.
const QUERIES: usize = 48;
/// At most this many rows stand for the table when finding a query's k-th neighbour (`k` is
/// scaled down for a sample).
const RADIUS_ROWS: usize = 1 << 20;
/// Rows on which the candidate fraction is counted.
const CANDIDATE_ROWS: usize = 1 << 14;
/// How much cheaper a larger m must be priced to be chosen. On 1M 64-bit clustered codes m = 5
/// was priced 18 % under m = 4 and ran top-10 0.39-0.43 ms against 0.35 for m = 4, in a third
/// more index (123 against 93 MiB); on learned-like codes m = 5 is priced 33 % under and runs a
/// third faster.
const MORE_TABLES_GAIN: f64 = 0.2;
/// Probe budgets the build chooses from (percent of a whole-table read, see
/// [`super::layout::Meta::probe_budget`]): 0 reads at once.
const BUDGETS: [u16; 8] = [0, 25, 50, 100, 200, 400, 1000, 3000];

/// What the build measured and chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// The number of substrings chosen.
    pub m: u32,
    /// The probe budget chosen for it.
    pub probe_budget: u16,
    /// The probe budget for top-[`TUNE_K_MORE`] searches with the chosen m.
    pub probe_budget_top100: u16,
    /// The rule's choice, for comparison.
    pub rule_m: u32,
    /// Median distance from a sampled row to its k-th nearest other row.
    pub median_radius: u32,
    /// (m, estimated microseconds per exact k-NN search at its best budget) for every m tried.
    pub costs: Vec<(u32, f64)>,
}

/// Distances from `codes[q]` to its `k`-th nearest row among `rows` (itself excluded), for each
/// `k` of `ks`.
fn kth_distances<const K: usize>(
    codes: &[u8],
    cb: usize,
    nbits: u32,
    q: usize,
    rows: &[usize],
    ks: [usize; K],
) -> [u32; K] {
    let query = &codes[q * cb..(q + 1) * cb];
    let mut hist = vec![0usize; nbits as usize + 1];
    for &j in rows {
        if j != q {
            hist[hamming(query, &codes[j * cb..(j + 1) * cb]) as usize] += 1;
        }
    }
    ks.map(|k| {
        let mut seen = 0;
        hist.iter()
            .position(|&c| {
                seen += c;
                seen >= k
            })
            .map_or(nbits, |d| d as u32)
    })
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

/// Chooses m (unless `forced_m` gives it: then only its budget) and the probe budget for `codes`
/// (`n` codes of `nbits`, `storage_bytes(nbits)` each, back to back), or `None` when the table is
/// too small to bother (the caller keeps the rule and the default budget). Deterministic: the
/// same codes give the same choice.
pub fn choose_substrings(nbits: u32, codes: &[u8], fillfactor: u8, forced_m: Option<u32>) -> Option<Tuning> {
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
    let candidates_m: Vec<u32> = match forced_m {
        Some(m) => vec![m],
        None => (rule_m.saturating_sub(1).max(min_m)..=max_m).collect(),
    };
    let params: Vec<Params> = candidates_m
        .iter()
        .filter_map(|&m| Params::choose(nbits, n as u64, Some(m), fillfactor).ok())
        .collect();

    let mut rng = SeededRng::new(0x6d69_685f_7475_6e65 ^ n as u64);
    let queries = sample(&mut rng, n, QUERIES);
    let radius_rows = sample(&mut rng, n, RADIUS_ROWS);
    // k scaled down for a sample of the rows.
    let ks = [TUNE_K, TUNE_K_MORE].map(|k| (k * radius_rows.len()).div_ceil(n).max(1));
    let cand_rows = sample(&mut rng, n, CANDIDATE_ROWS);
    let scale = n as f64 / cand_rows.len() as f64;

    let mut radii = Vec::with_capacity(queries.len());
    // Per k, per m, per budget: the summed cost of the sampled queries.
    let mut totals = [TUNE_K, TUNE_K_MORE].map(|_| vec![[0f64; BUDGETS.len()]; params.len()]);
    let mut dists = Vec::new();
    for &q in &queries {
        let rs = kth_distances(codes, cb, nbits, q, &radius_rows, ks);
        radii.push(rs[0]);
        let query = &codes[q * cb..(q + 1) * cb];
        for (i, p) in params.iter().enumerate() {
            let m = p.m();
            let qsub: Vec<u64> = (0..m).map(|t| p.substring(t, query)).collect();
            let reach = rs.map(|r| (0..m).map(|t| table_radius(m, t, r)).collect::<Vec<_>>());
            // Entries the probes visit, for each k's radius: in every table, the rows within its
            // radius (the sample's substring distances computed once for both).
            let mut visited = rs.map(|_| 0usize);
            for &j in &cand_rows {
                p.sub_distances(&codes[j * cb..(j + 1) * cb], &qsub, &mut dists);
                for (v, reach) in visited.iter_mut().zip(&reach) {
                    *v += dists.iter().zip(reach).filter(|(&d, rt)| rt.is_some_and(|rt| d <= rt)).count();
                }
            }
            let read = read_us(p, n as u64);
            for ((r, visited), totals) in rs.into_iter().zip(visited).zip(totals.iter_mut()) {
                let search = probes(p, r) * PROBE_US + visited as f64 * scale * CANDIDATE_US;
                for (b, total) in BUDGETS.iter().zip(totals[i].iter_mut()) {
                    let budget = read * *b as f64 / 100.0;
                    *total += if search <= budget { search } else { budget + read };
                }
            }
        }
    }
    radii.sort_unstable();
    // Per m, the smallest budget that costs the sampled top-k searches no more than 5% over the
    // best: a larger k than the sample's reaches it sooner and reads instead of probing on.
    let best_budget = |total: &[f64; BUDGETS.len()]| {
        let least = total.iter().copied().fold(f64::INFINITY, f64::min);
        let b = total.iter().position(|&t| t <= least * 1.05).unwrap_or(0);
        (BUDGETS[b], least / queries.len() as f64)
    };
    let [top_k, top_more] = &totals;
    let chosen: Vec<(usize, u16, f64)> = top_k
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (budget, cost) = best_budget(t);
            (i, budget, cost)
        })
        .collect();
    // The cheapest, where more tables must pay for the copy of every code each one adds: a
    // larger m is taken only when it is priced at least MORE_TABLES_GAIN cheaper.
    let (i, probe_budget, _) =
        chosen.iter().copied().reduce(|a, b| if b.2 < a.2 * (1.0 - MORE_TABLES_GAIN) { b } else { a })?;
    let probe_budget_top100 = best_budget(&top_more[i]).0;
    let costs = chosen.iter().map(|&(i, _, c)| (params[i].m(), c)).collect();
    Some(Tuning {
        m: params[i].m(),
        probe_budget,
        probe_budget_top100,
        rule_m,
        median_radius: radii[radii.len() / 2],
        costs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::storage_bytes;
    use crate::mih::layout::DEFAULT_PROBE_BUDGET;
    use crate::mih::tests::tid;
    use crate::mih::{MemStore, Mih, Search};
    use crate::synthetic::learned_like;

    /// The estimated cost (by the prices of `super::cost`) of exact top-10 searches for the first
    /// `nq` codes, counted by the searches themselves, with m tables and the given probe budget.
    fn measured(codes: &[u8], nbits: u32, m: u32, budget: u16, nq: usize) -> f64 {
        let cb = storage_bytes(nbits);
        let n = codes.len() / cb;
        let p = Params::choose(nbits, n as u64, Some(m), 90).unwrap();
        let tids: Vec<_> = (0..n).map(tid).collect();
        let mih = Mih::build(MemStore::new(), p, budget, None, codes, &tids, |_| {}).unwrap();
        let mut total = 0.0;
        for q in 0..nq {
            let mut s = Search::new(&mih, &codes[q * cb..(q + 1) * cb], None).unwrap();
            for _ in 0..=TUNE_K {
                if s.next(&mih).unwrap().is_none() {
                    break;
                }
            }
            total += s.stats.estimated_us(mih.params(), n as u64);
        }
        total
    }

    #[test]
    fn small_tables_keep_the_rule() {
        let codes = learned_like(1000, 64, 10, 0.5, 1);
        assert_eq!(choose_substrings(64, &codes, 90, None), None);
    }

    #[test]
    fn the_choice_is_deterministic_and_near_the_rule() {
        let codes = learned_like(MIN_ROWS * 2, 64, 200, 0.6, 2);
        let a = choose_substrings(64, &codes, 90, None).unwrap();
        assert_eq!(Some(a.clone()), choose_substrings(64, &codes, 90, None));
        assert!(a.costs.iter().any(|&(m, _)| m == a.m));
        assert!(a.m + 1 >= a.rule_m && a.m <= a.rule_m + 2, "{a:?}");
        assert!(a.costs.iter().all(|&(_, c)| c.is_finite() && c > 0.0), "{a:?}");
        assert!(BUDGETS.contains(&a.probe_budget) && BUDGETS.contains(&a.probe_budget_top100), "{a:?}");
        let forced = choose_substrings(64, &codes, 90, Some(7)).unwrap();
        assert_eq!((forced.m, forced.costs.len()), (7, 1), "{forced:?}");
    }

    /// On spread-out codes (k-th neighbour many bits away) the chosen m and budget cost no more,
    /// counted by the searches themselves with the model's prices, than the rule's m with the
    /// default budget; on uniform random codes the build reads at once; on clustered codes it
    /// probes, for much less than a read.
    #[test]
    fn the_choice_beats_the_rule_in_real_searches() {
        let nbits = 64;
        let codes = learned_like(1 << 16, nbits, 2000, 0.45, 3);
        let t = choose_substrings(nbits, &codes, 90, None).unwrap();
        assert!(t.median_radius >= 6, "codes not spread enough for the test: {t:?}");
        let chosen = measured(&codes, nbits, t.m, t.probe_budget, 24);
        let rule = measured(&codes, nbits, t.rule_m, DEFAULT_PROBE_BUDGET, 24);
        eprintln!("chosen {chosen:.0}, rule {rule:.0}: {t:?}");
        assert!(chosen <= rule * 1.05, "chosen {chosen:.0} us, rule {rule:.0}: {t:?}");

        let mut rng = crate::rng::SeededRng::new(4);
        let uniform: Vec<u8> = (0..(1 << 16) * 8).map(|_| rng.next_u64() as u8).collect();
        let t = choose_substrings(nbits, &uniform, 90, None).unwrap();
        assert_eq!((t.probe_budget, t.probe_budget_top100), (0, 0), "uniform codes: {t:?}");

        let clustered = learned_like(1 << 16, nbits, 50, 0.05, 5);
        let t = choose_substrings(nbits, &clustered, 90, None).unwrap();
        let cost = t.costs.iter().find(|c| c.0 == t.m).unwrap().1;
        let p = Params::choose(nbits, 1 << 16, Some(t.m), 90).unwrap();
        let read = read_us(&p, 1 << 16);
        assert!(t.median_radius <= 3 && t.probe_budget > 0 && cost < read / 2.0, "clustered codes: {t:?}");
    }
}
