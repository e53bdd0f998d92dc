//! Build: a whole index written in block order (meta, directory, each table's buckets with
//! their entries sorted by substring value, then the row list, packed full) from codes collected
//! beforehand. [`TablePlan`] lays out and writes the tables (a retune writes new ones with it). The extension's
//! `ambuild` writes the pages through [`PageStore::append_built`] and WAL-logs them in bulk.

use super::index::Mih;
use super::layout::{
    dir_init, dir_set, BlockNo, Bucket, Meta, MihError, Params, RowList, RowPage, Tables, Tid, BLOCK_SIZE,
};
use super::layout::{DIR_SLOTS_PER_PAGE, INVALID_BLOCK};
use super::store::PageStore;

impl<S: PageStore> Mih<S> {
    /// Builds a new index in an empty store from `tids.len()` codes laid out back to back in
    /// `codes` (each `params.code_bytes()` long). Pages are written in block order: meta,
    /// directory, then each table's buckets with their entries sorted by substring value.
    /// `progress` is told the number of entries written after each table. `probe_budget` and
    /// `probe_budget_top100`: see [`Meta::probe_budget`] ([`super::layout::DEFAULT_PROBE_BUDGET`]
    /// and none unless the build measured them).
    pub fn build(
        store: S,
        params: Params,
        probe_budget: u16,
        probe_budget_top100: Option<u16>,
        codes: &[u8],
        tids: &[Tid],
        progress: impl FnMut(u64),
    ) -> Result<Self, MihError> {
        let cb = params.code_bytes();
        let n = tids.len();
        debug_assert_eq!(codes.len(), n * cb);
        let plan = TablePlan::new(&params, codes, 1);

        // The row list after the tables: its row pages in one run of blocks, then their tid pages
        // in another (row page i at `end + i`, its tid page at `end + row_pages + i`); one empty
        // pair for an empty table, where inserts start. A read streams the row pages alone, and
        // blocks in a run usually sit in consecutive shared buffers (a sequential first read, or
        // pg_prewarm's, takes free buffers in order), where the CPU's prefetcher streams them as
        // one array: 1M 64-bit codes filtered cold in 0.23-0.29 ms, against 0.64-0.82 with a tid
        // page between each two row pages (`bench/README.md`, tenth step).
        let per_row_page = params.row_capacity();
        let row_pages = n.div_ceil(per_row_page).max(1) as BlockNo;
        let row_list = RowList { head: plan.end, tail: plan.end + row_pages - 1 };
        let meta = Meta {
            params: params.clone(),
            built_rows: n as u64,
            probe_budget,
            probe_budget_top100,
            row_list: Some(row_list),
            tables: Tables::built(plan.end + 2 * row_pages),
        };
        let mut image = vec![0u8; BLOCK_SIZE];
        meta.write(&mut image);
        expect_block(store.append_built(&image), 0)?;
        plan.write(
            &params,
            codes,
            tids,
            |blk, image| expect_block(store.append_built(image), blk),
            progress,
        )?;

        // Rows in a spread order, so that any stretch of the list, its first page included, is
        // an even sample of the table: a read guesses its band's end from its first pages.
        let code = |i: usize| &codes[i * cb..(i + 1) * cb];
        let stride = spread_stride(n);
        let mut tids_image = vec![0u8; BLOCK_SIZE];
        for tid_pages in [false, true] {
            for r in 0..row_pages {
                let blk = row_list.head + r;
                image.fill(0);
                tids_image.fill(0);
                RowPage::init(&mut image, &mut tids_image, blk, blk + row_pages);
                let first = r as usize * per_row_page;
                for j in first..n.min(first + per_row_page) {
                    let i = (j as u64 * stride % n as u64) as usize;
                    RowPage::push(&mut image, &mut tids_image, &params, code(i), tids[i]);
                }
                if tid_pages {
                    expect_block(store.append_built(&tids_image), blk + row_pages)?;
                } else {
                    if r + 1 < row_pages {
                        RowPage::set_next(&mut image, blk + 1);
                    }
                    expect_block(store.append_built(&image), blk)?;
                }
            }
        }
        Ok(Mih { store, meta })
    }
}

/// Where a build (or a retune, `super::retune`) puts the tables of some codes: the directory
/// from block `first`, then each table's buckets, each bucket's pages in a run.
pub(crate) struct TablePlan {
    /// The directory's first block.
    pub first: BlockNo,
    /// The head block of each (table, bucket) slot.
    heads: Vec<BlockNo>,
    /// The block after the last.
    pub end: BlockNo,
}

