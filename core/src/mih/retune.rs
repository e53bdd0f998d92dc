//! Retune: tables chosen again for the rows an index holds now, once it has grown well past the
//! rows they were chosen for, without a REINDEX. VACUUM's cleanup runs it (and frees what an
//! earlier one left), while scans and inserts go on.
//!
//! An index built on 100k rows that then receives 900k keeps tables sized and tuned for 100k:
//! chains ten pages long, and an m too small to probe 1M rows within budget, so every search
//! reads the row list. A retune reads the row list (every row's code and tid), chooses m and
//! budgets as a build would (`super::tune`), and writes new tables into a run of blocks reserved
//! at the relation's end, WAL-logged in bulk. Then, under the meta page's exclusive lock, it adds
//! the rows inserted meanwhile (the row list's rows past where it read) and switches the meta
//! page to the new tables in one record. Inserts hold the meta page share-locked while they add a
//! row (`Mih::insert`), so none is halfway into the old tables at the switch; a scan copies the
//! directory's heads at its start, so one that started before the switch reads the old tables to
//! its end. They stay as they are, retired, with a stamp ([`PageStore::stamp`]): a later VACUUM
//! frees them once no scan of that time runs ([`Mih::free_retired`]).
//!
//! Crash safety: the reserved run is named on the meta page before anything is written into it,
//! so an error or a crash before the switch leaves it named, unlinked; the next VACUUM frees it
//! ([`Mih::free_reserved`]). The row list is not rewritten: it stays shared by old and new tables.

use super::build::TablePlan;
use super::index::Mih;
use super::layout::{
    dir_check, dir_get, dir_set, is_free, BlockNo, Bucket, Meta, MihError, Params, Reserved, Retired, Tables,
    Tid, DEFAULT_PROBE_BUDGET, DIR_SLOTS_PER_PAGE, INVALID_BLOCK,
};
use super::rows::{ListEnd, LIST_HEAD};
use super::store::{PageGuard, PageStore};
use super::tune;

/// Tables are chosen again once the index holds this many times the rows they were chosen for.
pub const GROWTH: u64 = 2;

/// A retune's memory per row beside the row's code: its tid as read (8 bytes in a `Vec<Tid>`)
/// and its entry in a table's sort order (16).
const RETUNE_BYTES_PER_ROW: u64 = 8 + 16;

/// What a retune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retuned {
    /// Rows the new tables hold.
    pub rows: u64,
    /// Of them, rows inserted while the retune wrote its tables (added at the switch).
    pub caught_up: u64,
    /// Substrings before and after.
    pub m_before: u32,
    pub m: u32,
    /// Blocks of the new tables.
    pub pages: u32,
}

/// New tables written but not switched to: [`Mih::write_tables`] then [`Mih::switch_tables`].
pub struct NewTables {
    params: Params,
    probe_budget: u16,
    probe_budget_top100: Option<u16>,
    reserved: Reserved,
    rows: u64,
    read_to: ListEnd,
}

impl<S: PageStore> Mih<S> {
    /// Whether the tables were chosen for far fewer rows than the index holds, `rows` (VACUUM
    /// counts them; the pages can only tell roughly, [`Mih::estimated_rows`]), and nothing of
    /// an earlier retune waits to be freed. An index of format 2 has no row list to retune from.
    pub fn outgrown(&self, rows: u64) -> bool {
        let t = &self.meta.tables;
        self.meta.row_list.is_some()
            && t.retired.is_none()
            && t.reserved.is_none()
            && rows >= GROWTH * self.meta.built_rows.max(tune::MIN_ROWS as u64)
    }

    /// About how many bytes a retune of `rows` rows holds at once: every row's code and tid read
    /// from the row list, and one table's sort order while it writes (`TablePlan::write`).
    pub fn retune_bytes(&self, rows: u64) -> u64 {
        rows.saturating_mul(self.params().code_bytes() as u64 + RETUNE_BYTES_PER_ROW)
    }

    /// Chooses and writes new tables for the rows the index holds, then switches to them:
    /// [`Mih::write_tables`] and [`Mih::switch_tables`]. `forced_m`: the index's
    /// `substrings` option, kept.
    pub fn retune(&mut self, forced_m: Option<u32>, progress: impl FnMut(u64)) -> Result<Retuned, MihError> {
        let new = self.write_tables(forced_m, progress)?;
        self.switch_tables(new)
    }

