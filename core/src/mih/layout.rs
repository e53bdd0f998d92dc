//! On-page formats and the parameters of a Multi-Index Hashing index.
//!
//! Every page is a PostgreSQL page: the first [`PAGE_HEADER`] bytes are PostgreSQL's page header,
//! which this module never reads or writes except `pd_lower` and `pd_upper` (at [`PD_LOWER`] and
//! [`PD_UPPER`], see [`set_bounds`]): everything jdsh stores sits between the header and
//! `pd_lower` or between `pd_upper` and the page's end, so that Generic WAL (which skips the hole
//! between `pd_lower` and `pd_upper`) logs exactly the bytes in use.
//!
//! Pages, by block number:
//! - 0: the meta page ([`Meta`]): code length, number of substrings `m` and their bit ranges,
//!   buckets per table, where the directory is.
//! - 1..=D: the directory: for table `t` and bucket `b`, the block of the bucket's head page
//!   (slot `t * nbuckets + b`), or [`INVALID_BLOCK`] while the bucket is empty.
//! - the rest: bucket pages, and the row list's pages. A bucket is a chain of pages; each page
//!   holds entries `(code, heap tid)` sorted by the table's substring value, so a probe is a
//!   search in one sorted array. The full code is in every entry, so verification never visits
//!   the heap. The row list holds every row once more, for a search that reads them all: pages
//!   of codes only, packed full (a read's time goes mostly to pages, not bytes: 1M 64-bit codes
//!   are ~1,000 such pages, against ~2,000-2,500 bucket pages of one table), each paired with a
//!   page of their tids, read only for the rows a search keeps.
//!
//! The byte layout of each page kind is in the modules [`meta_page`], [`dir_page`] and
//! [`bucket_page`] (offsets from the start of the page, numbers little-endian), as pgvector's
//! `hnsw.h` declares its page structs.

use crate::code::storage_bytes;
use thiserror::Error;

/// PostgreSQL's `BLCKSZ` (the extension asserts that its server agrees).
pub const BLOCK_SIZE: usize = 8192;
/// Size of PostgreSQL's `PageHeaderData` (with no line pointers): where jdsh's data starts.
pub const PAGE_HEADER: usize = 24;
/// Offset of `pd_lower` (`u16`) in PostgreSQL's `PageHeaderData`.
pub const PD_LOWER: usize = 12;
/// Offset of `pd_upper` (`u16`), right after `pd_lower`.
pub const PD_UPPER: usize = 14;
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
const KIND_ROWS: u16 = 0x4D52; // "MR": codes of the row list
const KIND_TIDS: u16 = 0x4D54; // "MT": the tids of a row page
/// 4: tables that move: the directory's first block, and what a retune left behind, on the meta
///    page (3 kept the directory at block 1, and still does until a retune moves it).
/// 3: the row list (2 had none: its searches read table 0, and still do).
/// 2: a bucket page keeps codes and tids in two arrays (1 interleaved them).
pub const FORMAT_VERSION: u16 = 4;
/// The oldest format this build reads.
const OLDEST_VERSION: u16 = 2;

/// Fence values per bucket page: see [`bucket_page`].
pub const FENCES: usize = 16;
const BUCKET_HEADER: usize = 16 + 8 * FENCES;
const ROWS_HEADER: usize = 16;
const TIDS_HEADER: usize = 8;
const DIR_HEADER: usize = 8;
/// What a free page keeps of a bucket page's header: its kind and a zero count.
const FREE_HEADER: usize = 4;
pub const DIR_SLOTS_PER_PAGE: usize = (BLOCK_SIZE - PAGE_HEADER - DIR_HEADER) / 4;
const TID_BYTES: usize = 6;

/// Where every page kind starts, right after PostgreSQL's page header: its kind (`u16`, one of
/// the `KIND_*` values; 0 for a page never initialised).
const KIND: usize = PAGE_HEADER;

/// The meta page (block 0), offsets from the start of the page:
///
/// ```text
/// PAGE_HEADER +  0  u16           kind: KIND_META
///             +  2  u16           version: FORMAT_VERSION
///             +  4  u32           nbits: code length
///             +  8  u32           m: substrings (tables)
///             + 12  u32           nbuckets: buckets per table
///             + 16  u8            fillfactor, then a zero byte
///             + 18  u16           probe_budget: percent of a whole-table read that a search may
///                                 spend probing ([`NEVER_READ`]: no limit)
///             + 20  u16           probe_budget_top100 + 1: the same once a search has returned
///                                 10 rows and is asked for more (0: none chosen, as in
///                                 indexes built before it existed), then 2 zero bytes
///             + 24  u64           built_rows
///             + 32  [u16; m + 1]  substring bounds
///   then, from the next multiple of 4 ([`meta_page::row_list`]; format 3 on):
///                   u32           the row list's first row page
///                   u32           a row page at or near its end (where inserts start looking)
///   then (format 4 on; format 3 reads as directory at 1, blocks 0, nothing retired or reserved):
///                   u32           the directory's first block (its pages follow it)
///                   u32           the relation's size in blocks when the tables were written
///                   u32           a retired directory's first block (`INVALID_BLOCK`: none)
///                   u32           its pages
///                   u64           the stamp after which no scan reads the retired tables
///                   u32           the first block reserved by a retune not yet switched
///                                 (`INVALID_BLOCK`: none)
///                   u32           how many blocks it reserved
///                   u16           the tables' generation ([`Params::generation`]), then a zero u16
///                                 (`pd_lower` ends after it)
/// ```
pub mod meta_page {
    use super::PAGE_HEADER as H;
    pub const VERSION: usize = H + 2;
    pub const NBITS: usize = H + 4;
    pub const M: usize = H + 8;
    pub const NBUCKETS: usize = H + 12;
    pub const FILLFACTOR: usize = H + 16;
    pub const ZERO: usize = H + 17;
    pub const PROBE_BUDGET: usize = H + 18;
    pub const PROBE_BUDGET_TOP100: usize = H + 20;
    /// Zero bytes up to `BUILT_ROWS`.
    pub const PADDING: usize = H + 22;
    pub const BUILT_ROWS: usize = H + 24;
    pub const BOUNDS: usize = H + 32;
    /// Where the row list's head and tail blocks are, for `m` substrings.
    pub const fn row_list(m: usize) -> usize {
        (BOUNDS + 2 * (m + 1)).next_multiple_of(4)
    }
    /// Where the tables' place and a retune's leftovers are (format 4), for `m` substrings.
    pub const fn tables(m: usize) -> usize {
        row_list(m) + 8
    }
    /// Bytes from [`tables`] to `pd_lower`.
    pub const TABLES_BYTES: usize = 36;
}

