//! Reloptions of mih indexes: `WITH (substrings = m, fillfactor = f)`.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU32, Ordering};

use pgrx::pg_sys;

static KIND: AtomicU32 = AtomicU32::new(0);

/// `rd_options` of a mih index.
#[repr(C)]
pub struct MihOptions {
    vl_len_: i32,
    /// 0: chosen from the table size (m = b / log2 n).
    pub substrings: i32,
    pub fillfactor: i32,
}

pub const DEFAULT_FILLFACTOR: i32 = 90;

/// Registers the reloptions; called from `_PG_init`.
pub fn init() {
    // SAFETY: called once from _PG_init, while the library loads; the names and descriptions
    // are static C strings.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        KIND.store(kind, Ordering::Relaxed);
        pg_sys::add_int_reloption(
            kind,
            c"substrings".as_ptr(),
            c"Number of substrings (hash tables); 0 chooses code length / log2(rows)".as_ptr(),
            0,
            0,
            jdsh_core::mih::layout::MAX_SUBSTRINGS as i32,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        pg_sys::add_int_reloption(
            kind,
            c"fillfactor".as_ptr(),
            c"Percentage of each bucket page filled by a build".as_ptr(),
            DEFAULT_FILLFACTOR,
            10,
            100,
            pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE,
        );
    }
}

fn elt(name: &'static CStr, offset: usize) -> pg_sys::relopt_parse_elt {
    pg_sys::relopt_parse_elt {
        optname: name.as_ptr(),
        opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
        offset: offset as i32,
        // PostgreSQL 18: the offset of a bool set when the option is given (0: none kept).
        #[cfg(feature = "pg18")]
        isset_offset: 0,
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(reloptions: pg_sys::Datum, validate: bool) -> *mut pg_sys::bytea {
    let table = [
        elt(c"substrings", std::mem::offset_of!(MihOptions, substrings)),
        elt(c"fillfactor", std::mem::offset_of!(MihOptions, fillfactor)),
    ];
    // SAFETY: the parse table describes `MihOptions` (repr(C), offsets by offset_of!) and lives
    // across the call; KIND was registered by `init`.
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            KIND.load(Ordering::Relaxed),
            std::mem::size_of::<MihOptions>(),
            table.as_ptr(),
            table.len() as i32,
        ) as *mut pg_sys::bytea
    }
}

/// (substrings, fillfactor) of an index; defaults when it has no options.
pub fn of(index: pg_sys::Relation) -> (Option<u32>, u8) {
    // SAFETY: `index` is an open mih index; its non-null `rd_options` was built by `amoptions`,
    // so it is a `MihOptions`.
    unsafe {
        let opts = (*index).rd_options as *const MihOptions;
        if opts.is_null() {
            return (None, DEFAULT_FILLFACTOR as u8);
        }
        let m = (*opts).substrings;
        ((m > 0).then_some(m as u32), (*opts).fillfactor as u8)
    }
}
