//! The `mih` index access method: PostgreSQL glue around `jdsh_core::mih`, which holds the
//! algorithm (page formats, build, insert, probing, vacuum, check) and is tested in memory.
//! One file per phase, as pgvector splits HNSW: `handler` (the routine table), `options`
//! (reloptions), `pages` (the page store over shared buffers and Generic WAL), `build`,
//! `insert`, `scan`, `vacuum`, `cost`, `check`. Each phase's algorithm is in the file of the same
//! name in `core/src/mih/` (`search` for `scan`; `store` holds the trait that `pages` implements).

mod build;
mod check;
mod cost;
mod handler;
mod info;
mod insert;
pub mod options;
mod pages;
mod scan;
mod vacuum;

use jdsh_core::mih::{Mih, MihError};
use pgrx::{pg_sys, PgSqlErrorCode};

use crate::fmgr::{raise, raise_with_hint};
use pages::PgStore;

/// Strategy numbers of `bitcode_hamming_ops`.
pub const STRATEGY_DISTANCE: u16 = 1;
pub const STRATEGY_WITHIN: u16 = 2;

/// Raises the ERROR for an index failure.
pub fn report(err: MihError) -> ! {
    match err {
        MihError::LengthMismatch { .. } => raise_with_hint(
            PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
            err.to_string(),
            "A mih index holds codes of one length; query it with codes of that length.",
        ),
        MihError::BadSubstrings { .. } | MihError::BadLength { .. } => {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, err.to_string())
        }
        MihError::Corrupt(_) => {
            raise_with_hint(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, err.to_string(), "REINDEX the index.")
        }
        // As a standby cancels a query whose rows the primary's VACUUM removed.
        MihError::Retuned => raise_with_hint(
            PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
            format!("canceling the mih index scan: {err}"),
            "Run the query again. On a standby, hot_standby_feedback = on keeps a VACUUM of the primary from freeing what its scans read.",
        ),
    }
}

/// Raises 22026 unless a code (query, ball centre or new row) has the index's length.
pub fn check_length(mih: &Mih<PgStore>, nbits: u32) {
    let expected = mih.params().nbits;
    if nbits != expected {
        report(MihError::LengthMismatch { expected, got: nbits });
    }
}

/// Opens the index through its meta page.
pub fn open(index: pg_sys::Relation) -> Mih<PgStore> {
    Mih::open(PgStore::new(index)).unwrap_or_else(|e| report(e))
}

/// Heap tid <-> index tid.
pub fn to_tid(ip: &pg_sys::ItemPointerData) -> jdsh_core::mih::Tid {
    let (blk, off) = pgrx::itemptr::item_pointer_get_both(*ip);
    jdsh_core::mih::Tid::new(blk, off)
}

pub fn to_item_pointer(t: jdsh_core::mih::Tid, ip: &mut pg_sys::ItemPointerData) {
    pgrx::itemptr::item_pointer_set_all(ip, t.block, t.offset);
}