/// A directory page (the D blocks from the one the meta page names: 1 until a retune), offsets from the start of the page:
///
/// ```text
/// PAGE_HEADER + 0  u16                        kind: KIND_DIR
///             + 2  u16                        zero
///             + 4  u32                        first slot: the directory slot of this page's slot 0
///             + 8  [u32; DIR_SLOTS_PER_PAGE]  head block of each slot, INVALID_BLOCK while empty
/// ```
pub mod dir_page {
    use super::PAGE_HEADER as H;
    pub const ZERO: usize = H + 2;
    pub const FIRST_SLOT: usize = H + 4;
    pub const SLOTS: usize = H + super::DIR_HEADER;
}

/// A bucket page, offsets from the start of the page:
///
/// ```text
/// PAGE_HEADER +  0  u16  kind: KIND_BUCKET (KIND_FREE once VACUUM unlinks it: then only the
///                        kind and a zero count are kept)
///             +  2  u16  count: entries on the page
///             +  4  u32  next: the chain's next page, INVALID_BLOCK at its end
///             +  8  u16  table
///             + 10  u16  generation of its tables ([`Params::generation`]; 0 before format 4)
///             + 12  u32  bucket
///             + 16  [u64; FENCES]  fence j: the substring value of entry j * count / FENCES
///                   (0 past the count): a probe finds its entries' stretch of the page from
///                   these two cache lines next to the header, and reads only that stretch
///             + 144 [code; count]: word-padded code bytes, sorted by the table's substring
///                   (`pd_lower` ends after them)
/// BLOCK_SIZE - 6 (i + 1)  the heap tid of entry i (u32 block, u16 offset): the tids run from the
///                   page's end backwards (`pd_upper` is where the last one starts)
/// ```
pub mod bucket_page {
    use super::PAGE_HEADER as H;
    pub const COUNT: usize = H + 2;
    pub const NEXT: usize = H + 4;
    pub const TABLE: usize = H + 8;
    pub const GENERATION: usize = H + 10;
    pub const BUCKET: usize = H + 12;
    pub const FENCES: usize = H + 16;
    pub const ENTRIES: usize = H + super::BUCKET_HEADER;
}

/// A row page (the row list's codes), offsets from the start of the page:
///
/// ```text
/// PAGE_HEADER +  0  u16  kind: KIND_ROWS
///             +  2  u16  count: codes on the page
///             +  4  u32  next: the list's next row page, INVALID_BLOCK at its end
///             +  8  u32  tids: the block of this page's tid page
///             + 12  u32  zero
///             + 16  [code; count]: word-padded code bytes, in no order (`pd_lower` ends after)
/// ```
///
/// A build writes the row pages as one run of blocks and their tid pages as the next run, so that
/// a read streams row pages that usually sit in consecutive buffers; inserts append a row page
/// and its tid page together.
///
/// A tid page:
///
/// ```text
/// PAGE_HEADER +  0  u16  kind: KIND_TIDS
///             +  2  u16  count: the same as its row page's
///             +  4  u32  rows: the block of its row page
///             +  8  [tid; count]: the heap tid of code i (u32 block, u16 offset)
///                   (`pd_lower` ends after them)
/// ```
pub mod row_page {
    use super::PAGE_HEADER as H;
    pub const COUNT: usize = H + 2;
    pub const NEXT: usize = H + 4;
    pub const TIDS: usize = H + 8;
    pub const ZERO: usize = H + 12;
    pub const CODES: usize = H + super::ROWS_HEADER;
    /// On a tid page.
    pub const OWNER: usize = H + 4;
    pub const TID_ENTRIES: usize = H + super::TIDS_HEADER;
}

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
    /// A scan met pages that are no longer its tables': a retune replaced them and a VACUUM
    /// freed them while it ran (on a standby: the primary cannot see its scans).
    #[error("the index's tables were replaced and freed while this scan read them")]
    Retuned,
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
    /// Which tables: 0 from a build, one more from each retune (wrapping). Every bucket page
    /// carries its tables' generation, so that a scan still walking tables that a retune
    /// replaced and a VACUUM freed (on a standby, which the primary's VACUUM cannot see) meets
    /// a page of other tables as such, never as one of its own ([`MihError::Retuned`]).
    pub generation: u16,
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
        let mut p = Params { nbits, bounds, nbuckets: 1, fillfactor, generation: 0 };
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

    /// Codes per row page (and tids per tid page: a tid page has room for more).
    pub fn row_capacity(&self) -> usize {
        (BLOCK_SIZE - PAGE_HEADER - ROWS_HEADER) / self.code_bytes()
    }

    /// Entries per page that a build writes.
    pub fn build_fill(&self) -> usize {
        (self.capacity() * self.fillfactor as usize / 100).max(1)
    }

    /// Pages a build writes for a bucket of `count` entries. A bucket that fits one page gets one,
    /// even past the fill factor: buckets hold `build_fill` entries on average, so about half of
    /// them are a little over it, and a second page for those few entries would make every probe
    /// and every read of them touch two pages. Longer buckets are spread over pages at the fill
    /// factor.
    pub fn build_pages(&self, count: usize) -> usize {
        if count <= self.capacity() {
            1
        } else {
            count.div_ceil(self.build_fill())
        }
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

    /// Directory page (counted from the directory's first) and slot within it of table `t`,
    /// bucket `b`.
    pub fn dir_location(&self, t: u32, b: u32) -> (u32, usize) {
        let slot = t as usize * self.nbuckets as usize + b as usize;
        ((slot / DIR_SLOTS_PER_PAGE) as u32, slot % DIR_SLOTS_PER_PAGE)
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
    // Fast path (probes and candidate checks run this per entry): the bits lie in one 64-bit
    // word of the word-padded code, a single big-endian load.
    let (word, skip) = ((start / 64) as usize * 8, start % 64);
    if len > 0 && skip + len <= 64 && word + 8 <= bytes.len() {
        let w = u64::from_be_bytes(bytes[word..word + 8].try_into().unwrap());
        return (w << skip) >> (64 - len);
    }
    extract_bits_slow(bytes, start, len)
}

/// [`extract_bits`] for bits across two words, or in a code shorter than a word.
#[inline(never)]
fn extract_bits_slow(bytes: &[u8], start: u32, len: u32) -> u64 {
    if len == 0 {
        return 0;
    }
    let first = (start / 8) as usize;
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

/// Sets PostgreSQL's `pd_lower` to the end of the used area at the page's start (`used` bytes
/// after the header) and `pd_upper` to the start of the used area at its end (`tail` bytes).
/// Generic WAL logs neither the hole between them nor anything a page kind keeps there.
pub fn set_bounds(page: &mut [u8], used: usize, tail: usize) {
    wr16(page, PD_LOWER, (PAGE_HEADER + used) as u16);
    wr16(page, PD_UPPER, (BLOCK_SIZE - tail) as u16);
}

/// [`set_bounds`] for page kinds that keep nothing at the page's end.
pub fn set_lower(page: &mut [u8], used: usize) {
    set_bounds(page, used, 0);
}

/// Copies what jdsh owns of a page image onto a page that PostgreSQL initialised (`PageInit`):
/// `pd_lower`, `pd_upper` and everything after the page header. The rest of the header stays
/// PostgreSQL's.
pub fn copy_contents(page: &mut [u8], image: &[u8]) {
    page[PAGE_HEADER..].copy_from_slice(&image[PAGE_HEADER..]);
    page[PD_LOWER..PD_UPPER + 2].copy_from_slice(&image[PD_LOWER..PD_UPPER + 2]);
}

// ---- meta page -------------------------------------------------------------------------------

/// A probe budget without limit: searches never read a whole table instead of probing.
pub const NEVER_READ: u16 = u16::MAX;
/// The probe budget of an index whose build measured nothing (a small or empty table): probing
/// may cost what a whole-table read costs, then the search reads (at most twice the cheaper way).
pub const DEFAULT_PROBE_BUDGET: u16 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub params: Params,
    /// Rows indexed by the build (a size hint for the scan's cost decisions).
    pub built_rows: u64,
    /// How much probing a search may do before reading table 0 instead, in percent of what that
    /// read costs (chosen by the build, `super::tune`; [`NEVER_READ`]: no limit).
    pub probe_budget: u16,
    /// The probe budget once a search has returned [`super::tune::TUNE_K`] rows and is asked for
    /// more: chosen by the build for top-100 searches (`None`: the same as `probe_budget`).
    pub probe_budget_top100: Option<u16>,
    /// The row list (`None` in an index of format 2, whose searches read table 0 instead).
    pub row_list: Option<RowList>,
    /// Where the tables are, and what a retune left behind (`super::retune`).
    pub tables: Tables,
}

/// The tables' place on the meta page: a retune writes new tables elsewhere and moves this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    /// The directory's first block.
    pub dir_start: BlockNo,
    /// The relation's size when the tables were written (0: unknown, an index of format 3):
    /// pages past it were added by inserts, which [`super::Mih::estimated_rows`] counts.
    pub written_blocks: BlockNo,
    /// Tables a retune replaced, freed by a VACUUM once no scan can still read them.
    pub retired: Option<Retired>,
    /// Blocks reserved by a retune that has not switched to them (a crash, an error): the next
    /// VACUUM frees them.
    pub reserved: Option<Reserved>,
}

