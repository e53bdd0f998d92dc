//! On-page formats and the parameters of a Multi-Index Hashing index.
//!
//! Every page is a PostgreSQL page: the first [`PAGE_HEADER`] bytes are PostgreSQL's page header,
//! which this module never reads or writes except `pd_lower` (see [`set_lower`]): everything jdsh
//! stores sits between the header and `pd_lower`, so that Generic WAL (which skips the hole
//! between `pd_lower` and `pd_upper`) logs exactly the bytes in use.
//!
//! Pages, by block number:
//! - 0: the meta page ([`Meta`]): code length, number of substrings `m` and their bit ranges,
//!   buckets per table, where the directory is.
//! - 1..=D: the directory: for table `t` and bucket `b`, the block of the bucket's head page
//!   (slot `t * nbuckets + b`), or [`INVALID_BLOCK`] while the bucket is empty.
//! - the rest: bucket pages. A bucket is a chain of pages; each page holds entries
//!   `(code, heap tid)` sorted by the table's substring value, so a probe is a binary search.
//!   The full code is in every entry, so verification never visits the heap.

use crate::code::storage_bytes;
use thiserror::Error;

pub const BLOCK_SIZE: usize = 8192;
/// Size of PostgreSQL's `PageHeaderData` (with no line pointers).
pub const PAGE_HEADER: usize = 24;
pub const INVALID_BLOCK: u32 = u32::MAX;
pub type BlockNo = u32;

/// Largest number of substrings (tables). The paper's rule gives b / log2(n), at most ~4096/10.
pub const MAX_SUBSTRINGS: u32 = 256;
/// Longest substring: values are handled as `u64`.
pub const MAX_SUBSTRING_BITS: u32 = 64;

const KIND_META: u16 = 0x4D4D; // "MM"
const KIND_DIR: u16 = 0x4D44; // "MD"
const KIND_BUCKET: u16 = 0x4D42; // "MB"
const KIND_FREE: u16 = 0x4D46; // "MF": unlinked by VACUUM, waiting in the free space map
pub const FORMAT_VERSION: u16 = 1;

const BUCKET_HEADER: usize = 16;
const DIR_HEADER: usize = 8;
pub const DIR_SLOTS_PER_PAGE: usize = (BLOCK_SIZE - PAGE_HEADER - DIR_HEADER) / 4;
const TID_BYTES: usize = 6;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MihError {
    #[error("substrings must be between 1 and {max} for {nbits}-bit codes, got {m}")]
    BadSubstrings { m: u32, nbits: u32, max: u32 },
    #[error("code length {nbits} is not supported by the mih index (1..={max})")]
    BadLength { nbits: u32, max: u32 },
    #[error("code length {got} does not match the index's {expected} bits")]
    LengthMismatch { expected: u32, got: u32 },
    #[error("index is corrupt: {0}")]
    Corrupt(String),
}

/// A heap tuple identifier (PostgreSQL `ItemPointer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tid {
    pub block: u32,
    pub offset: u16,
}

impl Tid {
    pub fn new(block: u32, offset: u16) -> Tid {
        Tid { block, offset }
    }
    fn write(self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.block.to_le_bytes());
        out[4..6].copy_from_slice(&self.offset.to_le_bytes());
    }
    fn read(b: &[u8]) -> Tid {
        Tid { block: u32::from_le_bytes([b[0], b[1], b[2], b[3]]), offset: u16::from_le_bytes([b[4], b[5]]) }
    }
}

/// The shape of an index: how codes are split and hashed. Stored in the meta page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub nbits: u32,
    /// Substring `t` is bits `bounds[t]..bounds[t + 1]` of the code (MSB-first).
    pub bounds: Vec<u32>,
    /// Buckets per table.
    pub nbuckets: u32,
    /// Percentage of a bucket page that a build fills (the rest is room for inserts).
    pub fillfactor: u8,
}

