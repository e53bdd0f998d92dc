//! `aminsert`: one entry per table for each new row.

use pgrx::pg_sys;

use super::{open, report, to_tid};
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
    unsafe {
        if *isnull {
            return false;
        }
        let code = BitcodeRef::from_datum(*values);
        let mih = open(index);
        let cb = mih.params().code_bytes();
        if code.nbits != mih.params().nbits {
            report(jdsh_core::mih::MihError::LengthMismatch {
                expected: mih.params().nbits,
                got: code.nbits,
            });
        }
        mih.insert(&code.bytes[..cb], to_tid(&*heap_tid)).unwrap_or_else(|e| report(e));
    }
    false
}