impl Tables {
    /// The tables of a build: directory at block 1.
    pub fn built(written_blocks: BlockNo) -> Tables {
        Tables { dir_start: 1, written_blocks, retired: None, reserved: None }
    }
}

/// Tables a retune replaced: their directory, whose heads lead to every other page of theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    pub dir_start: BlockNo,
    pub dir_pages: u32,
    /// From [`super::PageStore::stamp`] at the switch.
    pub stamp: u64,
}

/// A run of blocks reserved for new tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub first: BlockNo,
    pub count: u32,
}

/// Where the row list is: see [`row_page`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowList {
    /// The first row page: fixed at build.
    pub head: BlockNo,
    /// A row page at or before the list's end: inserts follow `next` from it to the end. Moved
    /// forward when an insert adds a page (a hint: it may lag, never point off the list).
    pub tail: BlockNo,
}

impl Meta {
    pub fn write(&self, page: &mut [u8]) {
        let p = &self.params;
        wr16(page, KIND, KIND_META);
        wr16(page, meta_page::VERSION, FORMAT_VERSION);
        wr32(page, meta_page::NBITS, p.nbits);
        wr32(page, meta_page::M, p.m());
        wr32(page, meta_page::NBUCKETS, p.nbuckets);
        page[meta_page::FILLFACTOR] = p.fillfactor;
        page[meta_page::ZERO] = 0;
        wr16(page, meta_page::PROBE_BUDGET, self.probe_budget);
        // Stored plus one, so that the zero of an older meta page reads as none.
        let top100 = self.probe_budget_top100.map_or(0, |b| b.saturating_add(1));
        wr16(page, meta_page::PROBE_BUDGET_TOP100, top100);
        page[meta_page::PADDING..meta_page::BUILT_ROWS].fill(0);
        page[meta_page::BUILT_ROWS..meta_page::BOUNDS].copy_from_slice(&self.built_rows.to_le_bytes());
        let mut at = meta_page::BOUNDS;
        for &b in &p.bounds {
            wr16(page, at, b as u16);
            at += 2;
        }
        let list = meta_page::row_list(p.m() as usize);
        page[at..list].fill(0);
        let rows = self.row_list.unwrap_or(RowList { head: INVALID_BLOCK, tail: INVALID_BLOCK });
        wr32(page, list, rows.head);
        wr32(page, list + 4, rows.tail);
        let at = meta_page::tables(p.m() as usize);
        let t = &self.tables;
        wr32(page, at, t.dir_start);
        wr32(page, at + 4, t.written_blocks);
        let r = t.retired.unwrap_or(Retired { dir_start: INVALID_BLOCK, dir_pages: 0, stamp: 0 });
        wr32(page, at + 8, r.dir_start);
        wr32(page, at + 12, r.dir_pages);
        page[at + 16..at + 24].copy_from_slice(&r.stamp.to_le_bytes());
        let v = t.reserved.unwrap_or(Reserved { first: INVALID_BLOCK, count: 0 });
        wr32(page, at + 24, v.first);
        wr32(page, at + 28, v.count);
        wr16(page, at + 32, p.generation);
        wr16(page, at + 34, 0);
        set_lower(page, at + meta_page::TABLES_BYTES - PAGE_HEADER);
    }