    /// Reads the row list, chooses the tables for its rows, reserves a run of blocks for them
    /// (named on the meta page), writes and WAL-logs them. Nothing links to them yet.
    pub fn write_tables(
        &mut self,
        forced_m: Option<u32>,
        progress: impl FnMut(u64),
    ) -> Result<NewTables, MihError> {
        let old = self.params().clone();
        let (codes, tids, read_to) = self.read_row_list()?;
        let n = tids.len();
        let tuning = tune::choose_substrings(old.nbits, &codes, old.fillfactor, forced_m);
        let m = forced_m.or(tuning.as_ref().map(|t| t.m));
        let params = Params {
            generation: old.generation.wrapping_add(1),
            ..Params::choose(old.nbits, n as u64, m, old.fillfactor)?
        };
        let plan = TablePlan::new(&params, &codes, 0);
        let reserved = Reserved { first: self.store.reserve(plan.pages()), count: plan.pages() };
        self.set_tables(|meta| meta.tables.reserved = Some(reserved))?;
        let plan = plan.moved_to(reserved.first);
        plan.write(
            &params,
            &codes,
            &tids,
            |blk, image| {
                self.store.write_built(blk, image);
                Ok(())
            },
            progress,
        )?;
        self.store.log_built(reserved.first, reserved.count);
        Ok(NewTables {
            probe_budget: tuning.as_ref().map_or(DEFAULT_PROBE_BUDGET, |t| t.probe_budget),
            probe_budget_top100: tuning.map(|t| t.probe_budget_top100),
            params,
            reserved,
            rows: n as u64,
            read_to,
        })
    }

    /// Under the meta page's exclusive lock (no insert in flight): adds the rows inserted since
    /// [`Mih::write_tables`] read the row list to the new tables, then switches the meta page to
    /// them and retires the old ones, in one record.
    pub fn switch_tables(&mut self, new: NewTables) -> Result<Retuned, MihError> {
        let mut g = self.store.write(0);
        let now = Meta::read(g.page())?;
        if now.tables.reserved != Some(new.reserved) {
            return Err(MihError::Corrupt("the meta page no longer names the retune's blocks".into()));
        }
        let mut meta = Meta {
            params: new.params,
            built_rows: new.rows,
            probe_budget: new.probe_budget,
            probe_budget_top100: new.probe_budget_top100,
            row_list: now.row_list,
            tables: Tables {
                dir_start: new.reserved.first,
                written_blocks: 0,
                retired: Some(Retired {
                    dir_start: now.tables.dir_start,
                    dir_pages: now.params.dir_pages(),
                    stamp: self.store.stamp(),
                }),
                reserved: None,
            },
        };
        let fresh = Mih { store: &self.store, meta: meta.clone() };
        let mut caught_up = 0u64;
        fresh.rows_after(new.read_to, |_, code, tid| {
            caught_up += 1;
            fresh.insert_tables(code, tid)
        })?;
        meta.built_rows += caught_up;
        meta.tables.written_blocks = self.store.nblocks();
        self.store.modify(&mut [&mut g], |pg| meta.write(pg[0]));
        drop(g);
        let retuned = Retuned {
            rows: meta.built_rows,
            caught_up,
            m_before: now.params.m(),
            m: meta.params.m(),
            pages: new.reserved.count,
        };
        self.meta = meta;
        Ok(retuned)
    }

    /// Frees the tables a retune replaced, once no scan that may read them runs; returns the
    /// pages freed. A chain is freed from its end, each page unlinked from the one before it in
    /// the record that frees it, and its head with its directory slot cleared: a crash midway
    /// leaves retired tables that lead only to pages not yet freed, for the next VACUUM.
    pub fn free_retired(&mut self) -> Result<u64, MihError> {
        let Some(r) = self.meta.tables.retired else { return Ok(0) };
        if !self.store.stamp_passed(r.stamp) {
            return Ok(0);
        }
        let mut freed = 0u64;
        for d in 0..r.dir_pages {
            let dblk = r.dir_start + d;
            let mut dir = self.store.write(dblk);
            if dir_check(dir.page()).is_err() {
                // Freed before a crash (and maybe taken since: only a retune's new blocks
                // become directory pages, never a freed page).
                continue;
            }
            for slot in 0..DIR_SLOTS_PER_PAGE {
                let head = dir_get(dir.page(), slot);
                if head == INVALID_BLOCK {
                    continue;
                }
                let mut chain = vec![head];
                let mut next = self.retired_next(head)?;
                while next != INVALID_BLOCK {
                    if chain.len() > self.store.nblocks() as usize {
                        return Err(MihError::Corrupt(format!("a retired chain from block {head} loops")));
                    }
                    chain.push(next);
                    next = self.retired_next(next)?;
                }
                while let Some(last) = chain.pop() {
                    let mut page = self.store.write(last);
                    match chain.last() {
                        Some(&before) => {
                            let mut prev = self.store.write(before);
                            self.store.modify(&mut [&mut prev, &mut page], |pg| {
                                Bucket::set_next(pg[0], INVALID_BLOCK);
                                Bucket::make_free(pg[1]);
                            });
                        }
                        None => self.store.modify(&mut [&mut dir, &mut page], |pg| {
                            dir_set(pg[0], slot, INVALID_BLOCK);
                            Bucket::make_free(pg[1]);
                        }),
                    }
                    drop(page);
                    self.store.recycle(last);
                    freed += 1;
                }
            }
            self.store.modify(&mut [&mut dir], |pg| Bucket::make_free(pg[0]));
            drop(dir);
            self.store.recycle(dblk);
            freed += 1;
        }
        self.set_tables(|meta| meta.tables.retired = None)?;
        Ok(freed)
    }

