//! `aminsert`: one entry per table for each new row.

use pgrx::pg_sys;

use super::{check_length, open, report, to_tid};
use crate::bitcode::BitcodeRef;

#[pgrx::pg_guard]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    _info: *mut pg_sys::IndexInfo,
) -> bool {
    // SAFETY: PostgreSQL passes one value and null flag (one column) and the new row's tid; a
    // non-null value of the column is a bitcode.
    unsafe {
        if *isnull {
            return false;
        }
        let code = BitcodeRef::from_datum(*values);
        let mih = open(index);
        check_length(&mih, code.nbits);
        mih.insert(code.bytes, to_tid(&*heap_tid)).unwrap_or_else(|e| report(e));
    }
    false
}
