//! Probing: enumerating the substring values at an exact Hamming distance from a query
//! substring, and reading the bucket chains that hold them (the primitives [`Search`] runs).
//!
//! [`Search`]: super::Search

use super::index::Mih;
use super::layout::{bucket_page, BlockNo, Bucket, MihError, Params, Tid, INVALID_BLOCK};
use super::store::{PageGuard, PageStore};

/// Calls `visit(v)` for every `bits`-bit value `v` with `popcount(v ^ q) == radius`, in increasing
/// order of the flipped positions (Gosper's hack over bit masks). Stops early when `visit`
/// returns false; returns whether it went through every value.
pub fn for_each_at_distance(q: u64, bits: u32, radius: u32, mut visit: impl FnMut(u64) -> bool) -> bool {
    if radius > bits {
        return true;
    }
    if radius == 0 {
        return visit(q);
    }
    let limit: u128 = 1u128 << bits;
    let mut mask: u128 = (1u128 << radius) - 1;
    while mask < limit {
        if !visit(q ^ mask as u64) {
            return false;
        }
        // Next larger integer with the same number of set bits.
        let c = mask & mask.wrapping_neg();
        let r = mask + c;
        mask = (((r ^ mask) >> 2) / c) | r;
    }
    true
}

/// Binomial coefficient C(n, k), saturating at `u64::MAX`.
pub fn binomial(n: u32, k: u32) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k) as u128;
    let mut acc: u128 = 1;
    for i in 0..k {
        acc = acc * (n as u128 - i) / (i + 1);
        if acc > u64::MAX as u128 {
            return u64::MAX;
        }
    }
    acc as u64
}

impl<S: PageStore> Mih<S> {
    /// Calls `visit(codes, tid)` with the entries of table `t` whose substring equals `value`, one
    /// run of code bytes per page of the bucket (back to back, none when no entry of the page
    /// has it); `tid(i)` reads the heap tid of the run's code `i`.
    pub fn probe(
        &self,
        heads: &[BlockNo],
        t: u32,
        value: u64,
        visit: &mut impl FnMut(&[u8], &dyn Fn(usize) -> Tid),
    ) -> Result<(), MihError> {
        let p = self.params();
        let b = p.bucket(t, value);
        self.read_chain(self.head(heads, t, b), t, b, |page| probe_page(page, p, t, value, visit))
    }

    /// Hints that `value` of table `t` is probed soon: its bucket's head page, as far as its
    /// fences (what a probe reads before it knows its stretch of entries).
    pub fn prefetch_probe(&self, heads: &[BlockNo], t: u32, value: u64) {
        let head = self.head(heads, t, self.params().bucket(t, value));
        if head != INVALID_BLOCK {
            self.store.prefetch(head, std::slice::from_ref(&(0..bucket_page::ENTRIES)));
        }
    }

    /// The head page of bucket `b` of table `t` (from the directory copy `heads`).
    fn head(&self, heads: &[BlockNo], t: u32, b: u32) -> BlockNo {
        heads[t as usize * self.params().nbuckets as usize + b as usize]
    }

    /// Calls `f` on every bucket page of table `t` (a search that reads a whole table).
    pub fn read_table(&self, heads: &[BlockNo], t: u32, mut f: impl FnMut(&[u8])) -> Result<(), MihError> {
        for b in 0..self.params().nbuckets {
            self.read_chain(self.head(heads, t, b), t, b, &mut f)?;
        }
        Ok(())
    }

    /// Calls `f` on every page of the chain of (t, b) starting at `head` (none when the bucket is
    /// empty), each checked. The head's shared lock, the bucket lock, is held throughout.
    fn read_chain(&self, head: BlockNo, t: u32, b: u32, mut f: impl FnMut(&[u8])) -> Result<(), MihError> {
        if head == INVALID_BLOCK {
            return Ok(());
        }
        let p = self.params();
        let h = self.store.read(head);
        Bucket::check(h.page(), p, t, b)?;
        f(h.page());
        let mut next = Bucket::next(h.page());
        while next != INVALID_BLOCK {
            let g = self.store.read(next);
            Bucket::check(g.page(), p, t, b)?;
            f(g.page());
            next = Bucket::next(g.page());
        }
        Ok(())
    }
}

#[inline]
fn probe_page(
    page: &[u8],
    p: &Params,
    t: u32,
    value: u64,
    visit: &mut impl FnMut(&[u8], &dyn Fn(usize) -> Tid),
) {
    let run = Bucket::equal_range(page, p, t, value);
    if !run.is_empty() {
        let codes = &Bucket::codes(page, p)[run.start * p.code_bytes()..run.end * p.code_bytes()];
        visit(codes, &|i| Bucket::tid(page, run.start + i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerates_exactly_the_shell() {
        for bits in [1u32, 5, 12] {
            for radius in 0..=bits {
                let q = 0b1011_0110_1001u64 & ((1 << bits) - 1);
                let mut got = Vec::new();
                for_each_at_distance(q, bits, radius, |v| {
                    got.push(v);
                    true
                });
                let mut want: Vec<u64> =
                    (0..1u64 << bits).filter(|v| (v ^ q).count_ones() == radius).collect();
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "bits {bits} radius {radius}");
                assert_eq!(got.len() as u64, binomial(bits, radius));
            }
        }
    }

    #[test]
    fn says_whether_it_went_through_every_value() {
        let mut seen = 0;
        assert!(!for_each_at_distance(0, 12, 2, |_| {
            seen += 1;
            seen < 5
        }));
        assert_eq!(seen, 5, "stops at the first false");
        assert!(for_each_at_distance(0, 12, 2, |_| true));
        assert!(!for_each_at_distance(7, 12, 0, |_| false), "radius 0 has one value");
        assert!(for_each_at_distance(7, 3, 4, |_| false), "no value beyond the length");
    }

    #[test]
    fn full_width_substrings() {
        let mut n = 0;
        for_each_at_distance(u64::MAX, 64, 1, |v| {
            assert_eq!(v.count_ones(), 63);
            n += 1;
            true
        });
        assert_eq!(n, 64);
        assert_eq!(binomial(64, 32), 1_832_624_140_942_590_534);
        assert_eq!(binomial(200, 100), u64::MAX);
    }
}
