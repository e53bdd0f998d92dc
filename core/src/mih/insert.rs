//! Insert: one entry per table for each new row (and one in the row list, `super::rows`), kept in substring order within its bucket
//! page; a full chain grows by a page linked in the same atomic step that fills it.

use super::index::Mih;
use super::layout::{dir_check, dir_get, dir_set, BlockNo, Bucket, MihError, Tid, INVALID_BLOCK};
use super::store::{PageGuard, PageStore};

impl<S: PageStore> Mih<S> {
    fn check_length(&self, code: &[u8]) -> Result<(), MihError> {
        let p = self.params();
        if code.len() != p.code_bytes() {
            return Err(MihError::LengthMismatch { expected: p.nbits, got: code.len() as u32 * 8 });
        }
        Ok(())
    }

    /// Adds one row: an entry in every table.
    pub fn insert(&self, code: &[u8], tid: Tid) -> Result<(), MihError> {
        self.check_length(code)?;
        let p = self.params();
        for t in 0..p.m() {
            let b = p.bucket(t, p.substring(t, code));
            let head = match self.head_or_create(t, b, code, tid)? {
                Some(head) => head,
                None => continue, // the new head page already holds the entry
            };
            self.insert_into_chain(head, t, b, code, tid)?;
        }
        self.append_row(code, tid)
    }

    /// The head of (t, b); creates it holding the entry when the bucket is still empty.
    fn head_or_create(&self, t: u32, b: u32, code: &[u8], tid: Tid) -> Result<Option<BlockNo>, MihError> {
        let p = self.params();
        let (dblk, slot) = p.dir_location(t, b);
        let head = {
            let g = self.store.read(dblk);
            dir_check(g.page())?;
            dir_get(g.page(), slot)
        };
        if head != INVALID_BLOCK {
            return Ok(Some(head));
        }
        let mut d = self.store.write(dblk);
        let head = dir_get(d.page(), slot);
        if head != INVALID_BLOCK {
            return Ok(Some(head)); // another backend created it meanwhile
        }
        self.add_page(&mut d, t, b, code, tid, |dir, blk| dir_set(dir, slot, blk))?;
        Ok(None)
    }

    fn insert_into_chain(
        &self,
        head: BlockNo,
        t: u32,
        b: u32,
        code: &[u8],
        tid: Tid,
    ) -> Result<(), MihError> {
        let p = self.params();
        // The head's exclusive lock is the bucket lock: held until the entry is in.
        let mut h = self.store.write(head);
        let mut tail: Option<S::Guard> = None;
        loop {
            let g = tail.as_mut().unwrap_or(&mut h);
            Bucket::check(g.page(), p, t, b)?;
            if Bucket::count(g.page()) < p.capacity() {
                self.store.modify(&mut [g], |pg| Bucket::insert(pg[0], p, t, code, tid));
                return Ok(());
            }
            let next = Bucket::next(g.page());
            if next == INVALID_BLOCK {
                return self.add_page(g, t, b, code, tid, Bucket::set_next);
            }
            tail = Some(self.store.write(next));
        }
    }

    /// A new bucket page of (t, b) holding the entry, made reachable by `link(before, block)` in
    /// the same WAL record: the chain's last page (`Bucket::set_next`) or the directory page.
    fn add_page(
        &self,
        before: &mut S::Guard,
        t: u32,
        b: u32,
        code: &[u8],
        tid: Tid,
        link: impl FnOnce(&mut [u8], BlockNo),
    ) -> Result<(), MihError> {
        let p = self.params();
        let mut fresh = self.store.allocate();
        let blk = fresh.block();
        self.store.modify(&mut [before, &mut fresh], |pages| {
            Bucket::init(pages[1], t, b);
            Bucket::insert(pages[1], p, t, code, tid);
            link(pages[0], blk);
        });
        Ok(())
    }
}
