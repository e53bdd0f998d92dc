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

    /// About how many rows the index holds, for the cost decisions of a search: the rows at
    /// build, or more when its pages say so (rows inserted since; bucket pages counted half
    /// full, as the last page of a chain is on average, row pages full). Costs no page read.
    pub fn estimated_rows(&self) -> u64 {
        let p = self.params();
        let pages = self.store.nblocks().saturating_sub(1 + p.dir_pages()) as f64;
        let mut pages_per_row = p.m() as f64 / (p.capacity() as f64 / 2.0);
        if self.meta.row_list.is_some() {
            pages_per_row += 2.0 / p.row_capacity() as f64;
        }
        self.meta.built_rows.max((pages / pages_per_row) as u64).max(1)
    }

    /// Every directory slot: the head block of each (table, bucket), read once per scan. Heads
    /// only ever go from invalid to valid, and a row visible to a scan's snapshot was inserted
    /// (head created) before the snapshot, so a copy taken at scan start is enough.
    pub fn load_heads(&self) -> Result<Vec<BlockNo>, MihError> {
        let p = self.params();
        let mut heads = Vec::with_capacity(p.dir_slots());
        for d in 0..p.dir_pages() {
            let g = self.store.read(1 + d);
            dir_check(g.page())?;
            let take = (p.dir_slots() - heads.len()).min(DIR_SLOTS_PER_PAGE);
            heads.extend((0..take).map(|s| dir_get(g.page(), s)));
        }
        Ok(heads)
    }
}
