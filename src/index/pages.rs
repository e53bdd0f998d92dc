//! The page store of `jdsh_core::mih` over PostgreSQL shared buffers: content locks, relation
//! extension, the free space map, and Generic WAL for every change, so that crash recovery and
//! physical replicas replay index changes without a custom resource manager.
//!
//! Safety: a `PgStore` holds the relation of an AM callback, open (and locked) by the caller for
//! the whole call, and every store and guard lives within that call. A `PgGuard` owns one pin and
//! one content lock of its buffer from its creation to its drop.

use jdsh_core::mih::layout::{self, is_free, BLOCK_SIZE, PAGE_HEADER, PD_LOWER, PD_UPPER};
use jdsh_core::mih::{BlockNo, PageGuard, PageStore};
use pgrx::pg_sys;
use std::cell::RefCell;

// The core's page geometry is PostgreSQL's: `BLOCK_SIZE`-byte pages whose data starts after the
// page header (no line pointers), and `pd_lower`/`pd_upper` where the core writes them.
const _: () = assert!(BLOCK_SIZE == pg_sys::BLCKSZ as usize);
const _: () = assert!(PAGE_HEADER == std::mem::offset_of!(pg_sys::PageHeaderData, pd_linp));
const _: () = assert!(PD_LOWER == std::mem::offset_of!(pg_sys::PageHeaderData, pd_lower));
const _: () = assert!(PD_UPPER == std::mem::offset_of!(pg_sys::PageHeaderData, pd_upper));
const _: () = assert!(std::mem::size_of::<pg_sys::LocationIndex>() == 2);

#[derive(Clone, Copy)]
pub struct PgStore {
    rel: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
}

/// A pinned and locked buffer; unlocked and unpinned on drop (also when an ERROR unwinds).
pub struct PgGuard {
    buf: pg_sys::Buffer,
    blk: BlockNo,
    /// Not yet initialised: logged as a full image by the first `modify`.
    fresh: bool,
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        // SAFETY: the guard owns one pin and one content lock of `buf`, released once, here.
        unsafe { pg_sys::UnlockReleaseBuffer(self.buf) };
    }
}

impl PageGuard for PgGuard {
    fn block(&self) -> BlockNo {
        self.blk
    }
    fn page(&self) -> &[u8] {
        // SAFETY: the buffer is pinned (so its page stays in place) and content-locked (so no
        // other backend writes it) while the guard lives; a page is BLCKSZ = BLOCK_SIZE bytes.
        // This backend changes it only in `modify`/`append_built`, which hold the guard mutably.
        unsafe { std::slice::from_raw_parts(pg_sys::BufferGetPage(self.buf) as *const u8, BLOCK_SIZE) }
    }
}

impl PgStore {
    pub fn new(rel: pg_sys::Relation) -> PgStore {
        PgStore { rel, fork: pg_sys::ForkNumber::MAIN_FORKNUM }
    }

    /// The init fork of an unlogged index (what `ambuildempty` writes).
    pub fn init_fork(rel: pg_sys::Relation) -> PgStore {
        PgStore { rel, fork: pg_sys::ForkNumber::INIT_FORKNUM }
    }

    /// Pins existing block `blk` without locking it, through the buffer this backend last found
    /// it in when that still holds it (see [`RecentBuffers`]).
    fn pin_existing(&self, blk: BlockNo) -> pg_sys::Buffer {
        let Some(key) = self.recent_key() else {
            return self.pin(blk);
        };
        // SAFETY: `rel` is open (module doc); `recent` is a shared buffer number that a
        // ReadBuffer of this relation file returned in this backend (`recent_key` keeps temporary
        // relations, whose buffers are local, out), and ReadRecentBuffer checks the buffer's
        // tag before it pins it.
        if let Some(recent) = RECENT.with_borrow(|r| r.get(key, blk)) {
            if unsafe { pg_sys::ReadRecentBuffer(file_locator(self.rel), self.fork, blk, recent) } {
                return recent;
            }
        }
        let buf = self.pin(blk);
        RECENT.with_borrow_mut(|r| r.set(key, blk, buf));
        buf
    }

