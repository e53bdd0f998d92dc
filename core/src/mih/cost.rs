//! The probe count of the planner's cost model: how many substring values a search probes to
//! cover a radius. The extension's `amcostestimate` (`src/index/cost.rs`) prices these probes
//! and chooses the radius to price. And the prices of a search's steps, by which a search
//! decides between probing and reading a whole table, and the build (`super::tune`) between
//! numbers of substrings.

use super::layout::Params;
use super::probe::binomial;

// Fitted to exact top-10 searches through the extension on 1M 64-bit codes, learned-like with
// m = 4 and m = 5 and clustered with m = 4 (probing only, and reading only), and checked on
// 128-bit learned-like codes (bench/README.md, issue 13), 2 cores, shared buffers warm: a
// probe reads about one page (a bucket is built to fit one) cold in the CPU's caches, with a
// buffer-table lookup, pin and lock; an entry visited costs its share of the filtering kernel
// (and, the few within a search's horizon, substrings, a tid read and a push); a whole-table
// read streams ~2,000 pages (64-bit codes) of codes through the filtering popcount kernel, bound
// by memory bandwidth, hence priced mostly per byte. What matters is their ratio, which decides
// between probing and reading.

/// Microseconds per probe: the bucket's page looked up, pinned and locked, the fences and the
/// stretch of codes read.
pub const PROBE_US: f64 = 1.4;
/// Microseconds per entry that a probe visits: its code streamed through the filtering kernel
/// (cold: a cache line per 8 entries of 64 bits) and, for the few within the search's horizon,
/// its substrings, tid read and filing. 0.05 while each entry's substring and distance were taken
/// one by one; refitted (top-10 on 1M learned-like codes: m = 4, 0.68 ms; m = 5, 0.46 ms) when the
/// stretch went to the kernel in one run.
pub const CANDIDATE_US: f64 = 0.012;
/// Microseconds per entry of a whole-table read, plus [`READ_BYTE_US`] per code byte: codes
/// streamed through the popcount kernel, with the pin and lock of each page (64-bit codes:
/// ~2.4 ms per 1M entries, 128-bit ~4.3 ms).
pub const READ_US: f64 = 0.0005;
pub const READ_BYTE_US: f64 = 0.00024;

/// Estimated microseconds of reading a whole table of `rows` entries.
pub fn read_us(p: &Params, rows: u64) -> f64 {
    rows as f64 * (READ_US + READ_BYTE_US * p.code_bytes() as f64)
}

/// The substring radius table `t` of `m` has been probed to once a search has covered total
/// radius `r`: with `r = m r' + a`, `r'` for tables `0..=a` and `r' - 1` for the others (`None`
/// when `r' = 0`: not probed yet). See [`super::search`].
pub fn table_radius(m: u32, t: u32, r: u32) -> Option<u32> {
    if t <= r % m {
        Some(r / m)
    } else {
        (r / m).checked_sub(1)
    }
}

/// Probes of a radius-`r` search: in table `t`, every substring value within
/// [`table_radius`] of the query's. Saturates rather than overflows.
pub fn probes(p: &Params, r: u32) -> f64 {
    let m = p.m();
    (0..m)
        .filter_map(|t| {
            let rt = table_radius(m, t, r)?;
            Some((0..=rt.min(p.sub_len(t))).map(|j| binomial(p.sub_len(t), j) as f64).sum::<f64>())
        })
        .sum()
}

/// Estimated microseconds of probing shell `shell` of a table of `bits`-bit substrings over `rows`
/// rows: its values, and the entries they hold (substring values taken as equally frequent).
pub fn shell_us(bits: u32, shell: u32, rows: u64) -> f64 {
    binomial(bits, shell) as f64 * (PROBE_US + rows as f64 / 2f64.powi(bits as i32) * CANDIDATE_US)
}

/// Estimated microseconds of probing a radius-`r` search over `rows` rows: the [`shell_us`] of
/// every shell its [`probes`] cover.
pub fn probe_us(p: &Params, r: u32, rows: u64) -> f64 {
    let m = p.m();
    (0..m)
        .filter_map(|t| {
            let rt = table_radius(m, t, r)?;
            let bits = p.sub_len(t);
            Some((0..=rt.min(bits)).map(|j| shell_us(bits, j, rows)).sum::<f64>())
        })
        .sum()
}

