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
//! Probing stops when it would cost more than the index's probe budget (a share of what reading a
//! whole table costs, [`Meta::probe_budget`], by the prices of [`super::cost`]): the search then
//! reads table 0 instead, every code of it streamed through the popcount kernel, in bands. A band
//! keeps the rows from the radius covered so far up to the smallest distance that holds
//! [`FIRST_BAND_ROWS`] of them (twice as many at each further band), so a k-NN read keeps a few
//! rows, not the table; a radius search keeps everything within its radius in one band.
//!
//! A k-NN search does not know how many rows it will be asked for. It keeps to the budget its
//! index chose for top-10 searches for its first [`TUNE_K`] rows, then to the one chosen for
//! top-100 ([`Meta::probe_budget_top100`]); [`Search::expect`] starts it with the latter when the
//! caller expects more rows. Since probing ends within its budget, a search keeps only the rows
//! within its horizon, the radius its budget may reach; the read finds the others.
//!
//! [`Meta::probe_budget`]: super::layout::Meta::probe_budget
//! [`Meta::probe_budget_top100`]: super::layout::Meta::probe_budget_top100

use super::cost::{self, CANDIDATE_US, PROBE_US};
use super::index::Mih;
use super::layout::{BlockNo, MihError, Params, Tid, NEVER_READ};
use super::probe::for_each_at_distance;
use super::store::PageStore;
use super::tune::TUNE_K;
use crate::code::{distances, within, within_in};
use std::collections::VecDeque;

/// Rows the first band of a whole-table read keeps: more than a k-NN scan is usually asked for
/// (`LIMIT 100` included). Each row kept costs a tid read, a cache miss: 256 measured 3-4 %
/// slower on uniform codes' top-10, and a search for more rows reads another band.
pub const FIRST_BAND_ROWS: usize = 128;
/// Probes by which a search hints a bucket's head page before probing it.
const PROBE_AHEAD: usize = 4;
/// Entries whose distances a band read counts before it guesses where the band ends.
const BAND_SAMPLE: usize = 512;
/// The fewest rows kept by which a first band places its limit (see [`Band::want`]).
const MIN_WANT: f64 = 4.0;

/// What a search did so far. Only the tests read it (the extension reports none of it): that
/// probing stays sub-linear, and that the cost model counts the probes a search makes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SearchStats {
    /// Substring values probed (one bucket chain each).
    pub probes: u64,
    /// Entries verified by their full distance (new rows the probes found, or entries read).
    pub candidates: u64,
    /// Entries that probes visited, new rows or not.
    pub visited: u64,
    /// Whole-table reads instead of probing (one per band).
    pub full_scans: u64,
    /// Rows that reads kept, each a tid read (a cache miss, and its tid page's pin and lock).
    pub kept: u64,
}