impl Params {
    /// Chooses the number of substrings by the rule of Norouzi et al. (m = b / log2 n, so that a
    /// substring has about log2 n bits and each of its values about one code), unless `m` is
    /// given; and enough buckets for `n` entries per table at the fill factor.
    pub fn choose(nbits: u32, n: u64, m: Option<u32>, fillfactor: u8) -> Result<Params, MihError> {
        if !(1..=crate::MAX_BITS).contains(&nbits) {
            return Err(MihError::BadLength { nbits, max: crate::MAX_BITS });
        }
        let min_m = nbits.div_ceil(MAX_SUBSTRING_BITS);
        let max_m = nbits.min(MAX_SUBSTRINGS);
        let m = match m {
            Some(m) if (min_m..=max_m).contains(&m) => m,
            Some(m) => return Err(MihError::BadSubstrings { m, nbits, max: max_m }),
            None => {
                // Small tables would give long substrings with nearly empty buckets; assume at
                // least 2^16 rows so that an index built early stays reasonable as rows arrive.
                let log_n = (n.max(1 << 16) as f64).log2();
                ((nbits as f64 / log_n).round() as u32).clamp(min_m.max(1), max_m)
            }
        };
        let bounds = (0..=m).map(|t| (t as u64 * nbits as u64 / m as u64) as u32).collect();
        let fillfactor = fillfactor.clamp(10, 100);
        let mut p = Params { nbits, bounds, nbuckets: 1, fillfactor };
        // Buckets sized from at least 10k rows: an index created on an empty table still spreads
        // its first inserts (REINDEX after a large load re-sizes it).
        let per_page = (p.capacity() * fillfactor as usize / 100).max(1) as u64;
        p.nbuckets = n.max(10_000).div_ceil(per_page).clamp(1, 1 << 24) as u32;
        Ok(p)
    }

    pub fn m(&self) -> u32 {
        self.bounds.len() as u32 - 1
    }

    pub fn sub_len(&self, t: u32) -> u32 {
        self.bounds[t as usize + 1] - self.bounds[t as usize]
    }

    /// Bytes of a code as stored (word-padded, what the popcount kernel takes).
    pub fn code_bytes(&self) -> usize {
        storage_bytes(self.nbits)
    }

    pub fn entry_size(&self) -> usize {
        self.code_bytes() + TID_BYTES
    }

    /// Entries per bucket page.
    pub fn capacity(&self) -> usize {
        (BLOCK_SIZE - PAGE_HEADER - BUCKET_HEADER) / self.entry_size()
    }

    /// Entries per page that a build writes.
    pub fn build_fill(&self) -> usize {
        (self.capacity() * self.fillfactor as usize / 100).max(1)
    }

    /// Value of substring `t` of `code` (MSB-first bits, as an integer of `sub_len(t)` bits).
    #[inline]
    pub fn substring(&self, t: u32, code: &[u8]) -> u64 {
        extract_bits(code, self.bounds[t as usize], self.sub_len(t))
    }

    /// Bucket of substring value `value` in table `t`.
    #[inline]
    pub fn bucket(&self, t: u32, value: u64) -> u32 {
        (crate::rng::mix64(value ^ (t as u64).wrapping_mul(0xA24B_AED4_963E_E407)) % self.nbuckets as u64)
            as u32
    }

    pub fn dir_slots(&self) -> usize {
        self.m() as usize * self.nbuckets as usize
    }

    pub fn dir_pages(&self) -> u32 {
        self.dir_slots().div_ceil(DIR_SLOTS_PER_PAGE) as u32
    }

    /// Directory page and slot within it of table `t`, bucket `b`.
    pub fn dir_location(&self, t: u32, b: u32) -> (BlockNo, usize) {
        let slot = t as usize * self.nbuckets as usize + b as usize;
        (1 + (slot / DIR_SLOTS_PER_PAGE) as u32, slot % DIR_SLOTS_PER_PAGE)
    }

    /// Substring distances of `code` to the query's substrings (`qsub`).
    pub fn sub_distances(&self, code: &[u8], qsub: &[u64], out: &mut Vec<u32>) {
        out.clear();
        out.extend((0..self.m()).map(|t| (self.substring(t, code) ^ qsub[t as usize]).count_ones()));
    }
}

/// Bits `start..start + len` of `bytes` (MSB-first), `len <= 64`.
#[inline]
pub fn extract_bits(bytes: &[u8], start: u32, len: u32) -> u64 {
    if len == 0 {
        return 0;
    }
    let first = (start / 8) as usize;
    let skip = start % 8;
    // Fast path (the probe's binary search runs this per comparison): one big-endian load.
    if skip + len <= 64 && first + 8 <= bytes.len() {
        let w = u64::from_be_bytes([
            bytes[first],
            bytes[first + 1],
            bytes[first + 2],
            bytes[first + 3],
            bytes[first + 4],
            bytes[first + 5],
            bytes[first + 6],
            bytes[first + 7],
        ]);
        return (w << skip) >> (64 - len);
    }
    let last = ((start + len - 1) / 8) as usize;
    // Up to 9 bytes: accumulate in u128 so that a 64-bit substring at an odd offset fits.
    let mut acc: u128 = 0;
    for &byte in &bytes[first..=last] {
        acc = (acc << 8) | byte as u128;
    }
    let total = ((last - first + 1) * 8) as u32;
    let shift = total - (start % 8) - len;
    ((acc >> shift) & ((1u128 << len) - 1)) as u64
}

