//! Exact k-nearest-neighbour and radius search by Multi-Index Hashing (Norouzi, Punjani & Fleet).
//!
//! A code `h` within distance `r` of the query `q` has, by the pigeonhole principle, some
//! substring close to the query's: with `r = m * r' + a` (`0 <= a < m`), either one of the first
//! `a + 1` substrings is within `r'` or one of the others within `r' - 1`. So covering radius
//! `r + 1` after radius `r` only needs one more shell in one table: table `(r + 1) % m` at
//! distance `(r + 1) / m`. The search grows the radius one step at a time, verifies every new
//! candidate by its full distance (the code is in the index entry), and after step `r` returns
//! everything found at distance `<= r`, in order: exact results in non-decreasing distance, for
//! any number of rows asked.
//!
//! A candidate can turn up in several tables. It is new when no table already probed would have
//! found it: its substring distance in table `i` is more than the radius probed in `i`. That
//! test needs only the candidate's code, so no set of seen rows is kept.
//!
//! When a shell would take more probes than reading a whole table costs, the search reads table
//! 0 once instead, which finds every remaining row (uniform random codes at large distances).

use super::index::Mih;
use super::layout::{BlockNo, MihError, Params, Tid};
use super::probe::{binomial, for_each_at_distance};
use super::store::PageStore;
use crate::code::hamming;

/// A probe costs about as much as checking this many entries in a sequential read: measured
/// ~1 µs per probe (buffer lookup, pin, lock, binary search) against ~5 ns per entry read.
const PROBE_COST_IN_ENTRIES: u64 = 200;

/// What a search did so far. Only the tests read it (the extension reports none of it): that
/// probing stays sub-linear, and that the cost model counts the probes a search makes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SearchStats {
    /// Substring values probed (one bucket chain each).
    pub probes: u64,
    /// Entries verified by their full distance.
    pub candidates: u64,
    /// Whole tables read instead of probing (at most one).
    pub full_scans: u64,
}

pub struct Search {
    query: Vec<u8>,
    qsub: Vec<u64>,
    /// Per table: the substring radius probed completely so far (-1: none).
    done: Vec<i64>,
    /// Next total radius to cover.
    step: u32,
    /// All rows at distance <= `covered` have been found (-1 before the first step).
    covered: i64,
    /// Largest distance returned: the code length for k-NN, `r` for a radius search.
    max_dist: u32,
    /// Verified rows by distance, waiting to be returned.
    found: Vec<Vec<Tid>>,
    emit_dist: u32,
    emit_pos: usize,
    heads: Vec<BlockNo>,
    /// Rows the index held at build time, for the probe-or-read decision.
    table_rows: u64,
    scratch: Vec<u32>,
    pub stats: SearchStats,
}

impl Search {
    /// Prepares a search for `query` (word-padded code bytes of the index's length). `radius`:
    /// `None` for k-NN (all rows, nearest first), `Some(r)` for rows within distance `r`.
    pub fn new<S: PageStore>(mih: &Mih<S>, query: &[u8], radius: Option<u32>) -> Result<Search, MihError> {
        let p = mih.params();
        if query.len() != p.code_bytes() {
            return Err(MihError::LengthMismatch { expected: p.nbits, got: query.len() as u32 * 8 });
        }
        let m = p.m() as usize;
        let max_dist = radius.unwrap_or(p.nbits).min(p.nbits);
        let heads = mih.load_heads()?;
        // Rows now may exceed rows at build; the bucket pages tell the truth within a factor.
        let table_rows = mih.meta.built_rows.max(1);
        Ok(Search {
            query: query.to_vec(),
            qsub: (0..p.m()).map(|t| p.substring(t, query)).collect(),
            done: vec![-1; m],
            step: 0,
            covered: -1,
            max_dist,
            found: vec![Vec::new(); max_dist as usize + 1],
            emit_dist: 0,
            emit_pos: 0,
            heads,
            table_rows,
            scratch: Vec::with_capacity(m),
            stats: SearchStats::default(),
        })
    }