    /// The relation's key in [`RECENT`]: its main fork, unless it is temporary.
    fn recent_key(&self) -> Option<(pg_sys::Oid, u32)> {
        // SAFETY: `rel` is open (module doc), so `rd_rel` is valid.
        let temp = unsafe {
            (*(*self.rel).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_TEMP as std::ffi::c_char
        };
        if temp || self.fork != pg_sys::ForkNumber::MAIN_FORKNUM {
            return None;
        }
        // SAFETY: as above.
        Some((unsafe { (*self.rel).rd_id }, file_number(self.rel)))
    }

    /// Pins block `blk` (`InvalidBlockNumber`: a new block at the end) without locking it.
    fn pin(&self, blk: BlockNo) -> pg_sys::Buffer {
        // SAFETY: `rel` is open (module doc). A block past the end raises an ERROR, no UB.
        unsafe {
            pg_sys::ReadBufferExtended(
                self.rel,
                self.fork,
                blk,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            )
        }
    }

    fn lock(&self, blk: BlockNo, mode: u32) -> PgGuard {
        // SAFETY: the buffer was just pinned by us; the guard takes over pin and lock.
        unsafe {
            let buf = self.pin_existing(blk);
            pg_sys::LockBuffer(buf, mode as i32);
            PgGuard { buf, blk, fresh: false }
        }
    }

    fn extend(&self) -> PgGuard {
        // SAFETY: `rel` is open; the new buffer is pinned and locked before the guard owns it.
        unsafe {
            // Two backends must not extend at once (PostgreSQL 15's P_NEW protocol).
            pg_sys::LockRelationForExtension(self.rel, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
            let buf = self.pin(pg_sys::InvalidBlockNumber);
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
            PgGuard { buf, blk: pg_sys::BufferGetBlockNumber(buf), fresh: true }
        }
    }

    /// True for permanent relations: their changes go to WAL.
    pub fn needs_wal(&self) -> bool {
        // SAFETY: `rel` is open, so its `rd_rel` (pg_class row) is valid.
        unsafe {
            (*(*self.rel).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char
        }
    }
}

impl PageStore for PgStore {
    type Guard = PgGuard;

    fn read(&self, blk: BlockNo) -> PgGuard {
        self.lock(blk, pg_sys::BUFFER_LOCK_SHARE)
    }

    fn write(&self, blk: BlockNo) -> PgGuard {
        let mut g = self.lock(blk, pg_sys::BUFFER_LOCK_EXCLUSIVE);
        // A block never initialised (a retune's reserved block, freed after a crash) is formatted
        // by the first `modify`, as an allocated one is: a page header of zeros is no valid page.
        // SAFETY: the guard holds the buffer pinned and locked.
        g.fresh = unsafe { pg_sys::PageIsNew(pg_sys::BufferGetPage(g.buf)) };
        g
    }

    fn allocate(&self) -> PgGuard {
        loop {
            // SAFETY: `rel` is open (module doc).
            let blk = unsafe { pg_sys::GetFreeIndexPage(self.rel) };
            if blk == pg_sys::InvalidBlockNumber {
                return self.extend();
            }
            // The free space map may be stale: take the page only if it is still free and
            // nobody holds it.
            // SAFETY: the pin is ours: it becomes the guard's with the lock, or is released.
            unsafe {
                let buf = self.pin(blk);
                if pg_sys::ConditionalLockBuffer(buf) {
                    let g = PgGuard { buf, blk, fresh: true };
                    if pgrx::pg_sys::PageIsNew(pg_sys::BufferGetPage(buf)) || is_free(g.page()) {
                        return g;
                    }
                    drop(g);
                } else {
                    pg_sys::ReleaseBuffer(buf);
                }
            }
        }
    }

    fn modify<R>(&self, pages: &mut [&mut PgGuard], f: impl FnOnce(&mut [&mut [u8]]) -> R) -> R {
        // SAFETY: every guard passed here comes from `write`, `allocate` or `extend`, so its
        // buffer is exclusively locked, as GenericXLogRegisterBuffer requires; the algorithms
        // change at most three pages at once (MAX_GENERIC_XLOG_PAGES is 4). Each registered image
        // is a BLCKSZ copy owned by the Generic WAL state until GenericXLogFinish, after `f`,
        // which the slices cannot outlive. A fresh page is formatted before anything reads it.
        unsafe {
            let state = pg_sys::GenericXLogStart(self.rel);
            let mut slices: Vec<&mut [u8]> = Vec::with_capacity(pages.len());
            for g in pages.iter_mut() {
                let flags = if g.fresh { pg_sys::GENERIC_XLOG_FULL_IMAGE as i32 } else { 0 };
                let page = pg_sys::GenericXLogRegisterBuffer(state, g.buf, flags);
                if g.fresh {
                    pg_sys::PageInit(page, BLOCK_SIZE, 0);
                    g.fresh = false;
                }
                slices.push(std::slice::from_raw_parts_mut(page as *mut u8, BLOCK_SIZE));
            }
            let r = f(&mut slices);
            pg_sys::GenericXLogFinish(state);
            r
        }
    }

    fn recycle(&self, blk: BlockNo) {
        // SAFETY: `rel` is open (module doc); `blk` is one of its blocks.
        unsafe { pg_sys::RecordFreeIndexPage(self.rel, blk) };
    }

    fn append_built(&self, image: &[u8]) -> BlockNo {
        let g = self.extend();
        // SAFETY: `extend` returns the new block pinned and exclusively locked, so this backend
        // alone writes its BLOCK_SIZE bytes; no slice of it is alive elsewhere (the guard is ours).
        unsafe {
            let page = pg_sys::BufferGetPage(g.buf);
            pg_sys::PageInit(page, BLOCK_SIZE, 0);
            let dst = std::slice::from_raw_parts_mut(page as *mut u8, BLOCK_SIZE);
            layout::copy_contents(dst, image);
            pg_sys::MarkBufferDirty(g.buf);
            if self.fork == pg_sys::ForkNumber::INIT_FORKNUM {
                // The init fork of an unlogged index is always logged.
                pg_sys::log_newpage_buffer(g.buf, true);
            }
        }
        g.blk
    }

    fn reserve(&self, count: u32) -> BlockNo {
        // SAFETY: `rel` is open (module doc). While this backend holds the extension lock, no
        // other extends the relation, so the new blocks are consecutive (checked).
        unsafe {
            pg_sys::LockRelationForExtension(self.rel, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
            let first = self.nblocks();
            for i in 0..count {
                let buf = self.pin(pg_sys::InvalidBlockNumber);
                let blk = pg_sys::BufferGetBlockNumber(buf);
                pg_sys::ReleaseBuffer(buf);
                if blk != first + i {
                    pgrx::error!("mih: extending the index gave block {blk}, not {}", first + i);
                }
            }
            pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
            first
        }
    }

    fn write_built(&self, blk: BlockNo, image: &[u8]) {
        let g = self.lock(blk, pg_sys::BUFFER_LOCK_EXCLUSIVE);
        // SAFETY: the guard holds the buffer pinned and exclusively locked: this backend alone
        // writes its BLOCK_SIZE bytes, and no slice of it is alive elsewhere.
        unsafe {
            let page = pg_sys::BufferGetPage(g.buf);
            pg_sys::PageInit(page, BLOCK_SIZE, 0);
            layout::copy_contents(std::slice::from_raw_parts_mut(page as *mut u8, BLOCK_SIZE), image);
            pg_sys::MarkBufferDirty(g.buf);
        }
    }

    fn log_built(&self, first: BlockNo, count: u32) {
        if self.needs_wal() {
            // SAFETY: `rel` is open; the blocks exist (reserved) and hold initialised pages.
            unsafe { pg_sys::log_newpage_range(self.rel, self.fork, first, first + count, true) };
        }
    }

    /// The next transaction id: every snapshot taken before now has its xmin at or before it.
    fn stamp(&self) -> u64 {
        // SAFETY: reads shared state under its lock.
        unsafe { pg_sys::ReadNextFullTransactionId().value }
    }

    /// No snapshot (of any backend, or of a standby with hot_standby_feedback) is as old as
    /// `stamp`: nbtree's rule for recycling deleted pages (BTPageIsRecyclable).
    fn stamp_passed(&self, stamp: u64) -> bool {
        // SAFETY: a null relation asks about the shared horizon.
        unsafe {
            pg_sys::GlobalVisCheckRemovableFullXid(
                std::ptr::null_mut(),
                pg_sys::FullTransactionId { value: stamp },
            )
        }
    }

    fn nblocks(&self) -> BlockNo {
        // SAFETY: `rel` is open (module doc).
        unsafe { pg_sys::RelationGetNumberOfBlocksInFork(self.rel, self.fork) }
    }

    /// Asks the CPU for the buffer header and the first `bytes` of the buffer this backend last
    /// found `blk` in, if any, without pinning it: a hint, harmless if the buffer holds another
    /// page by now. The read that follows pins it through [`RecentBuffers`] too.
    fn prefetch(&self, blk: BlockNo, ranges: &[std::ops::Range<usize>]) {
        let Some(key) = self.recent_key() else {
            return;
        };
        let Some(buf) = RECENT.with_borrow(|r| r.get(key, blk)) else {
            return;
        };
        // SAFETY: `buf` is a shared buffer number (1..=NBuffers, see `RecentBuffers::set`), so
        // its descriptor and page lie inside the buffer pool's arrays; nothing is dereferenced,
        // the addresses only go to prefetch instructions.
        unsafe {
            prefetch_line(pg_sys::BufferDescriptors.add(buf as usize - 1) as *const u8);
            let page = pg_sys::BufferGetPage(buf) as *const u8;
            for r in ranges {
                for at in (r.start..r.end.min(BLOCK_SIZE)).step_by(64) {
                    prefetch_line(page.add(at));
                }
            }
        }
    }
}

/// Asks the CPU for the cache line at `at` (a hint: it never faults).
#[inline]
fn prefetch_line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints; it reads nothing the program sees and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// The shared buffer each block of an index was last found in by this backend, so that reading
/// the block again skips the shared buffer table: `ReadRecentBuffer` checks the buffer's tag and
/// pins it, or says no and the block is looked up as usual. A scan probes hundreds of buckets,
/// each one page, and the table lookup (hash, partition lock, a cache miss in a large pool) was
/// a third of a probe's cost; a whole-table read looks up thousands of pages. Such a pin does not
/// raise the buffer's usage count; a page evicted for that is found by a normal lookup again.
struct RecentBuffers {
    /// (index oid, relation file number): the buffer of each block, 0 where none is known. A new
    /// file (REINDEX, TRUNCATE) makes a new key.
    indexes: Vec<((pg_sys::Oid, u32), Vec<pg_sys::Buffer>)>,
}

/// Indexes whose buffers a backend remembers (the least recently added is forgotten).
const RECENT_INDEXES: usize = 8;
/// Blocks per index whose buffers a backend remembers (4 bytes each: 1 GiB of index, 512 KiB).
const RECENT_BLOCKS: u32 = 1 << 17;

thread_local! {
    static RECENT: RefCell<RecentBuffers> = const { RefCell::new(RecentBuffers { indexes: Vec::new() }) };
}

impl RecentBuffers {
    /// The buffer `blk` of the index file `key` was last found in, if one is known.
    fn get(&self, key: (pg_sys::Oid, u32), blk: BlockNo) -> Option<pg_sys::Buffer> {
        let (_, bufs) = self.indexes.iter().find(|(k, _)| *k == key)?;
        bufs.get(blk as usize).copied().filter(|&b| b != pg_sys::InvalidBuffer as pg_sys::Buffer)
    }

    fn set(&mut self, key: (pg_sys::Oid, u32), blk: BlockNo, buf: pg_sys::Buffer) {
        if blk >= RECENT_BLOCKS || buf <= 0 {
            return;
        }
        let at = match self.indexes.iter().position(|(k, _)| k.0 == key.0) {
            Some(at) => {
                if self.indexes[at].0 != key {
                    self.indexes[at] = (key, Vec::new()); // a new file of the same index
                }
                at
            }
            None => {
                if self.indexes.len() == RECENT_INDEXES {
                    self.indexes.remove(0);
                }
                self.indexes.push((key, Vec::new()));
                self.indexes.len() - 1
            }
        };
        let bufs = &mut self.indexes[at].1;
        if bufs.len() <= blk as usize {
            bufs.resize(blk as usize + 1, pg_sys::InvalidBuffer as pg_sys::Buffer);
        }
        bufs[blk as usize] = buf;
    }
}

/// The relation's physical file, as `ReadRecentBuffer` takes it.
#[cfg(feature = "pg15")]
fn file_locator(rel: pg_sys::Relation) -> pg_sys::RelFileNode {
    // SAFETY: the caller's relation is open (module doc).
    unsafe { (*rel).rd_node }
}
#[cfg(not(feature = "pg15"))]
fn file_locator(rel: pg_sys::Relation) -> pg_sys::RelFileLocator {
    // SAFETY: the caller's relation is open (module doc).
    unsafe { (*rel).rd_locator }
}

#[cfg(feature = "pg15")]
fn file_number(rel: pg_sys::Relation) -> u32 {
    file_locator(rel).relNode.into()
}
#[cfg(not(feature = "pg15"))]
fn file_number(rel: pg_sys::Relation) -> u32 {
    file_locator(rel).relNumber.into()
}
