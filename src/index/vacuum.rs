//! `ambulkdelete` / `amvacuumcleanup`: drop entries of dead rows, unlink emptied overflow pages
//! and hand them (and any page left free by a crash) to the free space map; choose and write the
//! tables again for an index that has grown (`jdsh_core::mih::retune`), and free what an earlier
//! such retune left once no scan can read it.

use pgrx::pg_sys;

use pgrx::{PgLogLevel, PgSqlErrorCode};

use super::{open, options, report, to_item_pointer};
use crate::fmgr::report_with_hint;

/// The statistics PostgreSQL passed, or new zeroed ones (in the current memory context).
///
/// # Safety
/// `stats` must be null or a valid `IndexBulkDeleteResult`.
unsafe fn stats_or_new(stats: *mut pg_sys::IndexBulkDeleteResult) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        // SAFETY: palloc0 returns zeroed memory of the struct's size (all-zero is valid for it).
        unsafe { pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>()) as *mut _ }
    } else {
        stats
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: `info` and `stats` (null or valid) come from VACUUM; `callback` is called with its
    // own `callback_state` and a tid that lives across the call.
    unsafe {
        let stats = stats_or_new(stats);
        let mih = open((*info).index);
        let Some(callback) = callback else { return stats };
        let mut ip = pg_sys::ItemPointerData::default();
        let mut calls = 0u64;
        let v = mih
            .bulk_delete(|tid| {
                calls += 1;
                if calls.is_multiple_of(65536) {
                    pgrx::check_for_interrupts!();
                }
                to_item_pointer(tid, &mut ip);
                callback(&mut ip, callback_state)
            })
            .unwrap_or_else(|e| report(e));
        (*stats).tuples_removed += v.removed as f64;
        (*stats).num_index_tuples = v.remaining as f64;
        (*stats).pages_deleted += v.pages_freed as u32;
        stats
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: `info` and `stats` (null or valid) come from VACUUM; its index is open.
    unsafe {
        if (*info).analyze_only {
            return stats;
        }
        let index = (*info).index;
        let had_bulkdelete = !stats.is_null();
        let stats = stats_or_new(stats);
        if !had_bulkdelete {
            // Nothing was deleted: the row count is the heap's.
            (*stats).num_index_tuples = (*info).num_heap_tuples;
            (*stats).estimated_count = (*info).estimated_count;
        }
        let mut mih = open(index);
        let built = mih.meta.built_rows;
        let level = (*info).message_level;
        // What an earlier retune left: blocks it reserved and never switched to (an error or a
        // crash), then tables it replaced, once no scan can still read them. Before the search
        // for free blocks below, so that the blocks freed are found, and none of a retune's
        // reserved blocks is handed out while it still names them.
        let reserved = mih.free_reserved().unwrap_or_else(|e| report(e));
        if reserved > 0 {
            pgrx::ereport!(
                PgLogLevel::from(level),
                PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
                format!("mih: freed {reserved} blocks of a retune cut short")
            );
        }
        let retired = mih.free_retired().unwrap_or_else(|e| report(e));
        let free = mih.free_blocks();
        for &blk in &free {
            pg_sys::RecordFreeIndexPage(index, blk);
        }
        pg_sys::IndexFreeSpaceMapVacuum(index);
        (*stats).pages_free = free.len() as u32;
        (*stats).pages_deleted += retired as u32;
        // An index that has grown to twice the rows its tables were chosen for gets new ones.
        // VACUUM's count, or the pages' when larger: a VACUUM that skips all-visible pages
        // estimates the heap's rows from pg_class, stale after a crash (20k for 120k seen).
        let rows = ((*stats).num_index_tuples.max(0.0) as u64).max(mih.estimated_rows());
        if mih.outgrown(rows) {
            let (setting, allowed) = vacuum_memory();
            let need = mih.retune_bytes(rows);
            if need > allowed {
                // Held in memory, not spilled: a VACUUM (autovacuum above all) keeps to the
                // memory it is given, and says what would let it retune.
                let name = std::ffi::CStr::from_ptr(pg_sys::get_rel_name((*index).rd_id)).to_string_lossy();
                let mb = |bytes: u64| bytes.div_ceil(1 << 20);
                report_with_hint(
                    PgLogLevel::from(skip_level(level)),
                    PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
                    format!(
                        "mih: index \"{name}\" holds about {rows} rows, its tables were chosen for {built}; choosing them again needs about {} MB, more than {setting} ({} MB)",
                        mb(need),
                        mb(allowed)
                    ),
                    format!("Raise {setting} for a VACUUM of this table, or REINDEX the index."),
                );
            } else {
                let (forced_m, _) = options::of(index);
                let done = mih
                    .retune(forced_m, |_| {
                        pgrx::check_for_interrupts!();
                    })
                    .unwrap_or_else(|e| report(e));
                pgrx::ereport!(
                    PgLogLevel::from(level),
                    PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
                    format!(
                        "mih: tables chosen again for {} rows (tuned for {} before): {} substrings (were {}), {} blocks written, {} rows added while writing",
                        done.rows, built, done.m, done.m_before, done.pages, done.caught_up
                    )
                );
            }
        }
        (*stats).num_pages = pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        stats
    }
}

extern "C" {
    /// PostgreSQL's `autovacuum_work_mem` (kB, -1: `maintenance_work_mem`), which pgrx does not
    /// bind (postmaster/autovacuum.h).
    static autovacuum_work_mem: std::ffi::c_int;
}

/// Whether this backend is an autovacuum worker.
fn in_autovacuum() -> bool {
    // SAFETY: reads a backend-local variable.
    unsafe { pg_sys::MyBackendType == pg_sys::BackendType::B_AUTOVAC_WORKER }
}

/// The memory setting a VACUUM keeps to, and its value in bytes: `autovacuum_work_mem` in an
/// autovacuum worker when set, else `maintenance_work_mem`.
fn vacuum_memory() -> (&'static str, u64) {
    // SAFETY: PostgreSQL's own GUC variables (kB), read in the backend's one thread.
    let (setting, kb) = unsafe {
        if in_autovacuum() && autovacuum_work_mem >= 0 {
            ("autovacuum_work_mem", autovacuum_work_mem)
        } else {
            ("maintenance_work_mem", pg_sys::maintenance_work_mem)
        }
    };
    (setting, (kb.max(0) as u64).saturating_mul(1024))
}

/// The level of the message that a retune was skipped for memory: NOTICE for a VACUUM someone
/// ran (unless VERBOSE asked for INFO), LOG in autovacuum, whose own messages are DEBUG2, so
/// that the server log shows why an index stays slow.
fn skip_level(level: i32) -> i32 {
    if in_autovacuum() {
        pg_sys::LOG as i32
    } else {
        match level {
            l if l >= pg_sys::INFO as i32 => l,
            _ => pg_sys::NOTICE as i32,
        }
    }
}
