//! Text and binary I/O, type modifiers and the length coercion of `bitcode(n)`.

use std::ffi::CStr;

use jdsh_core::code::{self, Code};
use jdsh_core::MAX_BITS;
use pgrx::{pg_sys, PgSqlErrorCode};

use super::{enforce_typmod, make_code, report, BitcodeRef};
use crate::fmgr::{arg, arg_i32, raise};
use crate::gucs::{BitcodeOutput, BITCODE_OUTPUT};

/// Copies a Rust string into a palloc'd C string datum.
pub(super) fn cstring_datum(s: &str) -> pg_sys::Datum {
    // SAFETY: palloc returns `len + 1` writable bytes: the string, then its terminating zero.
    unsafe {
        let p = pg_sys::palloc(s.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        *p.add(s.len()) = 0;
        pg_sys::Datum::from(p)
    }
}

pg_v1! {
    /// `bitcode_in(cstring, oid, int4)`: `0110...` or `x3fa0...`.
    fn bitcode_in(fcinfo) {
        let text = unsafe { CStr::from_ptr(arg(fcinfo, 0).cast_mut_ptr()) };
        let text = text.to_str().unwrap_or_else(|_| {
            raise(PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION, "bitcode literal is not valid UTF-8")
        });
        let c = Code::parse(text).unwrap_or_else(|e| report(e));
        enforce_typmod(c.nbits(), unsafe { arg_i32(fcinfo, 2) });
        make_code(&c)
    }
}

pg_v1! {
    fn bitcode_out(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        let text = match BITCODE_OUTPUT.get() {
            BitcodeOutput::Hex => code::format_hex(c.nbits, c.bytes),
            BitcodeOutput::Bits => None,
        }
        .unwrap_or_else(|| code::format_bits(c.nbits, c.bytes));
        cstring_datum(&text)
    }
}

pg_v1! {
    /// `bitcode_typmod_in(cstring[])`: the `n` of `bitcode(n)`.
    fn bitcode_typmod_in(fcinfo) {
        let mut n = 0;
        let mods = unsafe { pg_sys::ArrayGetIntegerTypmods(arg(fcinfo, 0).cast_mut_ptr(), &mut n) };
        if n != 1 {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "invalid type modifier: bitcode takes one length, as in bitcode(64)");
        }
        let bits = unsafe { *mods };
        if bits < 1 || bits > MAX_BITS as i32 {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("length for type bitcode must be between 1 and {MAX_BITS}, not {bits}"),
            );
        }
        pg_sys::Datum::from(bits)
    }
}

pg_v1! {
    fn bitcode_typmod_out(fcinfo) {
        let typmod = unsafe { arg_i32(fcinfo, 0) };
        cstring_datum(&if typmod >= 0 { format!("({typmod})") } else { String::new() })
    }
}

pg_v1! {
    /// `bitcode_recv(internal, oid, int4)`: int4 length in bits, then the bits MSB-first, padded
    /// to whole bytes with zero bits (the same wire format as `varbit`).
    fn bitcode_recv(fcinfo) {
        let buf: pg_sys::StringInfo = unsafe { arg(fcinfo, 0).cast_mut_ptr() };
        let nbits = unsafe { pg_sys::pq_getmsgint(buf, 4) } as i32;
        if nbits < 1 || nbits > MAX_BITS as i32 {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                format!("invalid length in external bitcode value: {nbits} (must be 1..{MAX_BITS})"),
            );
        }
        let nbits = nbits as u32;
        let len = code::payload_bytes(nbits);
        let payload = unsafe {
            std::slice::from_raw_parts(pg_sys::pq_getmsgbytes(buf, len as i32) as *const u8, len)
        };
        let c = Code::from_msb_bytes(nbits, payload).unwrap_or_else(|e| report(e));
        if c.bytes()[..len] != *payload {
            raise(PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION, "external bitcode value has bits set past its length");
        }
        enforce_typmod(nbits, unsafe { arg_i32(fcinfo, 2) });
        make_code(&c)
    }
}

pg_v1! {
    fn bitcode_send(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        let mut out = Vec::with_capacity(4 + c.payload().len());
        out.extend_from_slice(&c.nbits.to_be_bytes());
        out.extend_from_slice(c.payload());
        pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(&out).into_pg())
    }
}

pg_v1! {
    /// `bitcode(bitcode, int4, bool)`: the length coercion behind `bitcode(n)` columns and casts.
    /// Unlike `bit(n)`, an explicit cast does not truncate or pad either: a code of another
    /// length comes from another model, and silently cutting it would give wrong distances.
    fn bitcode_coerce(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        enforce_typmod(c.nbits, unsafe { arg_i32(fcinfo, 1) });
        unsafe { arg(fcinfo, 0) }
    }
}
