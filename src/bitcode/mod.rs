//! The `bitcode` type: a varlena holding 1..=4096 bits.
//!
//! On-disk layout (after the 4-byte varlena header): `nbits: u32` (native endian), then the code
//! bytes in MSB-first bit order, zero-padded to whole 64-bit words (see `jdsh_core::code`).
//! `STORAGE = plain`: codes are small and incompressible, so they never get a short header,
//! compression or TOAST, and reading one is a pointer cast. `ALIGNMENT = int4`: the kernel uses
//! unaligned loads, so double alignment would only waste padding in every row.

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
    #[inline]
    pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> BitcodeRef<'a> {
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

/// Allocates a bitcode datum in the current memory context. `bytes` must be word-padded with
/// zero padding (as every `jdsh_core` constructor makes them).
pub fn make(nbits: u32, bytes: &[u8]) -> pg_sys::Datum {
    debug_assert_eq!(bytes.len(), code::storage_bytes(nbits));
    debug_assert!(code::padding_is_clear(nbits, bytes));
    let len = HEADER + bytes.len();
    unsafe {
        let p = pg_sys::palloc(len) as *mut u8;
        pgrx::varlena::set_varsize_4b(p as *mut pg_sys::varlena, len as i32);
        std::ptr::write_unaligned(p.add(pg_sys::VARHDRSZ) as *mut u32, nbits);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(HEADER), bytes.len());
        pg_sys::Datum::from(p)
    }
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
