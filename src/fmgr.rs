//! Thin helpers for PostgreSQL's version-1 calling convention.
//!
//! The bitcode functions are plain `fmgr` functions (declared by hand in `sql/bitcode.sql`) rather
//! than `#[pg_extern]` ones: the distance operator runs once per row of a scan, and reading the
//! arguments straight from `fcinfo` keeps that path to a detoast check and a popcount.

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

/// Defines `extern "C-unwind" fn $name(fcinfo) -> Datum` plus its `pg_finfo_$name` record, with
/// the guard of `#[pg_guard]` so that a Rust panic or a PostgreSQL ERROR unwinds safely.
macro_rules! pg_v1 {
    ($(#[$meta:meta])* fn $name:ident($fcinfo:ident) $body:block) => {
        paste::paste! {
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub extern "C" fn [<pg_finfo_ $name>]() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                const V1: ::pgrx::pg_sys::Pg_finfo_record =
                    ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }
        }
        $(#[$meta])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name($fcinfo: ::pgrx::pg_sys::FunctionCallInfo) -> ::pgrx::pg_sys::Datum {
            // What #[pg_guard] expands to: Rust panics become ERRORs, ERRORs unwind through Rust.
            let body = move || $body;
            unsafe { ::pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(body) }
        }
    };
}

/// The raw datum of argument `i`. STRICT functions never see NULLs, so no null check here.
///
/// # Safety
/// `fcinfo` must be the call information PostgreSQL passed to a V1 function that was called
/// with more than `i` arguments (`i < nargs`): `args` is a flexible array of `nargs` entries.
/// A caller that reads the datum as a pointer must also know the argument is not NULL (the
/// function is declared STRICT), and of the type it reads it as (the SQL declaration).
#[inline(always)]
pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> pg_sys::Datum {
    // SAFETY: `i < nargs` (above), so the first `i + 1` entries exist.
    unsafe { (*fcinfo).args.as_slice(i + 1)[i].value }
}

/// Argument `i` as an `int4`.
///
/// # Safety
/// As for [`arg`] (`i < nargs`); argument `i` must be declared `integer` (a by-value datum).
#[inline(always)]
pub unsafe fn arg_i32(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> i32 {
    // SAFETY: the caller's promise above.
    unsafe { arg(fcinfo, i).value() as i32 }
}

/// Raises an ERROR with the given SQLSTATE; never returns.
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>) -> ! {
    pgrx::ereport!(ERROR, code, message.into());
}

/// The value of a required argument of a function that is not STRICT (because other arguments
/// default to NULL): a NULL is a 22004 error naming the argument, not pgrx's internal XX000.
pub fn required<T>(value: Option<T>, argument: &str) -> T {
    value.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("argument \"{argument}\" must not be NULL"),
        )
    })
}

/// Raises an ERROR with a hint telling the user what to do.
pub fn raise_with_hint(code: PgSqlErrorCode, message: impl Into<String>, hint: impl Into<String>) -> ! {
    report_with_hint(pgrx::PgLogLevel::ERROR, code, message, hint);
    unreachable!()
}

/// Reports a message at `level` (an ERROR does not return) with a hint telling the user what
/// to do.
pub fn report_with_hint(
    level: pgrx::PgLogLevel,
    code: PgSqlErrorCode,
    message: impl Into<String>,
    hint: impl Into<String>,
) {
    pgrx::pg_sys::panic::ErrorReport::new(code, message.into(), pgrx::function_name!())
        .set_hint(hint)
        .report(level);
}

/// The elements of a one-dimensional array without NULLs (`real[]` or `double precision[]`), as a
/// slice of `T`; `what` names the operation in the errors ("cannot binarize a 2-dimensional
/// array").
///
/// # Safety
/// `datum` must be a non-null array datum whose elements are `T`.
pub unsafe fn float_array<'a, T>(datum: pg_sys::Datum, what: &str) -> &'a [T] {
    unsafe {
        let v = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
        let mut raw = pgrx::array::RawArray::from_ptr(std::ptr::NonNull::new_unchecked(v.cast()));
        if raw.dims().len() > 1 {
            raise(
                PgSqlErrorCode::ERRCODE_ARRAY_ELEMENT_ERROR,
                format!("cannot {what} a {}-dimensional array; pass one vector", raw.dims().len()),
            );
        }
        if raw.any_nulls() {
            raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("cannot {what} an array containing NULL"),
            );
        }
        let data = raw.data::<T>();
        if data.is_empty() {
            return &[];
        }
        &*data.as_ptr()
    }
}