/// The radius whose search probes two shells (distances 0 and 1) in every table: `2m - 1`. A
/// k-NN scan is priced at it, what clustered data needs for a small k.
pub fn two_shells_radius(p: &Params) -> u32 {
    2 * p.m() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::storage_bytes;
    use crate::mih::layout::NEVER_READ;
    use crate::mih::{MemStore, Mih, Search, Tid};
    use crate::rng::SeededRng;

    /// Step `s` of a search probes shell `s / m` of table `s % m`.
    fn probes_by_steps(p: &Params, r: u32) -> f64 {
        (0..=r)
            .map(|s| {
                let (t, shell) = (s % p.m(), s / p.m());
                binomial(p.sub_len(t), shell) as f64
            })
            .sum()
    }

    #[test]
    fn probes_are_the_search_steps_shells() {
        for (nbits, m) in [(64u32, 4u32), (37, 5), (8, 8), (200, 4), (7, 1)] {
            let p = Params::choose(nbits, 1_000_000, Some(m), 90).unwrap();
            for r in 0..=nbits.min(3 * m + 2) {
                assert_eq!(probes(&p, r), probes_by_steps(&p, r), "{nbits} bits, m = {m}, r = {r}");
            }
        }
    }

    #[test]
    fn table_radii_follow_the_search_steps() {
        // r = 10 with m = 4: tables 0..=2 to radius 2, table 3 to radius 1.
        let r: Vec<Option<u32>> = (0..4).map(|t| table_radius(4, t, 10)).collect();
        assert_eq!(r, [Some(2), Some(2), Some(2), Some(1)]);
        // r = 1 with m = 3: tables 0 and 1 at radius 0, table 2 not yet probed.
        let r: Vec<Option<u32>> = (0..3).map(|t| table_radius(3, t, 1)).collect();
        assert_eq!(r, [Some(0), Some(0), None]);
    }

    #[test]
    fn two_shells_per_table() {
        for (nbits, m) in [(64u32, 3u32), (128, 6), (37, 5), (7, 7)] {
            let p = Params::choose(nbits, 1_000_000, Some(m), 90).unwrap();
            let want: f64 = (0..m).map(|t| 1.0 + p.sub_len(t) as f64).sum();
            assert_eq!(probes(&p, two_shells_radius(&p)), want, "{nbits} bits, m = {m}");
            // One step more probes shell 2 of table 0 (which 1-bit substrings do not have).
            let more = binomial(p.sub_len(0), 2) as f64;
            assert_eq!(probes(&p, two_shells_radius(&p) + 1), want + more);
        }
        let p = Params::choose(64, 1_000_000, Some(4), 90).unwrap();
        assert_eq!(probes(&p, 0), 1.0, "radius 0: the query's own value in table 0");
        assert_eq!(probes(&p, 3), 4.0, "radius m - 1: the query's own value in every table");
    }

    #[test]
    fn huge_radii_saturate() {
        let p = Params::choose(4096, 1_000_000, Some(64), 90).unwrap();
        let n = probes(&p, 4096);
        assert!(n.is_finite() && n > 1e18);
        let p = Params::choose(64, 1_000_000, Some(1), 90).unwrap();
        let all = 2f64.powi(64);
        assert!((probes(&p, 64) - all).abs() / all < 1e-12, "every value of the one table");
    }

    /// The model counts what a real search probes, as long as it does not fall back to reading
    /// a whole table.
    #[test]
    fn probes_equal_what_a_search_probes() {
        let (nbits, n) = (64u32, 20_000usize);
        let mut rng = SeededRng::new(5);
        let codes: Vec<u8> = (0..n).flat_map(|_| rng.next_u64().to_be_bytes()).collect();
        assert_eq!(codes.len(), n * storage_bytes(nbits));
        let tids: Vec<Tid> = (0..n).map(|i| Tid::new(i as u32, 1)).collect();
        let params = Params::choose(nbits, n as u64, Some(8), 90).unwrap();
        let store = MemStore::new();
        let mih = Mih::build(&store, params.clone(), NEVER_READ, None, &codes, &tids, |_| {}).unwrap();
        let q = rng.next_u64().to_be_bytes();
        for r in [0u32, 1, 7, 8, 9, 15, 20, 31] {
            let mut s = Search::new(&mih, &q, Some(r)).unwrap();
            while s.next(&mih).unwrap().is_some() {}
            assert_eq!(s.stats.full_scans, 0, "radius {r} was probed");
            assert_eq!(s.stats.probes as f64, probes(&params, r), "radius {r}");
        }
    }
}