    /// The next row and its distance, nearest first; `None` when every row within the search's
    /// limit has been returned.
    pub fn next<S: PageStore>(&mut self, mih: &Mih<S>) -> Result<Option<(Tid, u32)>, MihError> {
        loop {
            while (self.emit_dist as i64) <= self.covered && self.emit_dist <= self.max_dist {
                let bucket = &mut self.found[self.emit_dist as usize];
                if self.emit_pos < bucket.len() {
                    self.emit_pos += 1;
                    return Ok(Some((bucket[self.emit_pos - 1], self.emit_dist)));
                }
                *bucket = Vec::new(); // returned: free it
                self.emit_dist += 1;
                self.emit_pos = 0;
            }
            if self.covered >= self.max_dist as i64 {
                return Ok(None);
            }
            self.advance(mih)?;
        }
    }

    /// Covers one more unit of radius (or everything, by reading a table).
    fn advance<S: PageStore>(&mut self, mih: &Mih<S>) -> Result<(), MihError> {
        let p = mih.params();
        let m = p.m();
        let t = self.step % m;
        let shell = self.step / m;
        let bits = p.sub_len(t);
        if shell > bits {
            // Table t was probed at every distance: every row has been found.
            self.covered = self.max_dist as i64;
            return Ok(());
        }
        let probes = binomial(bits, shell);
        if probes.saturating_mul(PROBE_COST_IN_ENTRIES) > self.table_rows {
            return self.read_everything(mih);
        }
        let mut failure = None;
        let qsub = self.qsub[t as usize];
        let (mut verify, heads) = self.verifier(p);
        let mut nprobes = 0u64;
        for_each_at_distance(qsub, bits, shell, |v| {
            nprobes += 1;
            match mih.probe(heads, t, v, &mut |code, tid| verify.visit(code, tid)) {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        });
        let candidates = verify.candidates;
        if let Some(e) = failure {
            return Err(e);
        }
        self.stats.probes += nprobes;
        self.stats.candidates += candidates;
        self.done[t as usize] = shell as i64;
        self.covered = self.step as i64;
        self.step += 1;
        Ok(())
    }

    /// Reads all of table 0, keeping the rows no probe has found yet.
    fn read_everything<S: PageStore>(&mut self, mih: &Mih<S>) -> Result<(), MihError> {
        let (mut verify, heads) = self.verifier(mih.params());
        mih.scan_table(heads, 0, &mut |code, tid| verify.visit(code, tid))?;
        let candidates = verify.candidates;
        self.stats.candidates += candidates;
        self.stats.full_scans += 1;
        self.covered = self.max_dist as i64;
        Ok(())
    }

    /// The candidate check over this search's state, and the directory copy to probe with
    /// (split borrows: probing reads `heads` while verification writes the result lists).
    fn verifier<'a>(&'a mut self, p: &'a Params) -> (Verify<'a>, &'a [BlockNo]) {
        let verify = Verify {
            p,
            query: &self.query,
            qsub: &self.qsub,
            done: &self.done,
            max_dist: self.max_dist,
            scratch: &mut self.scratch,
            found: &mut self.found,
            candidates: 0,
        };
        (verify, &self.heads)
    }
}

/// Verifies candidates by their full distance and files them by distance.
struct Verify<'a> {
    p: &'a Params,
    query: &'a [u8],
    qsub: &'a [u64],
    done: &'a [i64],
    max_dist: u32,
    scratch: &'a mut Vec<u32>,
    found: &'a mut [Vec<Tid>],
    candidates: u64,
}

impl Verify<'_> {
    /// A row is new unless some table already holds it within the radius probed there. The table
    /// being probed has `done` one below the current shell, under the row's substring distance in
    /// it, so it never counts: the same test serves probing and reading a whole table.
    fn visit(&mut self, code: &[u8], tid: Tid) {
        self.p.sub_distances(code, self.qsub, self.scratch);
        if self.scratch.iter().zip(self.done).any(|(&d, &r)| d as i64 <= r) {
            return;
        }
        self.candidates += 1;
        let d = hamming(code, self.query);
        if d <= self.max_dist {
            self.found[d as usize].push(tid);
        }
    }
}
