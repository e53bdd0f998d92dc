//! The page store of `jdsh_core::mih` over PostgreSQL shared buffers: content locks, relation
//! extension, the free space map, and Generic WAL for every change, so that crash recovery and
//! physical replicas replay index changes without a custom resource manager.

use jdsh_core::mih::layout::{is_free, BLOCK_SIZE};
use jdsh_core::mih::{BlockNo, PageGuard, PageStore};
use pgrx::pg_sys;

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
        unsafe { pg_sys::UnlockReleaseBuffer(self.buf) };
    }
}

impl PageGuard for PgGuard {
    fn block(&self) -> BlockNo {
        self.blk
    }
    fn page(&self) -> &[u8] {
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
        unsafe {
            let buf = self.pin(blk);
            pg_sys::LockBuffer(buf, mode as i32);
            PgGuard { buf, blk, fresh: false }
        }
    }

    fn extend(&self) -> PgGuard {
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
            let blk = unsafe { pg_sys::GetFreeIndexPage(self.rel) };
            if blk == pg_sys::InvalidBlockNumber {
                return self.extend();
            }
            // The free space map may be stale: take the page only if it is still free and
            // nobody holds it.
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
        unsafe { pg_sys::RecordFreeIndexPage(self.rel, blk) };
    }

    fn append_built(&self, image: &[u8]) -> BlockNo {
        let g = self.extend();
        unsafe {
            let page = pg_sys::BufferGetPage(g.buf);
            pg_sys::PageInit(page, BLOCK_SIZE, 0);
            let dst = std::slice::from_raw_parts_mut(page as *mut u8, BLOCK_SIZE);
            let h = jdsh_core::mih::layout::PAGE_HEADER;
            dst[h..].copy_from_slice(&image[h..]);
            dst[12..14].copy_from_slice(&image[12..14]); // pd_lower
            pg_sys::MarkBufferDirty(g.buf);
            if self.fork == pg_sys::ForkNumber::INIT_FORKNUM {
                // The init fork of an unlogged index is always logged.
                pg_sys::log_newpage_buffer(g.buf, true);
            }
        }
        g.blk
    }

    fn nblocks(&self) -> BlockNo {
        unsafe { pg_sys::RelationGetNumberOfBlocksInFork(self.rel, self.fork) }
    }
}