    /// Moves the row list's tail hint on a meta page.
    pub fn set_row_tail(page: &mut [u8], m: u32, tail: BlockNo) {
        wr32(page, meta_page::row_list(m as usize) + 4, tail);
    }

    pub fn read(page: &[u8]) -> Result<Meta, MihError> {
        if rd16(page, KIND) != KIND_META {
            return Err(MihError::Corrupt("block 0 is not a mih meta page".into()));
        }
        let version = rd16(page, meta_page::VERSION);
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(MihError::Corrupt(format!(
                "on-disk format version {version}, this build reads {OLDEST_VERSION} to {FORMAT_VERSION}: REINDEX the index"
            )));
        }
        let nbits = rd32(page, meta_page::NBITS);
        let m = rd32(page, meta_page::M);
        let nbuckets = rd32(page, meta_page::NBUCKETS);
        if !(1..=crate::MAX_BITS).contains(&nbits) || m == 0 || m > MAX_SUBSTRINGS || nbuckets == 0 {
            return Err(MihError::Corrupt(format!(
                "bad meta page ({nbits} bits, m = {m}, {nbuckets} buckets)"
            )));
        }
        let built_rows =
            u64::from_le_bytes(page[meta_page::BUILT_ROWS..meta_page::BOUNDS].try_into().unwrap_or([0; 8]));
        let bounds: Vec<u32> =
            (0..=m as usize).map(|i| rd16(page, meta_page::BOUNDS + 2 * i) as u32).collect();
        let ok = bounds[0] == 0
            && bounds[m as usize] == nbits
            && bounds.windows(2).all(|w| w[0] < w[1] && w[1] - w[0] <= MAX_SUBSTRING_BITS);
        if !ok {
            return Err(MihError::Corrupt(format!("bad substring bounds {bounds:?} for {nbits} bits")));
        }
        let generation = if version >= 4 { rd16(page, meta_page::tables(m as usize) + 32) } else { 0 };
        let params = Params { nbits, bounds, nbuckets, fillfactor: page[meta_page::FILLFACTOR], generation };
        let probe_budget_top100 = rd16(page, meta_page::PROBE_BUDGET_TOP100).checked_sub(1);
        let row_list = (version >= 3).then(|| {
            let at = meta_page::row_list(m as usize);
            RowList { head: rd32(page, at), tail: rd32(page, at + 4) }
        });
        if row_list.is_some_and(|r| r.head == INVALID_BLOCK || r.tail == INVALID_BLOCK) {
            return Err(MihError::Corrupt("the meta page names no row list".into()));
        }
        let tables = if version >= 4 {
            let at = meta_page::tables(m as usize);
            let stamp = u64::from_le_bytes(page[at + 16..at + 24].try_into().unwrap_or([0; 8]));
            let (retired, reserved) = (rd32(page, at + 8), rd32(page, at + 24));
            Tables {
                dir_start: rd32(page, at),
                written_blocks: rd32(page, at + 4),
                retired: (retired != INVALID_BLOCK).then(|| Retired {
                    dir_start: retired,
                    dir_pages: rd32(page, at + 12),
                    stamp,
                }),
                reserved: (reserved != INVALID_BLOCK)
                    .then(|| Reserved { first: reserved, count: rd32(page, at + 28) }),
            }
        } else {
            Tables::built(0)
        };
        if tables.dir_start == 0 || tables.dir_start == INVALID_BLOCK {
            return Err(MihError::Corrupt(format!(
                "the meta page puts the directory at block {}",
                tables.dir_start
            )));
        }
        Ok(Meta {
            params,
            built_rows,
            probe_budget: rd16(page, meta_page::PROBE_BUDGET),
            probe_budget_top100,
            row_list,
            tables,
        })
    }
}

// ---- directory pages -------------------------------------------------------------------------

pub fn dir_init(page: &mut [u8], first_slot: u32) {
    wr16(page, KIND, KIND_DIR);
    wr16(page, dir_page::ZERO, 0);
    wr32(page, dir_page::FIRST_SLOT, first_slot);
    for s in 0..DIR_SLOTS_PER_PAGE {
        dir_set(page, s, INVALID_BLOCK);
    }
    set_lower(page, DIR_HEADER + 4 * DIR_SLOTS_PER_PAGE);
}

pub fn dir_check(page: &[u8]) -> Result<(), MihError> {
    if rd16(page, KIND) != KIND_DIR {
        return Err(MihError::Corrupt("expected a directory page".into()));
    }
    Ok(())
}

pub fn dir_get(page: &[u8], slot: usize) -> BlockNo {
    rd32(page, dir_page::SLOTS + 4 * slot)
}

pub fn dir_set(page: &mut [u8], slot: usize, blk: BlockNo) {
    wr32(page, dir_page::SLOTS + 4 * slot, blk);
}

// ---- bucket pages ----------------------------------------------------------------------------

/// A bucket page viewed through the index parameters.
pub struct Bucket;

impl Bucket {
    pub fn init(page: &mut [u8], p: &Params, table: u32, bucket: u32) {
        wr16(page, KIND, KIND_BUCKET);
        wr16(page, bucket_page::COUNT, 0);
        wr32(page, bucket_page::NEXT, INVALID_BLOCK);
        wr16(page, bucket_page::TABLE, table as u16);
        wr16(page, bucket_page::GENERATION, p.generation);
        wr32(page, bucket_page::BUCKET, bucket);
        page[bucket_page::FENCES..bucket_page::ENTRIES].fill(0);
        set_lower(page, BUCKET_HEADER);
    }

    /// Checks the page kind and that it belongs to table `t`, bucket `b` of the tables `p`
    /// describes.
    pub fn check(page: &[u8], p: &Params, t: u32, b: u32) -> Result<(), MihError> {
        if rd16(page, KIND) != KIND_BUCKET {
            return Err(MihError::Corrupt(format!("expected a bucket page of table {t}, bucket {b}")));
        }
        let g = rd16(page, bucket_page::GENERATION);
        if g != p.generation {
            return Err(MihError::Corrupt(format!(
                "a bucket page of generation {g} in the chain of table {t}, bucket {b} of generation {}",
                p.generation
            )));
        }
        let (pt, pb) = (rd16(page, bucket_page::TABLE) as u32, rd32(page, bucket_page::BUCKET));
        if pt != t || pb != b || Bucket::count(page) > p.capacity() {
            return Err(MihError::Corrupt(format!(
                "bucket page of table {pt}, bucket {pb} with {} entries found in the chain of table {t}, bucket {b}",
                Bucket::count(page)
            )));
        }
        Ok(())
    }