impl SearchStats {
    /// What the search cost by the prices of [`super::cost`], for `rows` rows in the index.
    pub fn estimated_us(&self, p: &Params, rows: u64) -> f64 {
        self.probes as f64 * PROBE_US
            + self.visited as f64 * CANDIDATE_US
            + self.full_scans as f64 * cost::read_us(p, rows)
    }
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
    /// Rows the index holds, about, for the probe-or-read decision.
    table_rows: u64,
    /// Estimated microseconds that probing may take before the search reads table 0 instead.
    budget_us: f64,
    /// What `budget_us` becomes once a k-NN search has returned [`TUNE_K`] rows and is asked for
    /// more: the budget its index chose for top-[`super::tune::TUNE_K_MORE`] searches.
    budget_more_us: f64,
    /// Rows returned so far.
    returned: usize,
    /// Estimated microseconds that probing took so far.
    spent_us: f64,
    /// The farthest radius probing may cover, and the farthest distance of a row that probing
    /// keeps: beyond it the search reads. See [`horizon`].
    pub(crate) horizon: u32,
    /// Once the search reads instead of probing: the rows its next band keeps.
    band_rows: Option<usize>,
    /// The rows its first band keeps: [`FIRST_BAND_ROWS`], or fewer when told to expect fewer.
    first_band: usize,
    /// A radius search: it returns every row within its radius, so one band keeps them all.
    radius_search: bool,
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
        let table_rows = mih.estimated_rows();
        let read_us = cost::read_us(p, table_rows);
        let budget = |pct: u16| match pct {
            NEVER_READ => f64::INFINITY,
            pct => read_us * pct as f64 / 100.0,
        };
        let mut budget_us = budget(mih.meta.probe_budget);
        let budget_more_us = match (radius, mih.meta.probe_budget_top100) {
            (None, Some(pct)) => budget(pct),
            _ => budget_us,
        };
        // A radius search knows how far it goes: it probes all the way when that costs less than
        // a read, whatever the budget (which is for k-NN, whose radius is found on the way).
        if radius.is_some() {
            let all_the_way = cost::probe_us(p, max_dist, table_rows);
            if all_the_way <= read_us {
                budget_us = budget_us.max(all_the_way * 1.5);
            }
        }
        let horizon = match radius {
            Some(_) => max_dist,
            None => horizon(p, table_rows, budget_us.max(budget_more_us), max_dist),
        };
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
            budget_us,
            budget_more_us,
            returned: 0,
            spent_us: 0.0,
            horizon,
            band_rows: None,
            first_band: FIRST_BAND_ROWS,
            radius_search: radius.is_some(),
            stats: SearchStats::default(),
        })
    }

    /// Rows returned so far.
    pub fn returned(&self) -> usize {
        self.returned
    }

    /// Tells a k-NN search, before its first row, how many rows the last search of the same
    /// statement returned (see [`RowsAsked`]): past [`TUNE_K`], it starts with the budget its
    /// index chose for top-100 searches, instead of switching to it after `TUNE_K` rows.
    /// Its first read, if it reads, then keeps enough rows for that many and a margin.
    pub fn expect(&mut self, rows: usize) {
        if self.returned == 0 {
            if rows > TUNE_K {
                self.budget_us = self.budget_more_us;
            }
            self.first_band = expected_band(rows);
        }
    }

    /// The next row and its distance, nearest first; `None` when every row within the search's
    /// limit has been returned.
    pub fn next<S: PageStore>(&mut self, mih: &Mih<S>) -> Result<Option<(Tid, u32)>, MihError> {
        loop {
            while (self.emit_dist as i64) <= self.covered && self.emit_dist <= self.max_dist {
                let bucket = &mut self.found[self.emit_dist as usize];
                if self.emit_pos < bucket.len() {
                    self.emit_pos += 1;
                    self.returned += 1;
                    return Ok(Some((bucket[self.emit_pos - 1], self.emit_dist)));
                }
                *bucket = Vec::new(); // returned: free it
                self.emit_dist += 1;
                self.emit_pos = 0;
            }
            if self.covered >= self.max_dist as i64 {
                return Ok(None);
            }
            if self.returned >= TUNE_K {
                // Asked for more than the first budget was chosen for: the index cannot see the
                // query's LIMIT, but past TUNE_K rows it is likely a larger one, for which the
                // build chose its own (usually smaller) budget. What was spent counts against it.
                self.budget_us = self.budget_more_us;
            }
            self.advance(mih)?;
        }
    }

    /// Covers one more unit of radius by probing, or a band of radii by reading table 0.
    fn advance<S: PageStore>(&mut self, mih: &Mih<S>) -> Result<(), MihError> {
        if let Some(rows) = self.band_rows {
            return self.read_band(mih, rows);
        }
        let p = mih.params();
        let m = p.m();
        let t = self.step % m;
        let shell = self.step / m;
        let bits = p.sub_len(t);
        if self.step > self.horizon {
            // Probing kept no row beyond the horizon: only a read finds them.
            return self.read_band(mih, self.first_band);
        }
        if shell > bits {
            // Table t was probed at every distance: every row has been found, and kept up to the
            // horizon.
            self.covered = self.horizon as i64;
            self.step = self.horizon + 1;
            return Ok(());
        }
        if self.spent_us + cost::shell_us(bits, shell, self.table_rows) > self.budget_us {
            return self.read_band(mih, self.first_band);
        }
        let mut failure = None;
        let qsub = self.qsub[t as usize];
        let (mut verify, heads) = self.verifier(p);
        let mut nprobes = 0u64;
        // A probe starts by waiting for its page: each value's head page is hinted PROBE_AHEAD
        // values before it is probed, so the waits overlap.
        let mut ahead = VecDeque::with_capacity(PROBE_AHEAD + 1);
        let mut probe = |v: u64| match mih.probe(heads, t, v, &mut |codes, tid| verify.visit(codes, tid)) {
            Ok(()) => true,
            Err(e) => {
                failure = Some(e);
                false
            }
        };
        let all = for_each_at_distance(qsub, bits, shell, |v| {
            mih.prefetch_probe(heads, t, v);
            ahead.push_back(v);
            if ahead.len() <= PROBE_AHEAD {
                return true;
            }
            nprobes += 1;
            probe(ahead.pop_front().unwrap_or(v))
        });
        if all {
            for v in ahead {
                nprobes += 1;
                if !probe(v) {
                    break;
                }
            }
        }
        let (candidates, visited) = (verify.candidates, verify.visited);
        if let Some(e) = failure {
            return Err(e);
        }
        self.stats.probes += nprobes;
        self.stats.candidates += candidates;
        self.stats.visited += visited;
        self.spent_us += nprobes as f64 * PROBE_US + visited as f64 * CANDIDATE_US;
        self.done[t as usize] = shell as i64;
        self.covered = self.step as i64;
        self.step += 1;
        Ok(())
    }

    /// Reads every code of table 0 and keeps the rows beyond the covered radius, up to the
    /// smallest distance that holds `rows` of them (a radius search: up to its radius); that
    /// distance is then covered. What probing found beyond the covered radius is dropped: the
    /// read finds it again, and only a read-everything pass knows the band's end.
    fn read_band<S: PageStore>(&mut self, mih: &Mih<S>, rows: usize) -> Result<(), MihError> {
        let p = mih.params();
        let lo = (self.covered + 1) as u32;
        let cap = if self.radius_search { usize::MAX } else { rows };
        for d in lo..=self.max_dist {
            self.found[d as usize].clear();
        }
        let mut band = Band {
            lo,
            limit: self.max_dist,
            cap,
            kept: 0,
            total_kept: 0,
            recut_at: 0,
            shrink_at: cap.saturating_mul(2),
            counts: vec![0; self.max_dist as usize + 1],
        };
        let mut entries = 0u64;
        let (query, found) = (&self.query, &mut self.found);
        let mut dist = Vec::with_capacity(p.capacity());
        // A first band guesses where it ends from the distances of the first pages before it
        // keeps rows, then re-cuts page by page (`Band::recut`). Both extrapolate, which assumes
        // the row list's order is random with respect to the query, as the build spreads it
        // (and table 0's pages hold hashed, so random, shares of the rows); inserts append in
        // the table's order, which may not be. So a band that ended short (its rows clustered
        // early in the list) is followed by bands that keep and cut only by what they kept,
        // and end with `cap` rows whenever the table has them. A radius search keeps it all.
        let extrapolate = self.band_rows.is_none() && cap != usize::MAX;
        let (mut sample, mut sampled) = (vec![0usize; self.max_dist as usize + 1], 0usize);
        let mut guessed = !extrapolate;
        let table_rows = self.table_rows.max(1) as f64;
        mih.read_rows(&self.heads, |codes, direction, tid| {
            entries += (codes.len() / p.code_bytes()) as u64;
            if guessed {
                band.limit =
                    within_in(direction, query, codes, band.limit, |i, d| band.keep(found, d, || tid(i)));
                if extrapolate {
                    band.recut(found, entries as f64 / table_rows);
                }
                return;
            }
            dist.clear();
            distances(query, codes, &mut dist);
            let top = sample.len() - 1;
            for &d in &dist {
                sample[(d as usize).min(top)] += 1;
            }
            sampled += dist.len();
            if sampled >= BAND_SAMPLE {
                // A wrong guess costs speed, never exactness: the band ends where it ends, and
                // covers that.
                guessed = true;
                if let Some(end) =
                    first_reaching(&sample, lo, band.limit, band.want(sampled as f64 / table_rows))
                {
                    band.cut(found, end);
                }
            }
            for (i, &d) in dist.iter().enumerate() {
                if d <= band.limit {
                    band.keep(found, d, || tid(i));
                }
            }
        })?;
        self.stats.candidates += entries;
        self.stats.full_scans += 1;
        self.stats.kept += band.total_kept;
        self.covered = band.limit as i64;
        self.band_rows = Some(rows.saturating_mul(2));
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
            horizon: self.horizon,
            found: &mut self.found,
            candidates: 0,
            visited: 0,
        };
        (verify, &self.heads)
    }
}

