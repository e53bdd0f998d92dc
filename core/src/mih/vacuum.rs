//! Vacuum: entries of dead rows removed from every chain and from the row list; overflow pages left empty are unlinked
//! and recycled, and pages that hold nothing are found again for the free space map.

use super::index::Mih;
use super::layout::{is_free, BlockNo, Bucket, MihError, Params, Tid, INVALID_BLOCK};
use super::store::{PageGuard, PageStore};

/// What a VACUUM pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VacuumStats {
    /// Index entries removed (rows: each row has one entry per table; counted once).
    pub removed: u64,
    /// Rows still indexed.
    pub remaining: u64,
    /// Overflow pages unlinked and handed to the free space map.
    pub pages_freed: u64,
}

impl<S: PageStore> Mih<S> {
    /// Removes the entries of dead rows; overflow pages left empty are unlinked and recycled.
    pub fn bulk_delete(&self, mut dead: impl FnMut(Tid) -> bool) -> Result<VacuumStats, MihError> {
        let p = self.params().clone();
        let heads = self.load_heads()?;
        let nb = p.nbuckets as usize;
        let mut stats = VacuumStats::default();
        for t in 0..p.m() {
            for b in 0..nb {
                let head = heads[t as usize * nb + b];
                if head == INVALID_BLOCK {
                    continue;
                }
                let (removed, kept, freed) = self.vacuum_chain(&p, head, t, b as u32, &mut dead)?;
                if t == 0 {
                    stats.removed += removed;
                    stats.remaining += kept;
                }
                stats.pages_freed += freed;
            }
        }
        self.vacuum_rows(&mut dead)?;
        Ok(stats)
    }

    fn vacuum_chain(
        &self,
        p: &Params,
        head: BlockNo,
        t: u32,
        b: u32,
        dead: &mut impl FnMut(Tid) -> bool,
    ) -> Result<(u64, u64, u64), MihError> {
        let (mut removed, mut kept, mut freed) = (0u64, 0u64, 0u64);
        let mut h = self.store.write(head);
        Bucket::check(h.page(), p, t, b)?;
        let gone = dead_entries(h.page(), p, dead);
        if !gone.is_empty() {
            self.store.modify(&mut [&mut h], |pg| Bucket::retain(pg[0], p, |tid| gone.contains(tid)));
        }
        removed += gone.len() as u64;
        kept += Bucket::count(h.page()) as u64;
        // `prev` is the page whose next pointer leads to `cur`; the head stays locked throughout.
        let mut prev: Option<S::Guard> = None;
        let mut next = Bucket::next(h.page());
        while next != INVALID_BLOCK {
            let mut cur = self.store.write(next);
            Bucket::check(cur.page(), p, t, b)?;
            let gone = dead_entries(cur.page(), p, dead);
            removed += gone.len() as u64;
            next = Bucket::next(cur.page());
            if gone.len() == Bucket::count(cur.page()) {
                // Empty now: unlink it in the same WAL record that empties it.
                let before: &mut S::Guard = prev.as_mut().unwrap_or(&mut h);
                let blk = cur.block();
                self.store.modify(&mut [before, &mut cur], |pg| {
                    Bucket::set_next(pg[0], next);
                    Bucket::make_free(pg[1]);
                });
                drop(cur);
                self.store.recycle(blk);
                freed += 1;
                continue;
            }
            if !gone.is_empty() {
                self.store.modify(&mut [&mut cur], |pg| Bucket::retain(pg[0], p, |tid| gone.contains(tid)));
            }
            kept += Bucket::count(cur.page()) as u64;
            prev = Some(cur);
        }
        Ok((removed, kept, freed))
    }

    /// Blocks that hold nothing (after a crash or a vacuum whose free-space-map update was lost):
    /// the caller hands them to the free space map again. Blocks a retune has reserved are not
    /// among them while it runs (VACUUM runs it after this), nor after a crash (VACUUM frees
    /// them first, `Mih::free_reserved`).
    pub fn free_blocks(&self) -> Vec<BlockNo> {
        (1..self.store.nblocks()).filter(|&blk| is_free(self.store.read(blk).page())).collect()
    }
}

fn dead_entries(page: &[u8], p: &Params, dead: &mut impl FnMut(Tid) -> bool) -> DeadTids {
    DeadTids::among((0..Bucket::count(page)).map(|i| Bucket::entry(page, p, i).1), dead)
}

/// The tids of a page's dead rows, sorted: `retain` asks about each row of the page, by a binary
/// search (a row page holds ~1,000 rows, all of which may be dead).
pub(crate) struct DeadTids(Vec<Tid>);

impl DeadTids {
    /// Those of `tids` that `dead` names.
    pub(crate) fn among(tids: impl Iterator<Item = Tid>, dead: &mut impl FnMut(Tid) -> bool) -> DeadTids {
        let mut gone: Vec<Tid> = tids.filter(|&tid| dead(tid)).collect();
        gone.sort_unstable();
        DeadTids(gone)
    }

    pub(crate) fn contains(&self, tid: Tid) -> bool {
        self.0.binary_search(&tid).is_ok()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
