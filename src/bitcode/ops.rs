//! Operators and functions on codes: Hamming distance, bit counts, bitwise logic, comparison and
//! hashing (for the btree and hash operator classes).

use std::cmp::Ordering;

use jdsh_core::code;
use pgrx::pg_sys;

use super::{make, report, BitcodeRef};
use crate::fmgr::arg;

pg_v1! {
    /// `a <~> b`: number of differing bits. Codes of different lengths are an error, never a
    /// silently wrong distance.
    fn bitcode_hamming(fcinfo) {
        let (a, b) = unsafe { (BitcodeRef::arg(fcinfo, 0), BitcodeRef::arg(fcinfo, 1)) };
        a.same_length(&b);
        pg_sys::Datum::from(code::hamming(a.bytes, b.bytes) as i32)
    }
}

pg_v1! {
    fn bitcode_bit_count(fcinfo) {
        let a = unsafe { BitcodeRef::arg(fcinfo, 0) };
        pg_sys::Datum::from(code::popcount(a.bytes) as i32)
    }
}

pg_v1! {
    fn bitcode_bit_length(fcinfo) {
        let a = unsafe { BitcodeRef::arg(fcinfo, 0) };
        pg_sys::Datum::from(a.nbits as i32)
    }
}

fn bitwise(fcinfo: pg_sys::FunctionCallInfo, op: impl Fn(u8, u8) -> u8) -> pg_sys::Datum {
    let (a, b) = unsafe { (BitcodeRef::arg(fcinfo, 0), BitcodeRef::arg(fcinfo, 1)) };
    let out = code::combine(a.nbits, a.bytes, b.nbits, b.bytes, op).unwrap_or_else(|e| report(e));
    make(a.nbits, &out)
}

pg_v1! { fn bitcode_xor(fcinfo) { bitwise(fcinfo, |x, y| x ^ y) } }
pg_v1! { fn bitcode_and(fcinfo) { bitwise(fcinfo, |x, y| x & y) } }
pg_v1! { fn bitcode_or(fcinfo) { bitwise(fcinfo, |x, y| x | y) } }

pg_v1! {
    fn bitcode_not(fcinfo) {
        let a = unsafe { BitcodeRef::arg(fcinfo, 0) };
        make(a.nbits, &code::complement(a.nbits, a.bytes))
    }
}

#[inline]
fn cmp_args(fcinfo: pg_sys::FunctionCallInfo) -> Ordering {
    let (a, b) = unsafe { (BitcodeRef::arg(fcinfo, 0), BitcodeRef::arg(fcinfo, 1)) };
    code::compare(a.nbits, a.bytes, b.nbits, b.bytes)
}

pg_v1! { fn bitcode_eq(fcinfo) { pg_sys::Datum::from(cmp_args(fcinfo).is_eq()) } }
pg_v1! { fn bitcode_ne(fcinfo) { pg_sys::Datum::from(cmp_args(fcinfo).is_ne()) } }
pg_v1! { fn bitcode_lt(fcinfo) { pg_sys::Datum::from(cmp_args(fcinfo).is_lt()) } }
pg_v1! { fn bitcode_le(fcinfo) { pg_sys::Datum::from(cmp_args(fcinfo).is_le()) } }
pg_v1! { fn bitcode_gt(fcinfo) { pg_sys::Datum::from(cmp_args(fcinfo).is_gt()) } }
pg_v1! { fn bitcode_ge(fcinfo) { pg_sys::Datum::from(cmp_args(fcinfo).is_ge()) } }
pg_v1! { fn bitcode_cmp(fcinfo) { pg_sys::Datum::from(cmp_args(fcinfo) as i32) } }

pg_v1! {
    fn bitcode_hash(fcinfo) {
        let a = unsafe { BitcodeRef::arg(fcinfo, 0) };
        pg_sys::Datum::from(code::hash64(a.nbits, a.bytes, 0) as u32 as i32)
    }
}

pg_v1! {
    /// Seeded 64-bit hash (hash partitioning); seed 0 agrees with `bitcode_hash` in its low bits,
    /// as PostgreSQL requires.
    fn bitcode_hash_extended(fcinfo) {
        let a = unsafe { BitcodeRef::arg(fcinfo, 0) };
        let seed = unsafe { arg(fcinfo, 1).value() } as u64;
        pg_sys::Datum::from(code::hash64(a.nbits, a.bytes, seed) as i64)
    }
}