/// How many rows recent searches returned, by a key of the caller's (the extension's: the index
/// and the statement's text). The index cannot see a query's `LIMIT`, but a statement run again
/// (a prepared statement in a loop) is usually asked for as many rows as last time, so a search
/// can start with the budget for that ([`Search::expect`]). A guess only: a wrong one costs speed
/// (at most a read where probing was cheaper), never a row. The most recent [`ROWS_ASKED_KEYS`]
/// keys are kept.
#[derive(Debug, Default)]
pub struct RowsAsked {
    recent: VecDeque<(u64, usize)>,
}

/// Keys a [`RowsAsked`] remembers.
pub const ROWS_ASKED_KEYS: usize = 64;

impl RowsAsked {
    pub const fn new() -> RowsAsked {
        RowsAsked { recent: VecDeque::new() }
    }

    /// What the last search recorded under `key` returned.
    pub fn last(&self, key: u64) -> Option<usize> {
        self.recent.iter().find(|e| e.0 == key).map(|e| e.1)
    }

    /// Records that a search under `key` returned `rows` rows; forgets the least recent key past
    /// [`ROWS_ASKED_KEYS`].
    pub fn record(&mut self, key: u64, rows: usize) {
        if let Some(at) = self.recent.iter().position(|e| e.0 == key) {
            self.recent.remove(at);
        }
        self.recent.truncate(ROWS_ASKED_KEYS - 1);
        self.recent.push_front((key, rows));
    }
}

