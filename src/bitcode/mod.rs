//! The `bitcode` type: a varlena holding 1..=4096 bits.
//!
//! On-disk layout (after the 4-byte varlena header): `nbits: u32` (native endian), then the code
//! bytes in MSB-first bit order, zero-padded to whole 64-bit words (see `jdsh_core::code`).
//! `STORAGE = plain`: codes are small and incompressible, so they never get a short header,
//! compression or TOAST, and reading one is a pointer cast. `ALIGNMENT = int4`: the kernel uses
//! unaligned loads, so double alignment would only waste padding in every row.
//!
//! Files: `io` (text and binary I/O, type modifiers), `ops` (operators, comparison, hashing),
//! `casts`, and `ball`: the `bitball` type and the `<@`/`@>` operators of the mih index's radius
//! search. `ball`'s SQL lives in `sql/mih.sql` with the access method that uses it, not in
//! `sql/bitcode.sql`; its Rust stays here because it is a data type built on [`BitcodeRef`]
//! and the helpers of this module.
//!
//! Safety: every function defined with `pg_v1!` in these files is declared `STRICT` in SQL
//! (`sql/bitcode.sql`, `sql/mih.sql`) with the argument types that its `arg` calls read, so each
//! `unsafe { BitcodeRef::arg(fcinfo, i) }` or `unsafe { arg(fcinfo, i) }` meets the conditions of
//! [`BitcodeRef::arg`] and [`crate::fmgr::arg`] by that declaration.

mod ball;
mod casts;
mod io;
mod ops;

use jdsh_core::code::{self, CodeError};
use jdsh_core::MAX_BITS;
use pgrx::{pg_sys, PgSqlErrorCode};

use crate::fmgr::raise;

const HEADER: usize = pg_sys::VARHDRSZ + 4;

/// A borrowed, detoasted bitcode datum.
#[derive(Clone, Copy)]
pub struct BitcodeRef<'a> {
    pub nbits: u32,
    pub bytes: &'a [u8],
}

impl<'a> BitcodeRef<'a> {
    /// # Safety
    /// `datum` must be a non-null `bitcode` datum that lives as long as `'a`.
    #[inline]
    pub unsafe fn from_datum(datum: pg_sys::Datum) -> BitcodeRef<'a> {
        // SAFETY: the caller's promise above; the bit count and the varlena length are checked
        // against each other before the code bytes are sliced.
        unsafe {
            let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
            // Plain storage: values read from tables are already flat with a 4-byte header, so the
            // detoast call (which copies) is only for values that arrived some other way.
            let v = if pgrx::varlena::varatt_is_4b_u(raw) { raw } else { pg_sys::pg_detoast_datum(raw) };
            let base = v as *const u8;
            let nbits = std::ptr::read_unaligned(base.add(pg_sys::VARHDRSZ) as *const u32);
            let len = pgrx::varlena::varsize_4b(v);
            let expected = HEADER + code::storage_bytes(nbits);
            if !(1..=MAX_BITS).contains(&nbits) || len != expected {
                raise(
                    PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                    format!("corrupt bitcode value: {nbits} bits in {len} bytes"),
                );
            }
            BitcodeRef { nbits, bytes: std::slice::from_raw_parts(base.add(HEADER), len - HEADER) }
        }
    }

    /// Argument `i` of a V1 function.
    ///
    /// # Safety
    /// As for [`crate::fmgr::arg`]: `fcinfo` is the call's information with `i < nargs`; and
    /// argument `i` must be a non-null `bitcode` (the function is STRICT and its SQL declaration
    /// says `bitcode` there), which lives for the call (`'a` no longer than the call).
    #[inline]
    pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> BitcodeRef<'a> {
        // SAFETY: the caller's promise above is `from_datum`'s.
        unsafe { BitcodeRef::from_datum(crate::fmgr::arg(fcinfo, i)) }
    }

    /// Bytes that carry bits (what `bit` and `bytea` hold).
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[..code::payload_bytes(self.nbits)]
    }

    /// Both codes must have the same length for distance and bitwise operators.
    #[inline]
    pub fn same_length(&self, other: &BitcodeRef) {
        if self.nbits != other.nbits {
            report(CodeError::LengthMismatch { left: self.nbits, right: other.nbits });
        }
    }
}

/// A varlena datum allocated in the current memory context: a 4-byte header, then `parts` back
/// to back (what `bitcode`, `bitball` and `bit`/`varbit` values are made of).
pub(crate) fn varlena_datum(parts: &[&[u8]]) -> pg_sys::Datum {
    let len = pg_sys::VARHDRSZ + parts.iter().map(|p| p.len()).sum::<usize>();
    // SAFETY: palloc returns `len` writable bytes (or raises an ERROR); the header and the parts
    // fill exactly those `len` bytes.
    unsafe {
        let p = pg_sys::palloc(len) as *mut u8;
        pgrx::varlena::set_varsize_4b(p as *mut pg_sys::varlena, len as i32);
        let mut at = pg_sys::VARHDRSZ;
        for part in parts {
            std::ptr::copy_nonoverlapping(part.as_ptr(), p.add(at), part.len());
            at += part.len();
        }
        pg_sys::Datum::from(p)
    }
}

/// Allocates a bitcode datum in the current memory context. `bytes` must be word-padded with
/// zero padding (as every `jdsh_core` constructor makes them).
pub fn make(nbits: u32, bytes: &[u8]) -> pg_sys::Datum {
    debug_assert_eq!(bytes.len(), code::storage_bytes(nbits));
    debug_assert!(code::padding_is_clear(nbits, bytes));
    varlena_datum(&[&nbits.to_ne_bytes(), bytes])
}

pub fn make_code(c: &code::Code) -> pg_sys::Datum {
    make(c.nbits(), c.bytes())
}

/// Raises the ERROR that matches a code-building failure.
pub fn report(err: CodeError) -> ! {
    let state = match err {
        CodeError::Empty | CodeError::InvalidBinaryDigit { .. } | CodeError::InvalidHexDigit { .. } => {
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION
        }
        CodeError::TooLong { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        CodeError::LengthMismatch { .. } => PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
        CodeError::NaN { .. } | CodeError::NonFinite { .. } => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        CodeError::EmptyArray => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    raise(state, err.to_string())
}

/// Checks a code against a column's declared length (`bitcode(n)`); `typmod < 0` means none.
pub fn enforce_typmod(nbits: u32, typmod: i32) {
    if typmod >= 0 && nbits != typmod as u32 {
        raise(
            PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
            format!("bitcode length {nbits} does not match type bitcode({typmod})"),
        );
    }
}

pub use ball::BallRef;
