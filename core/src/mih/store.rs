//! The page-store contract the index algorithms run on, and an in-memory store for tests.
//!
//! PostgreSQL's implementation (in the extension) maps these calls onto shared buffers, buffer
//! content locks and Generic WAL; the algorithms only ever see page bytes. Locking rules the
//! algorithms follow, so that the PostgreSQL store can take real locks without deadlocks:
//! a bucket's head page is locked first (shared by scans, exclusive by insert and vacuum), then
//! the chain's later pages in chain order; directory pages are only locked with no other lock.

use super::layout::{BlockNo, BLOCK_SIZE};
use std::cell::RefCell;

/// A pinned and locked page.
pub trait PageGuard {
    fn block(&self) -> BlockNo;
    fn page(&self) -> &[u8];
}

pub trait PageStore {
    type Guard: PageGuard;

    /// Locks an existing block for reading.
    fn read(&self, blk: BlockNo) -> Self::Guard;
    /// Locks an existing block for writing (through [`PageStore::modify`]).
    fn write(&self, blk: BlockNo) -> Self::Guard;
    /// A page to initialise: a recycled one or a new block at the end. Its content is undefined
    /// until a `modify` initialises it.
    fn allocate(&self) -> Self::Guard;
    /// Changes the given write-locked pages as one atomic, durable step (one WAL record).
    fn modify<R>(&self, pages: &mut [&mut Self::Guard], f: impl FnOnce(&mut [&mut [u8]]) -> R) -> R;
    /// Hands back a page that VACUUM unlinked (already marked free by a `modify`).
    fn recycle(&self, blk: BlockNo);
    /// Appends a whole page during a build; the build logs the relation in bulk afterwards.
    fn append_built(&self, image: &[u8]) -> BlockNo;
    /// Extends the relation by `count` blocks in one run (no other backend's block among them)
    /// for a retune's tables; returns the first. They hold nothing until [`PageStore::write_built`].
    fn reserve(&self, count: u32) -> BlockNo;
    /// Writes a whole page image into a block [`PageStore::reserve`] returned, unlogged:
    /// [`PageStore::log_built`] logs the run afterwards, before anything links to it.
    fn write_built(&self, blk: BlockNo, image: &[u8]);
    /// WAL-logs `count` blocks from `first` as they are now, in bulk.
    fn log_built(&self, _first: BlockNo, _count: u32) {}
    /// A stamp taken now, for pages that scans running now may still read (tables a retune
    /// replaced): [`PageStore::stamp_passed`] says when no such scan runs any more.
    fn stamp(&self) -> u64 {
        0
    }
    /// Whether every scan that was running when `stamp` was taken has ended.
    fn stamp_passed(&self, _stamp: u64) -> bool {
        true
    }
    fn nblocks(&self) -> BlockNo;
    /// A hint that the byte `ranges` of block `blk` are read soon: a store may start bringing
    /// them into the CPU's caches, without pinning or locking anything. The default does
    /// nothing.
    fn prefetch(&self, _blk: BlockNo, _ranges: &[std::ops::Range<usize>]) {}
}

/// A shared reference to a store is a store (tests build indexes over `&MemStore`).
impl<T: PageStore> PageStore for &T {
    type Guard = T::Guard;
    fn read(&self, blk: BlockNo) -> Self::Guard {
        (**self).read(blk)
    }
    fn write(&self, blk: BlockNo) -> Self::Guard {
        (**self).write(blk)
    }
    fn allocate(&self) -> Self::Guard {
        (**self).allocate()
    }
    fn modify<R>(&self, pages: &mut [&mut Self::Guard], f: impl FnOnce(&mut [&mut [u8]]) -> R) -> R {
        (**self).modify(pages, f)
    }
    fn recycle(&self, blk: BlockNo) {
        (**self).recycle(blk)
    }
    fn append_built(&self, image: &[u8]) -> BlockNo {
        (**self).append_built(image)
    }
    fn reserve(&self, count: u32) -> BlockNo {
        (**self).reserve(count)
    }
    fn write_built(&self, blk: BlockNo, image: &[u8]) {
        (**self).write_built(blk, image)
    }
    fn log_built(&self, first: BlockNo, count: u32) {
        (**self).log_built(first, count)
    }
    fn stamp(&self) -> u64 {
        (**self).stamp()
    }
    fn stamp_passed(&self, stamp: u64) -> bool {
        (**self).stamp_passed(stamp)
    }
    fn nblocks(&self) -> BlockNo {
        (**self).nblocks()
    }
    fn prefetch(&self, blk: BlockNo, ranges: &[std::ops::Range<usize>]) {
        (**self).prefetch(blk, ranges)
    }
}