/// The rows a band of a whole-table read keeps: those from distance `lo` up to `limit`. After
/// each page `limit` falls to where the rows kept so far, extrapolated to the whole table, are
/// expected to reach `cap` with a margin ([`Band::want`]); within a page, to the smallest
/// distance holding `cap` of them (ties at it kept) whenever twice as many are kept. Each row
/// kept costs a tid read, so the sooner the limit is tight the cheaper the read: on 1M uniform
/// 64-bit codes, a top-10 read kept ~650 rows by the second rule alone.
struct Band {
    lo: u32,
    limit: u32,
    cap: usize,
    kept: usize,
    /// Rows kept, including those a later cut dropped.
    total_kept: u64,
    /// `total_kept` at the last [`Band::recut`].
    recut_at: u64,
    shrink_at: usize,
    /// Rows kept, by distance.
    counts: Vec<usize>,
}

impl Band {
    /// How many rows kept from a share `f` of the table place the limit: where the whole table
    /// is expected to hold `cap` rows, plus four standard deviations of a Poisson count and at
    /// least [`MIN_WANT`], so that a read seldom ends with fewer rows than it was asked for
    /// (which costs another read: three deviations and a floor of one row did in 2 % of top-10
    /// reads of 1M uniform codes, when the first page held one of the query's nearest codes).
    fn want(&self, f: f64) -> usize {
        let mean = self.cap as f64 * f.min(1.0);
        (mean + 4.0 * mean.sqrt()).ceil().max(MIN_WANT) as usize
    }

    /// Lowers the limit to where the rows kept from a share `f` of the table reach [`Band::want`].
    /// Nothing to do when no row was kept since the last time: `want` only grows with `f`.
    fn recut(&mut self, found: &mut [Vec<Tid>], f: f64) {
        if self.total_kept == self.recut_at {
            return;
        }
        self.recut_at = self.total_kept;
        self.cut_to_reach(found, self.want(f));
    }

    /// Lowers the limit to the smallest distance by which the rows kept reach `want`, if any.
    fn cut_to_reach(&mut self, found: &mut [Vec<Tid>], want: usize) {
        if let Some(end) = first_reaching(&self.counts, self.lo, self.limit, want) {
            if end < self.limit {
                self.cut(found, end);
            }
        }
    }

    /// Keeps a row at distance `d <= limit` (unless probing found it already: `d < lo`); returns
    /// the limit for the rows after it. `tid` reads the row's tid (another cache line of the
    /// page), only for a row kept.
    fn keep(&mut self, found: &mut [Vec<Tid>], d: u32, tid: impl FnOnce() -> Tid) -> u32 {
        if d < self.lo {
            return self.limit;
        }
        found[d as usize].push(tid());
        self.counts[d as usize] += 1;
        self.kept += 1;
        self.total_kept += 1;
        if self.kept > self.shrink_at {
            self.cut_to_reach(found, self.cap);
            self.shrink_at = self.cap.max(self.kept).saturating_mul(2);
        }
        self.limit
    }

