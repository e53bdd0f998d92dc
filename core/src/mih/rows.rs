//! The row list: every row once more, codes packed on row pages, each with a tid page (see
//! [`super::layout::row_page`]), for a search that reads all the rows instead of probing. Its
//! phases, one place: a read, an insert's append, VACUUM's removal, and what `check` collects.
//!
//! Locking: a row page, then its tid page; row pages one at a time, in list order. Row pages are
//! never unlinked (VACUUM compacts them in place), so a reader needs no lock between two pages.
//! The meta page's tail hint is moved with no other lock held.

use super::index::Mih;
use super::layout::{BlockNo, Bucket, MihError, RowPage, Tid, INVALID_BLOCK};
use super::store::{PageGuard, PageStore};
use super::vacuum::DeadTids;
use crate::code::Direction;

impl<S: PageStore> Mih<S> {
    /// Calls `f(codes, direction, tid)` for every page of rows: `codes` holds the page's codes
    /// back to back, `direction` says which way to filter them, and `tid(i)` reads the tid of code
    /// `i` (another page, locked only when asked for). Reads the row list, or table 0's buckets
    /// in an index of format 2.
    ///
    /// A built row list is a run of consecutive blocks, and such blocks usually sit in consecutive
    /// shared buffers, rising or (buffers freed by a dropped relation go back to the free list in
    /// reverse) falling: a page found below the one before is filtered last code first, so that
    /// the CPU's prefetcher sees one stream either way.
    pub fn read_rows(
        &self,
        heads: &[BlockNo],
        mut f: impl FnMut(&[u8], Direction, &mut dyn FnMut(usize) -> Tid),
    ) -> Result<(), MihError> {
        let Some(list) = self.meta.row_list else {
            return self.read_table(heads, 0, |page| {
                f(Bucket::codes(page, self.params()), Direction::Forward, &mut |i| Bucket::tid(page, i))
            });
        };
        let p = self.params();
        let mut blk = list.head;
        let mut walk = Walk::new(&self.store);
        let mut last_page: Option<*const u8> = None;
        while blk != INVALID_BLOCK {
            let g = self.read_row_page(blk, &mut walk)?;
            let here = g.page().as_ptr();
            let direction = match last_page {
                Some(last) if here < last => Direction::Backward,
                _ => Direction::Forward,
            };
            last_page = Some(here);
            let next = RowPage::next(g.page());
            if next != INVALID_BLOCK {
                // The next page's first lines (last, going back), and those of its other 4 KiB
                // half (the CPU's streaming prefetcher stops at each 4 KiB boundary), while this
                // page is filtered.
                let lines = match direction {
                    Direction::Forward => &PREFETCH_NEXT,
                    Direction::Backward => &PREFETCH_NEXT_BACK,
                };
                self.store.prefetch(next, lines);
            }
            let mut tids: Option<S::Guard> = None;
            let tids_blk = RowPage::tids_block(g.page());
            f(RowPage::codes(g.page(), p), direction, &mut |i| {
                RowPage::tid(tids.get_or_insert_with(|| self.store.read(tids_blk)).page(), i)
            });
            // Checked after the fact (the tids were read within the page, whatever it holds):
            // a wrong page fails the search.
            if let Some(t) = &tids {
                RowPage::check_tids(t.page(), g.page(), blk)?;
            }
            blk = next;
        }
        Ok(())
    }

    /// Block `blk` of the row list, read-locked and checked.
    fn read_row_page(&self, blk: BlockNo, walk: &mut Walk) -> Result<S::Guard, MihError> {
        walk.step(&self.store, blk)?;
        let g = self.store.read(blk);
        RowPage::check(g.page(), self.params(), blk)?;
        Ok(g)
    }

    /// Appends a row to the row list's last page, or to a new pair of pages linked from it in the
    /// same WAL record; returns the new page then, for the meta page's tail hint (the caller
    /// moves it). Nothing in an index of format 2.
    pub(crate) fn append_row(&self, code: &[u8], tid: Tid) -> Result<Option<BlockNo>, MihError> {
        let Some(list) = self.meta.row_list else { return Ok(None) };
        let p = self.params();
        let mut blk = list.tail;
        let mut walk = Walk::new(&self.store);
        loop {
            walk.step(&self.store, blk)?;
            let mut g = self.store.write(blk);
            RowPage::check(g.page(), p, blk)?;
            let next = RowPage::next(g.page());
            if next != INVALID_BLOCK {
                blk = next; // the hint lags: follow the list
                continue;
            }
            if RowPage::count(g.page()) < p.row_capacity() {
                let mut t = self.store.write(RowPage::tids_block(g.page()));
                RowPage::check_tids(t.page(), g.page(), blk)?;
                self.store.modify(&mut [&mut g, &mut t], |pg| {
                    let [rows, tids] = pg else { unreachable!() };
                    RowPage::push(rows, tids, p, code, tid)
                });
                return Ok(None);
            }
            let (mut rows, mut tids) = (self.store.allocate(), self.store.allocate());
            let (rows_blk, tids_blk) = (rows.block(), tids.block());
            self.store.modify(&mut [&mut g, &mut rows, &mut tids], |pg| {
                let [last, rows, tids] = pg else { unreachable!() };
                RowPage::init(rows, tids, rows_blk, tids_blk);
                RowPage::push(rows, tids, p, code, tid);
                RowPage::set_next(last, rows_blk);
            });
            return Ok(Some(rows_blk));
        }
    }