/// Pages in memory. Single-threaded: locks are no-ops, `modify` applies in place. Stamps count
/// up from 1; a test says which scans still run ([`MemStore::hold_scans_from`]).
#[derive(Default)]
pub struct MemStore {
    pages: RefCell<Vec<Box<[u8]>>>,
    free: RefCell<Vec<BlockNo>>,
    stamps: std::cell::Cell<u64>,
    oldest_scan: std::cell::Cell<Option<u64>>,
}

pub struct MemGuard {
    blk: BlockNo,
    // Boxed pages never move while the store lives (the Vec only moves the boxes' pointers).
    ptr: *mut u8,
}

impl PageGuard for MemGuard {
    fn block(&self) -> BlockNo {
        self.blk
    }
    fn page(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.ptr, BLOCK_SIZE) }
    }
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn guard(&self, blk: BlockNo) -> MemGuard {
        let mut pages = self.pages.borrow_mut();
        MemGuard { blk, ptr: pages[blk as usize].as_mut_ptr() }
    }

    pub fn free_pages(&self) -> usize {
        self.free.borrow().len()
    }

    /// Pretends that a scan that started at `stamp` still runs (`None`: none runs).
    pub fn hold_scans_from(&self, stamp: Option<u64>) {
        self.oldest_scan.set(stamp);
    }
}

impl PageStore for MemStore {
    type Guard = MemGuard;

    fn read(&self, blk: BlockNo) -> MemGuard {
        self.guard(blk)
    }
    fn write(&self, blk: BlockNo) -> MemGuard {
        self.guard(blk)
    }
    fn allocate(&self) -> MemGuard {
        if let Some(blk) = self.free.borrow_mut().pop() {
            return self.guard(blk);
        }
        let blk = self.append_built(&[0u8; BLOCK_SIZE]);
        self.guard(blk)
    }
    fn modify<R>(&self, pages: &mut [&mut MemGuard], f: impl FnOnce(&mut [&mut [u8]]) -> R) -> R {
        let mut slices: Vec<&mut [u8]> =
            pages.iter().map(|g| unsafe { std::slice::from_raw_parts_mut(g.ptr, BLOCK_SIZE) }).collect();
        f(&mut slices)
    }
    fn recycle(&self, blk: BlockNo) {
        self.free.borrow_mut().push(blk);
    }
    fn append_built(&self, image: &[u8]) -> BlockNo {
        let mut pages = self.pages.borrow_mut();
        pages.push(image.to_vec().into_boxed_slice());
        pages.len() as BlockNo - 1
    }
    fn reserve(&self, count: u32) -> BlockNo {
        let first = self.nblocks();
        for _ in 0..count {
            self.append_built(&[0u8; BLOCK_SIZE]);
        }
        first
    }
    fn write_built(&self, blk: BlockNo, image: &[u8]) {
        self.pages.borrow_mut()[blk as usize].copy_from_slice(image);
    }
    fn stamp(&self) -> u64 {
        self.stamps.set(self.stamps.get() + 1);
        self.stamps.get()
    }
    fn stamp_passed(&self, stamp: u64) -> bool {
        self.oldest_scan.get().is_none_or(|oldest| oldest > stamp)
    }
    fn nblocks(&self) -> BlockNo {
        self.pages.borrow().len() as BlockNo
    }
}