    /// Frees the blocks a retune reserved and never switched to (an error or a crash before the
    /// switch); returns how many. Nothing links to them. Each record frees up to three of them
    /// and moves the start of the run the meta page names past them, so that a crash midway
    /// never leaves a freed block named (which an insert may have taken from the free space
    /// map since, and a second pass would free under it).
    pub fn free_reserved(&mut self) -> Result<u64, MihError> {
        let Some(v) = self.meta.tables.reserved else { return Ok(0) };
        // The relation may end before the run (its extension was not logged).
        let end = (v.first + v.count).min(self.store.nblocks()).max(v.first);
        let mut at = v.first;
        while at < end {
            let upto = (at + 3).min(end);
            let mut meta = self.store.write(0);
            let mut now = Meta::read(meta.page())?;
            let mut pages: Vec<S::Guard> = (at..upto).map(|blk| self.store.write(blk)).collect();
            now.tables.reserved =
                (upto < v.first + v.count).then(|| Reserved { first: upto, count: v.first + v.count - upto });
            // A block never written holds zeros, which is free already (and no valid page to
            // change: PostgreSQL formats it first, see the store's `write`).
            let mut guards: Vec<&mut S::Guard> = vec![&mut meta];
            guards.extend(pages.iter_mut());
            self.store.modify(&mut guards, |pg| {
                now.write(pg[0]);
                for page in pg[1..].iter_mut() {
                    if !is_free(page) {
                        Bucket::make_free(page);
                    }
                }
            });
            drop(pages);
            drop(meta);
            for blk in at..upto {
                self.store.recycle(blk);
            }
            self.meta = now;
            at = upto;
        }
        if self.meta.tables.reserved.is_some() {
            // Blocks past the relation's end: nothing to free.
            self.set_tables(|meta| meta.tables.reserved = None)?;
        }
        Ok((end - v.first) as u64)
    }

    /// What a search's error means: pages that are not its tables' are corruption, unless the
    /// meta page names other tables now than when the search opened the index, which replaced
    /// and freed its tables while it ran ([`MihError::Retuned`]).
    pub fn explain(&self, err: MihError) -> MihError {
        let MihError::Corrupt(_) = err else { return err };
        let g = self.store.read(0);
        match Meta::read(g.page()) {
            Ok(now) if now.tables.dir_start != self.meta.tables.dir_start => MihError::Retuned,
            _ => err,
        }
    }

    /// The next block of a retired bucket page (which nothing else reads or writes any more).
    fn retired_next(&self, blk: BlockNo) -> Result<BlockNo, MihError> {
        if blk == 0 || blk >= self.store.nblocks() {
            return Err(MihError::Corrupt(format!("a retired chain leads to block {blk}")));
        }
        let g = self.store.read(blk);
        if !Bucket::is_bucket(g.page()) {
            return Err(MihError::Corrupt(format!("block {blk} of a retired chain is no bucket page")));
        }
        Ok(Bucket::next(g.page()))
    }

    /// Changes the meta page's tables (read again under its lock), in one record.
    fn set_tables(&mut self, change: impl FnOnce(&mut Meta)) -> Result<(), MihError> {
        let mut g = self.store.write(0);
        let mut meta = Meta::read(g.page())?;
        change(&mut meta);
        self.store.modify(&mut [&mut g], |pg| meta.write(pg[0]));
        self.meta = meta;
        Ok(())
    }

    /// Every row of the row list: codes back to back, tids, and where the list ended.
    fn read_row_list(&self) -> Result<(Vec<u8>, Vec<Tid>, ListEnd), MihError> {
        let (mut codes, mut tids) = (Vec::new(), Vec::new());
        let walked = self.rows_after(LIST_HEAD, |_, code, tid| {
            codes.extend_from_slice(code);
            tids.push(tid);
            Ok(())
        })?;
        Ok((codes, tids, walked.end))
    }
}