    /// Removes the rows whose tid is `dead` from the row list; returns how many went.
    pub(crate) fn vacuum_rows(&self, dead: &mut impl FnMut(Tid) -> bool) -> Result<u64, MihError> {
        let Some(list) = self.meta.row_list else { return Ok(0) };
        let p = self.params();
        let (mut blk, mut walk, mut removed) = (list.head, Walk::new(&self.store), 0u64);
        while blk != INVALID_BLOCK {
            walk.step(&self.store, blk)?;
            let mut g = self.store.write(blk);
            RowPage::check(g.page(), p, blk)?;
            let mut t = self.store.write(RowPage::tids_block(g.page()));
            RowPage::check_tids(t.page(), g.page(), blk)?;
            let gone =
                DeadTids::among((0..RowPage::count(t.page())).map(|i| RowPage::tid(t.page(), i)), dead);
            if !gone.is_empty() {
                removed += self.store.modify(&mut [&mut g, &mut t], |pg| {
                    let [rows, tids] = pg else { unreachable!() };
                    RowPage::retain(rows, tids, p, |tid| gone.contains(tid))
                }) as u64;
            }
            blk = RowPage::next(g.page());
        }
        Ok(removed)
    }

    /// Every (tid, code) of the row list, and its pages (row and tid pages); `None` in an index
    /// of format 2.
    pub(crate) fn row_entries(&self) -> Result<Option<(Entries, u64)>, MihError> {
        if self.meta.row_list.is_none() {
            return Ok(None);
        }
        let nbits = self.params().nbits;
        let mut entries = Vec::new();
        let walked = self.rows_after(LIST_HEAD, |blk, c, tid| {
            if !crate::code::padding_is_clear(nbits, c) {
                return Err(MihError::Corrupt(format!("row page {blk}: code with padding bits set")));
            }
            entries.push((tid, c.to_vec()));
            Ok(())
        })?;
        Ok(Some((entries, 2 * walked.pages as u64)))
    }

    /// Calls `f(block, code, tid)` for each row of the row list after `from` (a row page and how
    /// many of its rows to skip; [`LIST_HEAD`]: from the list's head), tid pages checked; says
    /// where the list ended (its last page and its rows then) and how many row pages it walked.
    /// Row pages only grow at the list's end while a VACUUM runs (VACUUM alone compacts them),
    /// so a retune's position stays valid until its switch.
    pub(crate) fn rows_after(
        &self,
        from: ListEnd,
        mut f: impl FnMut(BlockNo, &[u8], Tid) -> Result<(), MihError>,
    ) -> Result<Walked, MihError> {
        let Some(list) = self.meta.row_list else {
            return Err(MihError::Corrupt("the index has no row list".into()));
        };
        let p = self.params();
        let (mut blk, mut skip) = if from == LIST_HEAD { (list.head, 0) } else { from };
        let mut walk = Walk::new(&self.store);
        loop {
            let g = self.read_row_page(blk, &mut walk)?;
            let t = self.store.read(RowPage::tids_block(g.page()));
            RowPage::check_tids(t.page(), g.page(), blk)?;
            for (i, c) in RowPage::codes(g.page(), p).chunks_exact(p.code_bytes()).enumerate().skip(skip) {
                f(blk, c, RowPage::tid(t.page(), i))?;
            }
            let next = RowPage::next(g.page());
            if next == INVALID_BLOCK {
                return Ok(Walked { end: (blk, RowPage::count(g.page())), pages: walk.pages });
            }
            (blk, skip) = (next, 0);
        }
    }
}

/// A position on the row list: a row page and how many of its rows come before it.
pub(crate) type ListEnd = (BlockNo, usize);
/// The position before the list's first row.
pub(crate) const LIST_HEAD: ListEnd = (INVALID_BLOCK, 0);

/// What [`Mih::rows_after`] walked.
pub(crate) struct Walked {
    /// Where the list ended.
    pub end: ListEnd,
    /// Row pages walked.
    pub pages: u32,
}

/// What a read asks the CPU for of the next row page: four lines at the start of each 4 KiB.
const PREFETCH_NEXT: [std::ops::Range<usize>; 2] = [0..256, 4096..4352];
/// The same for a read going back: four lines at the end of each 4 KiB.
const PREFETCH_NEXT_BACK: [std::ops::Range<usize>; 2] = [3840..4096, 7936..8192];

/// Rows as `check` lists them: (tid, code).
pub(crate) type Entries = Vec<(Tid, Vec<u8>)>;

/// A walk along the row list: a block past the relation's end, or more pages than it has (a
/// loop), is corruption. The relation's size is asked again only then (PostgreSQL's answer is
/// a system call, and inserts may extend the list during the walk).
struct Walk {
    nblocks: BlockNo,
    pages: u32,
}

impl Walk {
    fn new(store: &impl PageStore) -> Walk {
        Walk { nblocks: store.nblocks(), pages: 0 }
    }

    fn step(&mut self, store: &impl PageStore, blk: BlockNo) -> Result<(), MihError> {
        self.pages += 1;
        if blk >= self.nblocks || self.pages > self.nblocks {
            self.nblocks = store.nblocks();
            if blk >= self.nblocks || self.pages > self.nblocks {
                return Err(MihError::Corrupt(format!("the row list leads to block {blk}, or loops")));
            }
        }
        Ok(())
    }
}
