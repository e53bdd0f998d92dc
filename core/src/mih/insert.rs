//! Insert: one entry per table for each new row (and one in the row list, `super::rows`), kept in substring order within its bucket
//! page; a full chain grows by a page linked in the same atomic step that fills it.

use super::index::Mih;
use super::layout::{dir_check, dir_get, dir_set, BlockNo, Bucket, Meta, MihError, Tid, INVALID_BLOCK};
use super::store::{PageGuard, PageStore};

impl<S: PageStore> Mih<S> {
    fn check_length(&self, code: &[u8]) -> Result<(), MihError> {
        let p = self.params();
        if code.len() != p.code_bytes() {
            return Err(MihError::LengthMismatch { expected: p.nbits, got: code.len() as u32 * 8 });
        }
        Ok(())
    }

    /// Adds one row: an entry in every table and one in the row list. The meta page stays
    /// share-locked throughout, and its tables are read again under that lock: a retune switches
    /// tables under an exclusive lock, so no insert is halfway into the tables it replaces
    /// (`super::retune`).
    pub fn insert(&self, code: &[u8], tid: Tid) -> Result<(), MihError> {
        self.check_length(code)?;
        let g = self.store.read(0);
        let now = Mih { store: &self.store, meta: Meta::read(g.page())? };
        now.insert_tables(code, tid)?;
        let tail = now.append_row(code, tid)?;
        drop(g);
        if let Some(tail) = tail {
            // A new last page of the row list: the meta page's tail hint follows it (with no
            // other lock held; a hint that lags is followed along the list).
            let mut meta = self.store.write(0);
            let m = Meta::read(meta.page())?.params.m();
            self.store.modify(&mut [&mut meta], |pg| Meta::set_row_tail(pg[0], m, tail));
        }
        Ok(())
    }

    /// Adds one row's entry to every table (a retune's catch-up adds rows this way to the
    /// tables it writes).
    pub(crate) fn insert_tables(&self, code: &[u8], tid: Tid) -> Result<(), MihError> {
        let p = self.params();
        for t in 0..p.m() {
            let b = p.bucket(t, p.substring(t, code));
            let head = match self.head_or_create(t, b, code, tid)? {
                Some(head) => head,
                None => continue, // the new head page already holds the entry
            };
            self.insert_into_chain(head, t, b, code, tid)?;
        }
        Ok(())
    }

    /// The head of (t, b); creates it holding the entry when the bucket is still empty.
    fn head_or_create(&self, t: u32, b: u32, code: &[u8], tid: Tid) -> Result<Option<BlockNo>, MihError> {
        let (dblk, slot) = self.dir_location(t, b);
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
            Bucket::init(pages[1], p, t, b);
            Bucket::insert(pages[1], p, t, code, tid);
            link(pages[0], blk);
        });
        Ok(())
    }
}
