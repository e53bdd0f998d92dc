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
            let buf = self.pin(blk);
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
        self.lock(blk, pg_sys::BUFFER_LOCK_EXCLUSIVE)
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
        // change at most two pages at once (MAX_GENERIC_XLOG_PAGES is 4). Each registered image
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

    fn nblocks(&self) -> BlockNo {
        // SAFETY: `rel` is open (module doc).
        unsafe { pg_sys::RelationGetNumberOfBlocksInFork(self.rel, self.fork) }
    }
}