impl TablePlan {
    /// Counts how many entries each bucket gets, hence every head block.
    pub fn new(params: &Params, codes: &[u8], first: BlockNo) -> TablePlan {
        let cb = params.code_bytes();
        let nb = params.nbuckets as usize;
        let mut counts = vec![0u32; params.dir_slots()];
        for c in codes.chunks_exact(cb) {
            for t in 0..params.m() {
                let b = params.bucket(t, params.substring(t, c));
                counts[t as usize * nb + b as usize] += 1;
            }
        }
        let mut heads = vec![INVALID_BLOCK; counts.len()];
        let mut next = first + params.dir_pages();
        for (slot, &c) in counts.iter().enumerate() {
            if c > 0 {
                heads[slot] = next;
                next += params.build_pages(c as usize) as BlockNo;
            }
        }
        TablePlan { first, heads, end: next }
    }

    pub fn pages(&self) -> u32 {
        self.end - self.first
    }

    /// The same tables from block `first` on.
    pub fn moved_to(mut self, first: BlockNo) -> TablePlan {
        for h in self.heads.iter_mut().filter(|h| **h != INVALID_BLOCK) {
            *h = *h - self.first + first;
        }
        self.end = self.end - self.first + first;
        self.first = first;
        self
    }

    /// Writes the directory, then table by table each bucket's entries sorted by substring
    /// value, through `write(block, image)`, in block order; `progress` is told the entries
    /// written after each table.
    pub fn write(
        &self,
        params: &Params,
        codes: &[u8],
        tids: &[Tid],
        mut write: impl FnMut(BlockNo, &[u8]) -> Result<(), MihError>,
        mut progress: impl FnMut(u64),
    ) -> Result<(), MihError> {
        let cb = params.code_bytes();
        let n = tids.len();
        let code = |i: usize| &codes[i * cb..(i + 1) * cb];
        let (m, nb) = (params.m(), params.nbuckets as usize);
        let mut image = vec![0u8; BLOCK_SIZE];
        for d in 0..params.dir_pages() {
            image.fill(0);
            let first = d as usize * DIR_SLOTS_PER_PAGE;
            dir_init(&mut image, first as u32);
            for (s, &h) in self.heads.iter().skip(first).take(DIR_SLOTS_PER_PAGE).enumerate() {
                dir_set(&mut image, s, h);
            }
            write(self.first + d, &image)?;
        }

        // Table by table: sort by (bucket, value) and write the chains.
        let mut order: Vec<(u32, u64, u32)> = Vec::with_capacity(n);
        for t in 0..m {
            order.clear();
            order.extend((0..n).map(|i| {
                let v = params.substring(t, code(i));
                (params.bucket(t, v), v, i as u32)
            }));
            order.sort_unstable();
            let mut at = 0;
            while at < n {
                let b = order[at].0;
                let end = at + order[at..].iter().take_while(|e| e.0 == b).count();
                // Entries spread evenly over the bucket's pages.
                let per_page = (end - at).div_ceil(params.build_pages(end - at));
                let chunks: Vec<&[(u32, u64, u32)]> = order[at..end].chunks(per_page).collect();
                let head = self.heads[t as usize * nb + b as usize];
                for (c, chunk) in chunks.iter().enumerate() {
                    image.fill(0);
                    Bucket::init(&mut image, params, t, b);
                    for &(_, _, i) in chunk.iter() {
                        Bucket::push(&mut image, params, code(i as usize), tids[i as usize]);
                    }
                    let blk = head + c as BlockNo;
                    if c + 1 < chunks.len() {
                        Bucket::set_next(&mut image, blk + 1);
                    }
                    Bucket::seal(&mut image, params);
                    write(blk, &image)?;
                }
                at = end;
            }
            progress((t as u64 + 1) * n as u64);
        }
        Ok(())
    }
}

/// A step through `0..n` that visits every row once (coprime to `n`) and spreads any run of
/// steps over the whole range: the one nearest `n` / golden ratio.
fn spread_stride(n: usize) -> u64 {
    let n = n.max(1) as u64;
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut s = ((n as f64 * 0.618_033_988_75) as u64).max(1);
    while gcd(s, n) != 1 {
        s += 1;
    }
    s
}

fn expect_block(got: BlockNo, want: BlockNo) -> Result<(), MihError> {
    if got != want {
        return Err(MihError::Corrupt(format!("build wrote block {got} where block {want} was planned")));
    }
    Ok(())
}