    pub fn is_bucket(page: &[u8]) -> bool {
        rd16(page, KIND) == KIND_BUCKET
    }

    pub fn count(page: &[u8]) -> usize {
        rd16(page, bucket_page::COUNT) as usize
    }

    pub fn next(page: &[u8]) -> BlockNo {
        rd32(page, bucket_page::NEXT)
    }

    pub fn set_next(page: &mut [u8], next: BlockNo) {
        wr32(page, bucket_page::NEXT, next);
    }

    #[inline]
    fn at(p: &Params, i: usize) -> usize {
        bucket_page::ENTRIES + i * p.code_bytes()
    }

    #[inline]
    fn tid_at(i: usize) -> usize {
        BLOCK_SIZE - (i + 1) * TID_BYTES
    }

    /// The code of entry `i`.
    #[inline]
    pub fn code<'a>(page: &'a [u8], p: &Params, i: usize) -> &'a [u8] {
        let at = Bucket::at(p, i);
        &page[at..at + p.code_bytes()]
    }

    /// The heap tid of entry `i`.
    #[inline]
    pub fn tid(page: &[u8], i: usize) -> Tid {
        Tid::read(&page[Bucket::tid_at(i)..])
    }

    /// Entry `i`: (code bytes, heap tid).
    #[inline]
    pub fn entry<'a>(page: &'a [u8], p: &Params, i: usize) -> (&'a [u8], Tid) {
        (Bucket::code(page, p, i), Bucket::tid(page, i))
    }

    /// Every code of the page, back to back (entry `i` at `i * code_bytes`).
    #[inline]
    pub fn codes<'a>(page: &'a [u8], p: &Params) -> &'a [u8] {
        &page[Bucket::at(p, 0)..Bucket::at(p, Bucket::count(page))]
    }

    /// Fence `j`: the substring value of entry `j * count / FENCES`.
    #[inline]
    fn fence(page: &[u8], j: usize) -> u64 {
        let at = bucket_page::FENCES + 8 * j;
        u64::from_le_bytes(page[at..at + 8].try_into().unwrap())
    }

    /// What fence `j` must hold: the substring `t` of entry `j * count / FENCES` (0 past the count).
    fn fence_of_entries(page: &[u8], p: &Params, t: u32, j: usize) -> u64 {
        let (n, i) = (Bucket::count(page), j * Bucket::count(page) / FENCES);
        if i < n {
            p.substring(t, Bucket::code(page, p, i))
        } else {
            0
        }
    }

    /// Writes the fences of a page whose entries are sorted by substring `t`.
    fn set_fences(page: &mut [u8], p: &Params, t: u32) {
        for j in 0..FENCES {
            let v = Bucket::fence_of_entries(page, p, t, j);
            let at = bucket_page::FENCES + 8 * j;
            page[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// True when the fences are those of the entries (what a check verifies).
    pub fn fences_match(page: &[u8], p: &Params, t: u32) -> bool {
        (0..FENCES).all(|j| Bucket::fence(page, j) == Bucket::fence_of_entries(page, p, t, j))
    }

    /// First entry whose substring `t` is >= `value`. The fences (next to the header) narrow it to
    /// a stretch of about count / FENCES entries, searched by bisection: a probe reads a page
    /// that is cold in the CPU's caches, and this touches ~4 cache lines of it where a bisection
    /// of the whole page touches ~10.
    pub fn lower_bound(page: &[u8], p: &Params, t: u32, value: u64) -> usize {
        Bucket::partition(page, p, t, |v| v < value)
    }

    /// The entries whose substring `t` equals `value`: what a probe of `value` reads. Its end is
    /// found the way its start is (fences, then bisection), so that the stretch's codes go to the
    /// filtering kernel in one run, without a substring taken per entry.
    pub fn equal_range(page: &[u8], p: &Params, t: u32, value: u64) -> std::ops::Range<usize> {
        Bucket::lower_bound(page, p, t, value)..Bucket::partition(page, p, t, |v| v <= value)
    }

    /// The first entry whose substring `t` is not `below` (entries are sorted by it, so `below`
    /// holds for a prefix of them).
    #[inline]
    fn partition(page: &[u8], p: &Params, t: u32, below: impl Fn(u64) -> bool) -> usize {
        let n = Bucket::count(page);
        if n == 0 {
            return 0;
        }
        // The stretch between the last fence below and the next fence.
        let (mut lo, mut hi) = (0, n);
        for j in 0..FENCES {
            let i = j * n / FENCES;
            if i >= n {
                break;
            }
            if below(Bucket::fence(page, j)) {
                lo = i + 1;
            } else {
                hi = i;
                break;
            }
        }
        while lo < hi {
            let mid = (lo + hi) / 2;
            if below(p.substring(t, Bucket::code(page, p, mid))) {
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
        let i = Bucket::partition(page, p, t, |v| v <= value);
        let at = Bucket::at(p, i);
        page.copy_within(at..Bucket::at(p, n), at + p.code_bytes());
        // The tids of entries i.. move one slot towards the page's start.
        let (first, end) = (BLOCK_SIZE - n * TID_BYTES, BLOCK_SIZE - i * TID_BYTES);
        page.copy_within(first..end, first - TID_BYTES);
        Bucket::write_entry(page, p, i, code, tid);
        Bucket::set_count(page, p, n + 1);
        Bucket::set_fences(page, p, t);
        true
    }

    /// Appends without keeping order nor fences: only for builds, which feed sorted entries and
    /// then [`Bucket::seal`] the page.
    pub fn push(page: &mut [u8], p: &Params, code: &[u8], tid: Tid) {
        let n = Bucket::count(page);
        Bucket::write_entry(page, p, n, code, tid);
        Bucket::set_count(page, p, n + 1);
    }

    /// Writes the fences of a page that a build filled with [`Bucket::push`].
    pub fn seal(page: &mut [u8], p: &Params) {
        let t = rd16(page, bucket_page::TABLE) as u32;
        Bucket::set_fences(page, p, t);
    }

    fn write_entry(page: &mut [u8], p: &Params, i: usize, code: &[u8], tid: Tid) {
        let at = Bucket::at(p, i);
        page[at..at + p.code_bytes()].copy_from_slice(code);
        tid.write(&mut page[Bucket::tid_at(i)..Bucket::tid_at(i) + TID_BYTES]);
    }

    /// The count, `pd_lower` and `pd_upper` move together, so that WAL covers exactly the entries.
    fn set_count(page: &mut [u8], p: &Params, n: usize) {
        wr16(page, bucket_page::COUNT, n as u16);
        set_bounds(page, BUCKET_HEADER + n * p.code_bytes(), n * TID_BYTES);
    }

    /// Removes the entries whose tid `dead` says so, keeping order; returns how many.
    pub fn retain(page: &mut [u8], p: &Params, mut dead: impl FnMut(Tid) -> bool) -> usize {
        let n = Bucket::count(page);
        let cb = p.code_bytes();
        let mut w = 0;
        for r in 0..n {
            if !dead(Bucket::tid(page, r)) {
                if w != r {
                    let (from, to) = (Bucket::at(p, r), Bucket::at(p, w));
                    page.copy_within(from..from + cb, to);
                    page.copy_within(Bucket::tid_at(r)..Bucket::tid_at(r) + TID_BYTES, Bucket::tid_at(w));
                }
                w += 1;
            }
        }
        Bucket::set_count(page, p, w);
        Bucket::seal(page, p);
        n - w
    }

    /// Marks a page unlinked by VACUUM; it is reused from the free space map.
    pub fn make_free(page: &mut [u8]) {
        wr16(page, KIND, KIND_FREE);
        wr16(page, bucket_page::COUNT, 0);
        set_lower(page, FREE_HEADER);
    }
}

// ---- row list pages --------------------------------------------------------------------------

/// A row page and its tid page, viewed through the index parameters.
pub struct RowPage;

impl RowPage {
    /// A row page whose tids go to block `tids`, and that tid page (both empty).
    pub fn init(rows: &mut [u8], tids: &mut [u8], rows_blk: BlockNo, tids_blk: BlockNo) {
        wr16(rows, KIND, KIND_ROWS);
        wr16(rows, row_page::COUNT, 0);
        wr32(rows, row_page::NEXT, INVALID_BLOCK);
        wr32(rows, row_page::TIDS, tids_blk);
        wr32(rows, row_page::ZERO, 0);
        set_lower(rows, ROWS_HEADER);
        wr16(tids, KIND, KIND_TIDS);
        wr16(tids, row_page::COUNT, 0);
        wr32(tids, row_page::OWNER, rows_blk);
        set_lower(tids, TIDS_HEADER);
    }

    pub fn count(page: &[u8]) -> usize {
        rd16(page, row_page::COUNT) as usize
    }

    pub fn next(page: &[u8]) -> BlockNo {
        rd32(page, row_page::NEXT)
    }

    pub fn set_next(page: &mut [u8], next: BlockNo) {
        wr32(page, row_page::NEXT, next);
    }

    /// The block of a row page's tid page.
    pub fn tids_block(page: &[u8]) -> BlockNo {
        rd32(page, row_page::TIDS)
    }

    /// Checks that block `blk` holds a row page.
    pub fn check(page: &[u8], p: &Params, blk: BlockNo) -> Result<(), MihError> {
        if rd16(page, KIND) != KIND_ROWS || RowPage::count(page) > p.row_capacity() {
            return Err(MihError::Corrupt(format!("block {blk} in the row list is not a row page")));
        }
        Ok(())
    }

    /// Checks that `tids` is the tid page of the row page `rows` at block `rows_blk`.
    pub fn check_tids(tids: &[u8], rows: &[u8], rows_blk: BlockNo) -> Result<(), MihError> {
        if rd16(tids, KIND) != KIND_TIDS
            || rd32(tids, row_page::OWNER) != rows_blk
            || RowPage::count(tids) != RowPage::count(rows)
        {
            return Err(MihError::Corrupt(format!(
                "block {} is not the tid page of row page {rows_blk}",
                RowPage::tids_block(rows)
            )));
        }
        Ok(())
    }

    pub fn codes<'a>(page: &'a [u8], p: &Params) -> &'a [u8] {
        &page[row_page::CODES..row_page::CODES + RowPage::count(page) * p.code_bytes()]
    }

    #[inline]
    pub fn tid(tids: &[u8], i: usize) -> Tid {
        Tid::read(&tids[row_page::TID_ENTRIES + i * TID_BYTES..])
    }

    /// Appends a row to a row page and its tid page (the caller checked that it has room).
    pub fn push(rows: &mut [u8], tids: &mut [u8], p: &Params, code: &[u8], tid: Tid) {
        let n = RowPage::count(rows);
        let at = row_page::CODES + n * p.code_bytes();
        rows[at..at + p.code_bytes()].copy_from_slice(code);
        let at = row_page::TID_ENTRIES + n * TID_BYTES;
        tid.write(&mut tids[at..at + TID_BYTES]);
        RowPage::set_count(rows, tids, p, n + 1);
    }

    fn set_count(rows: &mut [u8], tids: &mut [u8], p: &Params, n: usize) {
        wr16(rows, row_page::COUNT, n as u16);
        set_lower(rows, ROWS_HEADER + n * p.code_bytes());
        wr16(tids, row_page::COUNT, n as u16);
        set_lower(tids, TIDS_HEADER + n * TID_BYTES);
    }

    /// Removes the rows whose tid is `dead`, keeping the others' order; returns how many went.
    pub fn retain(rows: &mut [u8], tids: &mut [u8], p: &Params, mut dead: impl FnMut(Tid) -> bool) -> usize {
        let (n, cb) = (RowPage::count(rows), p.code_bytes());
        let mut w = 0;
        for r in 0..n {
            if dead(RowPage::tid(tids, r)) {
                continue;
            }
            if w != r {
                let (from, to) = (row_page::CODES + r * cb, row_page::CODES + w * cb);
                rows.copy_within(from..from + cb, to);
                let (from, to) =
                    (row_page::TID_ENTRIES + r * TID_BYTES, row_page::TID_ENTRIES + w * TID_BYTES);
                tids.copy_within(from..from + TID_BYTES, to);
            }
            w += 1;
        }
        RowPage::set_count(rows, tids, p, w);
        n - w
    }
}

/// A page that holds nothing: never initialised (a crash after extending the relation) or
/// unlinked by VACUUM. Such pages are handed out again for new bucket pages.
pub fn is_free(page: &[u8]) -> bool {
    let kind = rd16(page, KIND);
    kind == KIND_FREE || kind == 0 && page[PAGE_HEADER..bucket_page::ENTRIES].iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_matches_bit_by_bit() {
        let bytes: Vec<u8> = (0..24u8).map(|i| i.wrapping_mul(37) ^ 0x5A).collect();
        for start in 0..(24 * 8) {
            for len in 1..=64u32 {
                if start + len > 24 * 8 {
                    continue;
                }
                let want = (0..len).fold(0u64, |acc, i| {
                    let bit = start + i;
                    (acc << 1) | ((bytes[(bit / 8) as usize] >> (7 - bit % 8)) & 1) as u64
                });
                assert_eq!(extract_bits(&bytes, start, len), want, "start {start} len {len}");
            }
        }
    }

    fn le16(page: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([page[at], page[at + 1]])
    }
    fn le32(page: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(page[at..at + 4].try_into().unwrap())
    }

    /// The on-disk format of FORMAT_VERSION 4, at literal offsets: the named offsets must not
    /// move a byte (a change needs a new FORMAT_VERSION).
    #[test]
    fn format_version_4_is_pinned() {
        let params = Params {
            nbits: 100,
            bounds: vec![0, 33, 66, 100],
            nbuckets: 77,
            fillfactor: 85,
            generation: 0x6162,
        };
        let mut page = vec![0xEEu8; BLOCK_SIZE];
        let meta = Meta {
            params: params.clone(),
            built_rows: 0x0102_0304_0506_0708,
            probe_budget: 0x0C0D,
            probe_budget_top100: Some(0x0E0F),
            row_list: Some(RowList { head: 0x1112_1314, tail: 0x1516_1718 }),
            tables: Tables {
                dir_start: 0x2122_2324,
                written_blocks: 0x2526_2728,
                retired: Some(Retired {
                    dir_start: 0x3132_3334,
                    dir_pages: 0x3536_3738,
                    stamp: 0x4142_4344_4546_4748,
                }),
                reserved: Some(Reserved { first: 0x5152_5354, count: 0x5556_5758 }),
            },
        };
        meta.write(&mut page);
        assert_eq!(le16(&page, 24), 0x4D4D);
        assert_eq!(le16(&page, 26), 4);
        assert_eq!((le32(&page, 28), le32(&page, 32), le32(&page, 36)), (100, 3, 77));
        assert_eq!((page[40], page[41], le16(&page, 42)), (85, 0, 0x0C0D));
        assert_eq!((le16(&page, 44), le16(&page, 46)), (0x0E10, 0), "the top-100 budget plus one");
        assert_eq!(u64::from_le_bytes(page[48..56].try_into().unwrap()), 0x0102_0304_0506_0708);
        assert_eq!([le16(&page, 56), le16(&page, 58), le16(&page, 60), le16(&page, 62)], [0, 33, 66, 100]);
        assert_eq!((le32(&page, 64), le32(&page, 68)), (0x1112_1314, 0x1516_1718), "the row list");
        assert_eq!((le32(&page, 72), le32(&page, 76)), (0x2122_2324, 0x2526_2728), "the tables");
        assert_eq!((le32(&page, 80), le32(&page, 84)), (0x3132_3334, 0x3536_3738), "the retired tables");
        assert_eq!(u64::from_le_bytes(page[88..96].try_into().unwrap()), 0x4142_4344_4546_4748);
        assert_eq!((le32(&page, 96), le32(&page, 100)), (0x5152_5354, 0x5556_5758), "the reserved blocks");
        assert_eq!((le16(&page, 104), le16(&page, 106)), (0x6162, 0), "the generation");
        assert_eq!((le16(&page, 12), le16(&page, 14)), (108, 8192), "pd_lower ends after them");
        assert_eq!(Meta::read(&page).unwrap(), meta);
        Meta::set_row_tail(&mut page, 3, 77);
        assert_eq!(le32(&page, 68), 77);
        Meta::set_row_tail(&mut page, 3, 0x1516_1718);
        // Nothing retired or reserved: invalid blocks.
        let bare = Meta { tables: Tables::built(9), ..meta.clone() };
        bare.write(&mut page);
        assert_eq!(
            (le32(&page, 72), le32(&page, 76), le32(&page, 80), le32(&page, 96)),
            (1, 9, INVALID_BLOCK, INVALID_BLOCK)
        );
        assert_eq!(Meta::read(&page).unwrap(), bare);
        meta.write(&mut page);
        // A meta page written before the top-100 budget existed has zeros there: none.
        page[44..46].fill(0);
        let older = Meta { probe_budget_top100: None, ..meta.clone() };
        assert_eq!(Meta::read(&page).unwrap(), older);
        // Format 3 kept its directory at block 1, had nothing past the row list, and generation 0.
        let gen0 = Params { generation: 0, ..params.clone() };
        page[26] = 3;
        assert_eq!(
            Meta::read(&page).unwrap(),
            Meta { tables: Tables::built(0), params: gen0.clone(), ..older.clone() }
        );
        // Format 2 had no row list (and pd_lower ended after the bounds).
        page[26] = 2;
        assert_eq!(
            Meta::read(&page).unwrap(),
            Meta { row_list: None, tables: Tables::built(0), params: gen0, ..older.clone() }
        );
        page[26] = 5;
        assert!(Meta::read(&page).is_err(), "a newer format is refused");

        let mut page = vec![0xEEu8; BLOCK_SIZE];
        dir_init(&mut page, 4000);
        dir_set(&mut page, 2, 9);
        assert_eq!((le16(&page, 24), le16(&page, 26), le32(&page, 28)), (0x4D44, 0, 4000));
        assert_eq!((le32(&page, 32), le32(&page, 40)), (INVALID_BLOCK, 9));
        assert_eq!((le16(&page, 12) as usize, le16(&page, 14)), (32 + 4 * DIR_SLOTS_PER_PAGE, 8192));
        assert_eq!(DIR_SLOTS_PER_PAGE, 2040);

        let mut page = vec![0xEEu8; BLOCK_SIZE];
        Bucket::init(&mut page, &params, 2, 70);
        Bucket::set_next(&mut page, 123);
        // Substring 2 is bits 66..100: 0xA5... has a larger one than 0x11...
        let (code, low) = ([0xA5u8; 16], [0x11u8; 16]);
        assert!(Bucket::insert(&mut page, &params, 2, &code, Tid::new(0x0A0B_0C0D, 0x0E0F)));
        assert!(Bucket::insert(&mut page, &params, 2, &low, Tid::new(0x0102_0304, 0x0506)));
        assert_eq!((le16(&page, 24), le16(&page, 26), le32(&page, 28)), (0x4D42, 2, 123));
        assert_eq!(
            (le16(&page, 32), le16(&page, 34), le32(&page, 36)),
            (2, 0x6162, 70),
            "table, generation, bucket"
        );
        // Fences 0..8 name entry 0, fences 8..16 entry 1 (j * 2 / 16).
        let fence = |j: usize| u64::from_le_bytes(page[40 + 8 * j..48 + 8 * j].try_into().unwrap());
        let (v_low, v_code) = (params.substring(2, &low), params.substring(2, &code));
        assert!((0..8).all(|j| fence(j) == v_low) && (8..16).all(|j| fence(j) == v_code));
        assert_eq!((&page[168..184], &page[184..200]), (&low[..], &code[..]), "codes from 168, in order");
        assert_eq!(&page[8186..8192], &[0x04, 0x03, 0x02, 0x01, 0x06, 0x05], "entry 0's tid at the end");
        assert_eq!(&page[8180..8186], &[0x0D, 0x0C, 0x0B, 0x0A, 0x0F, 0x0E], "entry 1's tid before it");
        assert_eq!((le16(&page, 12), le16(&page, 14)), (200, 8180));
        assert_eq!(params.capacity(), (8192 - 24 - 144) / 22);

        Bucket::make_free(&mut page);
        assert_eq!(
            (le16(&page, 24), le16(&page, 26), le16(&page, 12), le16(&page, 14)),
            (0x4D46, 0, 28, 8192)
        );
        assert!(is_free(&page));

        let (mut rows, mut tids) = (vec![0xEEu8; BLOCK_SIZE], vec![0xEEu8; BLOCK_SIZE]);
        RowPage::init(&mut rows, &mut tids, 40, 41);
        RowPage::push(&mut rows, &mut tids, &params, &code, Tid::new(0x0A0B_0C0D, 0x0E0F));
        RowPage::push(&mut rows, &mut tids, &params, &low, Tid::new(0x0102_0304, 0x0506));
        assert_eq!((le16(&rows, 24), le16(&rows, 26), le32(&rows, 28)), (0x4D52, 2, INVALID_BLOCK));
        assert_eq!((le32(&rows, 32), le32(&rows, 36)), (41, 0));
        assert_eq!((&rows[40..56], &rows[56..72]), (&code[..], &low[..]), "codes from 40, as pushed");
        assert_eq!((le16(&rows, 12), le16(&rows, 14)), (72, 8192));
        assert_eq!((le16(&tids, 24), le16(&tids, 26), le32(&tids, 28)), (0x4D54, 2, 40));
        assert_eq!(&tids[32..44], &[0x0D, 0x0C, 0x0B, 0x0A, 0x0F, 0x0E, 0x04, 0x03, 0x02, 0x01, 0x06, 0x05]);
        assert_eq!((le16(&tids, 12), le16(&tids, 14)), (44, 8192));
        assert!(RowPage::check(&rows, &params, 40).is_ok() && RowPage::check_tids(&tids, &rows, 40).is_ok());
        assert!(
            RowPage::check_tids(&tids, &rows, 39).is_err() && RowPage::check(&tids, &params, 41).is_err()
        );
        assert_eq!(params.row_capacity(), (8192 - 24 - 16) / 16);
        assert_eq!(RowPage::retain(&mut rows, &mut tids, &params, |t| t.offset == 0x0E0F), 1);
        assert_eq!((RowPage::count(&rows), RowPage::count(&tids), &rows[40..56]), (1, 1, &low[..]));
        assert_eq!(RowPage::tid(&tids, 0), Tid::new(0x0102_0304, 0x0506));
    }

    /// The fenced search finds what a linear scan finds, on even, skewed and duplicate-heavy
    /// pages, for values below, between, on and above the page's.
    #[test]
    fn lower_bound_and_equal_range_equal_a_linear_scan() {
        let mut rng = crate::rng::SeededRng::new(9);
        let p = Params { nbits: 64, bounds: vec![0, 16, 64], nbuckets: 1, fillfactor: 100, generation: 0 };
        for case in 0..300 {
            let mut page = vec![0u8; BLOCK_SIZE];
            Bucket::init(&mut page, &p, 0, 0);
            let n = rng.below(p.capacity() as u64 + 1) as usize;
            let distinct = 1 + rng.below(1 << (case % 17));
            for i in 0..n {
                // Table 0 is the top 16 bits; skewed cases square a uniform draw.
                let u = rng.below(distinct);
                let v = if case % 3 == 0 { u * u / distinct } else { u } & 0xFFFF;
                let code = ((v << 48) | i as u64).to_be_bytes();
                assert!(Bucket::insert(&mut page, &p, 0, &code, Tid::new(i as u32, 1)));
            }
            let values: Vec<u64> = (0..n).map(|i| p.substring(0, Bucket::code(&page, &p, i))).collect();
            assert!(values.windows(2).all(|w| w[0] <= w[1]));
            for _ in 0..50 {
                let probe = match rng.below(3) {
                    0 if n > 0 => values[rng.below(n as u64) as usize],
                    _ => rng.below(distinct.min(1 << 16) + 2),
                };
                let want = values.iter().position(|&v| v >= probe).unwrap_or(n);
                assert_eq!(
                    Bucket::lower_bound(&page, &p, 0, probe),
                    want,
                    "case {case}, {n} entries, value {probe}"
                );
                let end = values.iter().position(|&v| v > probe).unwrap_or(n);
                assert_eq!(Bucket::equal_range(&page, &p, 0, probe), want..end, "case {case}, value {probe}");
            }
        }
    }

    #[test]
    fn copy_contents_keeps_postgres_header() {
        let mut image = vec![0u8; BLOCK_SIZE];
        let p = Params::choose(64, 1000, None, 90).unwrap();
        Bucket::init(&mut image, &p, 1, 2);
        let mut page: Vec<u8> = (0..BLOCK_SIZE).map(|i| i as u8).collect();
        copy_contents(&mut page, &image);
        assert_eq!(&page[PAGE_HEADER..], &image[PAGE_HEADER..]);
        assert_eq!(&page[PD_LOWER..PD_UPPER + 2], &image[PD_LOWER..PD_UPPER + 2]);
        let others: Vec<usize> = (0..PAGE_HEADER).filter(|i| !(PD_LOWER..PD_UPPER + 2).contains(i)).collect();
        assert!(others.iter().all(|&i| page[i] == i as u8), "the rest of the header is PostgreSQL's");
    }
}