fn rd16(p: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([p[at], p[at + 1]])
}
fn rd32(p: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}
fn wr16(p: &mut [u8], at: usize, v: u16) {
    p[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn wr32(p: &mut [u8], at: usize, v: u32) {
    p[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Sets PostgreSQL's `pd_lower` (offset 12 of the page header) to the end of the used area.
pub fn set_lower(page: &mut [u8], used: usize) {
    wr16(page, 12, (PAGE_HEADER + used) as u16);
}

const H: usize = PAGE_HEADER;

// ---- meta page -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub params: Params,
    /// Rows indexed by the build (a size hint for the scan's cost decisions).
    pub built_rows: u64,
}

impl Meta {
    pub fn write(&self, page: &mut [u8]) {
        let p = &self.params;
        wr16(page, H, KIND_META);
        wr16(page, H + 2, FORMAT_VERSION);
        wr32(page, H + 4, p.nbits);
        wr32(page, H + 8, p.m());
        wr32(page, H + 12, p.nbuckets);
        page[H + 16] = p.fillfactor;
        page[H + 17..H + 24].fill(0);
        page[H + 24..H + 32].copy_from_slice(&self.built_rows.to_le_bytes());
        let mut at = H + 32;
        for &b in &p.bounds {
            wr16(page, at, b as u16);
            at += 2;
        }
        set_lower(page, at - H);
    }

    pub fn read(page: &[u8]) -> Result<Meta, MihError> {
        if rd16(page, H) != KIND_META {
            return Err(MihError::Corrupt("block 0 is not a mih meta page".into()));
        }
        let version = rd16(page, H + 2);
        if version != FORMAT_VERSION {
            return Err(MihError::Corrupt(format!(
                "on-disk format version {version}, this build reads {FORMAT_VERSION}: REINDEX the index"
            )));
        }
        let nbits = rd32(page, H + 4);
        let m = rd32(page, H + 8);
        let nbuckets = rd32(page, H + 12);
        if !(1..=crate::MAX_BITS).contains(&nbits) || m == 0 || m > MAX_SUBSTRINGS || nbuckets == 0 {
            return Err(MihError::Corrupt(format!(
                "bad meta page ({nbits} bits, m = {m}, {nbuckets} buckets)"
            )));
        }
        let built_rows = u64::from_le_bytes(page[H + 24..H + 32].try_into().unwrap_or([0; 8]));
        let bounds: Vec<u32> = (0..=m as usize).map(|i| rd16(page, H + 32 + 2 * i) as u32).collect();
        let ok = bounds[0] == 0
            && bounds[m as usize] == nbits
            && bounds.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= MAX_SUBSTRING_BITS);
        if !ok {
            return Err(MihError::Corrupt(format!("bad substring bounds {bounds:?} for {nbits} bits")));
        }
        let params = Params { nbits, bounds, nbuckets, fillfactor: page[H + 16] };
        Ok(Meta { params, built_rows })
    }
}

// ---- directory pages -------------------------------------------------------------------------

pub fn dir_init(page: &mut [u8], first_slot: u32) {
    wr16(page, H, KIND_DIR);
    wr16(page, H + 2, 0);
    wr32(page, H + 4, first_slot);
    for s in 0..DIR_SLOTS_PER_PAGE {
        wr32(page, H + DIR_HEADER + 4 * s, INVALID_BLOCK);
    }
    set_lower(page, DIR_HEADER + 4 * DIR_SLOTS_PER_PAGE);
}

pub fn dir_check(page: &[u8]) -> Result<(), MihError> {
    if rd16(page, H) != KIND_DIR {
        return Err(MihError::Corrupt("expected a directory page".into()));
    }
    Ok(())
}

pub fn dir_get(page: &[u8], slot: usize) -> BlockNo {
    rd32(page, H + DIR_HEADER + 4 * slot)
}

pub fn dir_set(page: &mut [u8], slot: usize, blk: BlockNo) {
    wr32(page, H + DIR_HEADER + 4 * slot, blk);
}

// ---- bucket pages ----------------------------------------------------------------------------

/// A bucket page viewed through the index parameters.
pub struct Bucket;

impl Bucket {
    pub fn init(page: &mut [u8], table: u32, bucket: u32) {
        wr16(page, H, KIND_BUCKET);
        wr16(page, H + 2, 0);
        wr32(page, H + 4, INVALID_BLOCK);
        wr16(page, H + 8, table as u16);
        wr16(page, H + 10, 0);
        wr32(page, H + 12, bucket);
        set_lower(page, BUCKET_HEADER);
    }

    /// Checks the page kind and that it belongs to table `t`, bucket `b`.
    pub fn check(page: &[u8], p: &Params, t: u32, b: u32) -> Result<(), MihError> {
        if rd16(page, H) != KIND_BUCKET {
            return Err(MihError::Corrupt(format!("expected a bucket page of table {t}, bucket {b}")));
        }
        let (pt, pb) = (rd16(page, H + 8) as u32, rd32(page, H + 12));
        if pt != t || pb != b || Bucket::count(page) > p.capacity() {
            return Err(MihError::Corrupt(format!(
                "bucket page of table {pt}, bucket {pb} with {} entries found in the chain of table {t}, bucket {b}",
                Bucket::count(page)
            )));
        }
        Ok(())
    }

    pub fn is_bucket(page: &[u8]) -> bool {
        rd16(page, H) == KIND_BUCKET
    }

    pub fn count(page: &[u8]) -> usize {
        rd16(page, H + 2) as usize
    }

    pub fn next(page: &[u8]) -> BlockNo {
        rd32(page, H + 4)
    }

    pub fn set_next(page: &mut [u8], next: BlockNo) {
        wr32(page, H + 4, next);
    }

    #[inline]
    fn at(p: &Params, i: usize) -> usize {
        H + BUCKET_HEADER + i * p.entry_size()
    }

    /// Entry `i`: (code bytes, heap tid).
    #[inline]
    pub fn entry<'a>(page: &'a [u8], p: &Params, i: usize) -> (&'a [u8], Tid) {
        let at = Bucket::at(p, i);
        let cb = p.code_bytes();
        (&page[at..at + cb], Tid::read(&page[at + cb..at + cb + TID_BYTES]))
    }

    /// First entry whose substring `t` is >= `value`.
    pub fn lower_bound(page: &[u8], p: &Params, t: u32, value: u64) -> usize {
        let n = Bucket::count(page);
        // Pages written by a build hold disjoint value ranges: most probes of a chain's other
        // pages stop at these two comparisons.
        if n == 0 || p.substring(t, Bucket::entry(page, p, n - 1).0) < value {
            return n;
        }
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if p.substring(t, Bucket::entry(page, p, mid).0) < value {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Inserts keeping the order by substring `t`; false when the page is full.
    pub fn insert(page: &mut [u8], p: &Params, t: u32, code: &[u8], tid: Tid) -> bool {
        let n = Bucket::count(page);
        if n >= p.capacity() {
            return false;
        }
        let value = p.substring(t, code);
        // After the last entry with the same value: equal values keep insertion order.
        let mut i = Bucket::lower_bound(page, p, t, value);
        while i < n && p.substring(t, Bucket::entry(page, p, i).0) == value {
            i += 1;
        }
        let es = p.entry_size();
        let at = Bucket::at(p, i);
        page.copy_within(at..Bucket::at(p, n), at + es);
        Bucket::write_entry(page, p, i, code, tid);
        Bucket::set_count(page, p, n + 1);
        true
    }

    /// Appends without keeping order: only for builds, which feed sorted entries.
    pub fn push(page: &mut [u8], p: &Params, code: &[u8], tid: Tid) {
        let n = Bucket::count(page);
        Bucket::write_entry(page, p, n, code, tid);
        Bucket::set_count(page, p, n + 1);
    }

    fn write_entry(page: &mut [u8], p: &Params, i: usize, code: &[u8], tid: Tid) {
        let at = Bucket::at(p, i);
        let cb = p.code_bytes();
        page[at..at + cb].copy_from_slice(code);
        tid.write(&mut page[at + cb..at + cb + TID_BYTES]);
    }

    /// The count and `pd_lower` move together, so that WAL covers exactly the entries.
    fn set_count(page: &mut [u8], p: &Params, n: usize) {
        wr16(page, H + 2, n as u16);
        set_lower(page, BUCKET_HEADER + n * p.entry_size());
    }

    /// Removes the entries whose tid `dead` says so, keeping order; returns how many.
    pub fn retain(page: &mut [u8], p: &Params, mut dead: impl FnMut(Tid) -> bool) -> usize {
        let n = Bucket::count(page);
        let es = p.entry_size();
        let mut w = 0;
        for r in 0..n {
            let (_, tid) = Bucket::entry(page, p, r);
            if !dead(tid) {
                if w != r {
                    let (from, to) = (Bucket::at(p, r), Bucket::at(p, w));
                    page.copy_within(from..from + es, to);
                }
                w += 1;
            }
        }
        Bucket::set_count(page, p, w);
        n - w
    }

    /// Marks a page unlinked by VACUUM; it is reused from the free space map.
    pub fn make_free(page: &mut [u8]) {
        wr16(page, H, KIND_FREE);
        wr16(page, H + 2, 0);
        set_lower(page, 4);
    }
}

/// A page that holds nothing: never initialised (a crash after extending the relation) or
/// unlinked by VACUUM. Such pages are handed out again for new bucket pages.
pub fn is_free(page: &[u8]) -> bool {
    let kind = rd16(page, H);
    kind == KIND_FREE || kind == 0 && page[H..H + BUCKET_HEADER].iter().all(|&b| b == 0)
}