    /// Lowers the limit to `end`, dropping the rows kept beyond it.
    fn cut(&mut self, found: &mut [Vec<Tid>], end: u32) {
        for d in end + 1..=self.limit {
            found[d as usize].clear();
            self.counts[d as usize] = 0;
        }
        self.kept = self.counts.iter().sum();
        self.limit = end;
    }
}

/// The rows a first band keeps for a search expected to return `rows`: half as many again, and
/// at least 8 more, so that a few rows more than last time need no second read; but no more
/// than [`FIRST_BAND_ROWS`] (what a search told nothing keeps), or `rows` when that is more.
fn expected_band(rows: usize) -> usize {
    rows.saturating_add((rows / 2).max(8)).min(FIRST_BAND_ROWS.max(rows))
}

/// How far a k-NN search may probe: the largest radius whose probes the cost model prices within
/// [`HORIZON_SLACK`] times the most the search may spend probing (`budget_us`, infinite: every
/// distance), at most `max_dist`. The budget, checked shell by shell against what probing really
/// spent, usually stops probing before; but a row that probing finds beyond the radius it ends
/// at is dropped by the read that follows (which finds it again), so rows beyond the horizon are
/// never kept, nor their tids read, and probing never covers past it. At 1M learned-like 64-bit
/// codes nearly every row a top-10 search meets lies beyond.
fn horizon(p: &Params, rows: u64, budget_us: f64, max_dist: u32) -> u32 {
    let most = budget_us * HORIZON_SLACK;
    let m = p.m();
    let mut spent = 0.0;
    for step in 0..=max_dist {
        let (t, shell) = (step % m, step / m);
        if shell > p.sub_len(t) {
            return max_dist;
        }
        spent += cost::shell_us(p.sub_len(t), shell, rows);
        if spent > most {
            return step.saturating_sub(1);
        }
    }
    max_dist
}

/// How much more than the probe budget the cost model may price the probing to the horizon: it
/// prices substring values as equally frequent, and a search's real probing may cost less.
const HORIZON_SLACK: f64 = 2.0;

/// The smallest distance in `lo..=limit` by which `hist` (counts by distance) adds up to `want`.
fn first_reaching(hist: &[usize], lo: u32, limit: u32, want: usize) -> Option<u32> {
    let mut sum = 0;
    (lo..=limit).find(|&d| {
        sum += hist[d as usize];
        sum >= want
    })
}

/// Verifies candidates by their full distance and files them by distance.
struct Verify<'a> {
    p: &'a Params,
    query: &'a [u8],
    qsub: &'a [u64],
    done: &'a [i64],
    horizon: u32,
    found: &'a mut [Vec<Tid>],
    candidates: u64,
    /// Entries seen, new or not.
    visited: u64,
}

impl Verify<'_> {
    /// Files the new rows of a run of codes that a probe found (`tid(i)` reads code `i`'s tid).
    /// A row beyond the horizon is not kept (the read that covers its distance finds it): nearly
    /// every row, so the run goes through the filtering kernel, which looks at a code only when
    /// it is within the horizon. Such a row is new unless some table already holds it within
    /// the radius probed there; the table being probed has `done` one below the current shell,
    /// under the row's substring distance in it, so it never counts. The tid is read only for a
    /// row kept: it lies on another cache line of the page.
    #[inline]
    fn visit(&mut self, codes: &[u8], tid: &dyn Fn(usize) -> Tid) {
        let cb = self.query.len();
        self.visited += (codes.len() / cb) as u64;
        within(self.query, codes, self.horizon, |i, d| {
            let code = &codes[i * cb..(i + 1) * cb];
            let seen = self.done.iter().zip(self.qsub).enumerate().any(|(t, (&r, &q))| {
                r >= 0 && (self.p.substring(t as u32, code) ^ q).count_ones() as i64 <= r
            });
            if !seen {
                self.candidates += 1;
                self.found[d as usize].push(tid(i));
            }
            self.horizon
        });
    }
}
