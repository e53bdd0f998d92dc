//! What every phase shares: an open index (its store and meta page) and its directory.

use super::layout::{dir_check, dir_get, BlockNo, Meta, MihError, Params, DIR_SLOTS_PER_PAGE};
use super::store::{PageGuard, PageStore};

/// An open index: the store and what its meta page says.
pub struct Mih<S: PageStore> {
    pub store: S,
    pub meta: Meta,
}

impl<S: PageStore> Mih<S> {
    pub fn open(store: S) -> Result<Self, MihError> {
        if store.nblocks() == 0 {
            return Err(MihError::Corrupt("the index has no meta page".into()));
        }
        let g = store.read(0);
        let meta = Meta::read(g.page())?;
        drop(g);
        Ok(Mih { store, meta })
    }

    pub fn params(&self) -> &Params {
        &self.meta.params
    }

    /// About how many rows the index holds, for the cost decisions of a search: the rows its
    /// tables were written for, plus those that the pages added since hold (bucket pages counted
    /// half full, as the last page of a chain is on average, row pages full; pages that inserts
    /// took from the free space map are not seen). Costs no page read.
    pub fn estimated_rows(&self) -> u64 {
        let p = self.params();
        let mut pages_per_row = p.m() as f64 / (p.capacity() as f64 / 2.0);
        if self.meta.row_list.is_some() {
            pages_per_row += 2.0 / p.row_capacity() as f64;
        }
        let nblocks = self.store.nblocks();
        let written = self.meta.tables.written_blocks;
        let rows = if written == 0 {
            // Format 3 did not record it: every page but the meta and directory ones.
            (nblocks.saturating_sub(1 + p.dir_pages()) as f64 / pages_per_row) as u64
        } else {
            self.meta.built_rows + (nblocks.saturating_sub(written) as f64 / pages_per_row) as u64
        };
        self.meta.built_rows.max(rows).max(1)
    }

    /// Block and slot of table `t`, bucket `b` in the directory.
    pub(crate) fn dir_location(&self, t: u32, b: u32) -> (BlockNo, usize) {
        let (page, slot) = self.params().dir_location(t, b);
        (self.meta.tables.dir_start + page, slot)
    }

    /// Every directory slot: the head block of each (table, bucket), read once per scan. Heads
    /// only ever go from invalid to valid, and a row visible to a scan's snapshot was inserted
    /// (head created) before the snapshot, so a copy taken at scan start is enough.
    pub fn load_heads(&self) -> Result<Vec<BlockNo>, MihError> {
        let p = self.params();
        let mut heads = Vec::with_capacity(p.dir_slots());
        for d in 0..p.dir_pages() {
            let g = self.store.read(self.meta.tables.dir_start + d);
            dir_check(g.page())?;
            let take = (p.dir_slots() - heads.len()).min(DIR_SLOTS_PER_PAGE);
            heads.extend((0..take).map(|s| dir_get(g.page(), s)));
        }
        Ok(heads)
    }
}
