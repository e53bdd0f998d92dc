//! `bitball`: a query region "within Hamming distance r of q", the right operand of the
//! indexable radius operator `code <@ jdsh.ball(q, r)`.
//!
//! Layout after the varlena header: `radius: i32`, `nbits: u32`, then the centre's code bytes
//! word-padded as in `bitcode`. Text form: the centre's text form, `:`, the radius
//! (`'x3fa0:3'`, `'0110:1'`).
//!
//! The SQL of the type and its operators is in `sql/mih.sql`, with the access method whose
//! radius strategy they are (see the module doc of `src/bitcode`).

use std::ffi::CStr;

use jdsh_core::code::{self, Code};
use pgrx::{pg_sys, PgSqlErrorCode};

use super::io::cstring_datum;
use super::{report, varlena_datum, BitcodeRef};
use crate::fmgr::{arg, arg_i32, raise, raise_with_hint};

const HEADER: usize = pg_sys::VARHDRSZ + 8;

/// A borrowed, detoasted bitball datum.
pub struct BallRef<'a> {
    pub radius: u32,
    pub center: BitcodeRef<'a>,
}

impl<'a> BallRef<'a> {
    /// # Safety
    /// `datum` must be a non-null `bitball` datum that lives as long as `'a`.
    pub unsafe fn from_datum(datum: pg_sys::Datum) -> BallRef<'a> {
        // SAFETY: the caller's promise above; the header is read before its fields are trusted
        // (length and bit count checked against each other before the code bytes are sliced).
        unsafe {
            let v = pg_sys::pg_detoast_datum(datum.cast_mut_ptr::<pg_sys::varlena>());
            let base = v as *const u8;
            let len = pgrx::varlena::varsize_any(v);
            let radius = std::ptr::read_unaligned(base.add(pg_sys::VARHDRSZ) as *const i32);
            let nbits = std::ptr::read_unaligned(base.add(pg_sys::VARHDRSZ + 4) as *const u32);
            if radius < 0
                || !(1..=jdsh_core::MAX_BITS).contains(&nbits)
                || len != HEADER + code::storage_bytes(nbits)
            {
                raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, "corrupt bitball value");
            }
            let bytes = std::slice::from_raw_parts(base.add(HEADER), len - HEADER);
            BallRef { radius: radius as u32, center: BitcodeRef { nbits, bytes } }
        }
    }
}

fn check_radius(radius: i32) -> u32 {
    if radius < 0 {
        raise_with_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("Hamming radius must not be negative, got {radius}"),
            "Use a radius of 0 (exact match) or more.",
        );
    }
    radius as u32
}

fn make(radius: u32, center: &BitcodeRef) -> pg_sys::Datum {
    varlena_datum(&[&(radius as i32).to_ne_bytes(), &center.nbits.to_ne_bytes(), center.bytes])
}

/// `code <@ ball`, the body of both operators.
fn within(c: &BitcodeRef, b: &BallRef) -> pg_sys::Datum {
    c.same_length(&b.center);
    pg_sys::Datum::from(code::hamming(c.bytes, b.center.bytes) <= b.radius)
}

pg_v1! {
    /// `bitball_in(cstring)`: `<bitcode literal>:<radius>`.
    fn bitball_in(fcinfo) {
        let text = unsafe { CStr::from_ptr(arg(fcinfo, 0).cast_mut_ptr()) }.to_string_lossy();
        let Some((code_text, radius_text)) = text.rsplit_once(':') else {
            raise_with_hint(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type bitball: \"{text}\""),
                "Write a code and a radius separated by a colon, e.g. 'x3fa0:3', or use jdsh.ball(code, radius).",
            )
        };
        let radius: i32 = radius_text.trim().parse().unwrap_or_else(|_| {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("invalid radius in bitball literal: \"{radius_text}\""),
            )
        });
        let c = Code::parse(code_text.trim()).unwrap_or_else(|e| report(e));
        make(check_radius(radius), &BitcodeRef { nbits: c.nbits(), bytes: c.bytes() })
    }
}

pg_v1! {
    fn bitball_out(fcinfo) {
        let b = unsafe { BallRef::from_datum(arg(fcinfo, 0)) };
        let c = b.center;
        let text = code::format_hex(c.nbits, c.bytes).unwrap_or_else(|| code::format_bits(c.nbits, c.bytes));
        cstring_datum(&format!("{text}:{}", b.radius))
    }
}

pg_v1! {
    /// `jdsh.ball(bitcode, int4)`: the codes within distance `r` of the centre.
    fn bitball_make(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        make(check_radius(unsafe { arg_i32(fcinfo, 1) }), &c)
    }
}

pg_v1! {
    /// `bitcode <@ bitball`: the code lies within the ball.
    fn bitcode_in_ball(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        let b = unsafe { BallRef::from_datum(arg(fcinfo, 1)) };
        within(&c, &b)
    }
}

pg_v1! {
    /// `bitball @> bitcode`, the commutator.
    fn bitball_contains(fcinfo) {
        let b = unsafe { BallRef::from_datum(arg(fcinfo, 0)) };
        let c = unsafe { BitcodeRef::arg(fcinfo, 1) };
        within(&c, &b)
    }
}
