//! Casts between `bitcode` and `bit`/`varbit`, `bytea`, `int8`, `real[]`/`double precision[]`.
//! The `X -> bitcode` functions take the target's type modifier so that `bitcode(n)` is enforced
//! in the cast itself.

use jdsh_core::code::{self, Code, CodeError};
use jdsh_core::MAX_BITS;
use pgrx::{pg_sys, IntoDatum, PgSqlErrorCode};

use super::{enforce_typmod, make_code, report, varlena_datum, BitcodeRef};
use crate::fmgr::{arg, arg_i32, float_array, raise, raise_with_hint};

/// Detoasts (and unpacks) a varlena argument, returning its data bytes.
///
/// # Safety
/// `datum` must be a non-null varlena datum (any varlena type) that lives as long as `'a`.
unsafe fn varlena_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: the caller's promise above; the length comes from the (unpacked) header.
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
        let len = pgrx::varlena::varsize_any_exhdr(v);
        std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len)
    }
}

/// Builds a `bit`/`varbit` datum (they share one layout: int4 bit length, then the bytes).
fn make_varbit(nbits: u32, payload: &[u8]) -> pg_sys::Datum {
    varlena_datum(&[&(nbits as i32).to_ne_bytes(), payload])
}

pg_v1! {
    /// `bitcode::bit` and `bitcode::varbit`.
    fn bitcode_to_varbit(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        make_varbit(c.nbits, c.payload())
    }
}

pg_v1! {
    /// `bit::bitcode(n)` and `varbit::bitcode(n)`.
    fn varbit_to_bitcode(fcinfo) {
        let data = unsafe { varlena_bytes(arg(fcinfo, 0)) };
        let nbits = i32::from_ne_bytes(data[..4].try_into().unwrap());
        let nbits = u32::try_from(nbits).unwrap_or(0);
        if nbits > MAX_BITS {
            report(CodeError::TooLong { nbits: nbits as usize });
        }
        if nbits == 0 {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "cannot cast an empty bit string to bitcode");
        }
        let c = Code::from_msb_bytes(nbits, &data[4..]).unwrap_or_else(|e| report(e));
        enforce_typmod(c.nbits(), unsafe { arg_i32(fcinfo, 1) });
        make_code(&c)
    }
}

pg_v1! {
    /// `bitcode::bytea`: the bits MSB-first, the last byte padded with zero bits.
    fn bitcode_to_bytea(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        pg_sys::Datum::from(pgrx::varlena::rust_byte_slice_to_bytea(c.payload()).into_pg())
    }
}

pg_v1! {
    /// `bytea::bitcode(n)`: 8 bits per byte.
    fn bytea_to_bitcode(fcinfo) {
        let data = unsafe { varlena_bytes(arg(fcinfo, 0)) };
        if data.is_empty() {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "cannot cast an empty bytea to bitcode");
        }
        if data.len() * 8 > MAX_BITS as usize {
            report(CodeError::TooLong { nbits: data.len() * 8 });
        }
        let c = Code::from_msb_bytes((data.len() * 8) as u32, data).unwrap_or_else(|e| report(e));
        enforce_typmod(c.nbits(), unsafe { arg_i32(fcinfo, 1) });
        make_code(&c)
    }
}

pg_v1! {
    /// `int8::bitcode(64)`: bit 0 is the sign bit, as in `bit(64)`.
    fn int8_to_bitcode(fcinfo) {
        let v = unsafe { arg(fcinfo, 0).value() } as u64;
        let c = Code::from_u64(v);
        enforce_typmod(64, unsafe { arg_i32(fcinfo, 1) });
        make_code(&c)
    }
}

pg_v1! {
    fn bitcode_to_int8(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        if c.nbits != 64 {
            raise_with_hint(
                PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
                format!("cannot cast a {}-bit code to bigint", c.nbits),
                "Only 64-bit codes convert to bigint; cast to bit or bytea for other lengths.",
            );
        }
        pg_sys::Datum::from(i64::from_be_bytes(c.bytes[..8].try_into().unwrap()))
    }
}

fn binarize(values: impl Iterator<Item = f64>, typmod: i32) -> pg_sys::Datum {
    let c = Code::from_signs(values).unwrap_or_else(|e| report(e));
    enforce_typmod(c.nbits(), typmod);
    make_code(&c)
}

/// Type modifier of an optional second argument (casts pass one; `jdsh.binarize` does not).
fn typmod_arg(fcinfo: pg_sys::FunctionCallInfo) -> i32 {
    if unsafe { (*fcinfo).nargs } > 1 {
        unsafe { arg_i32(fcinfo, 1) }
    } else {
        -1
    }
}

pg_v1! {
    /// `real[]::bitcode` and `jdsh.binarize(real[])`: bit i is set where element i is > 0.
    fn float4_array_to_bitcode(fcinfo) {
        let v: &[f32] = unsafe { float_array(arg(fcinfo, 0), "binarize") };
        binarize(v.iter().map(|x| f64::from(*x)), typmod_arg(fcinfo))
    }
}

pg_v1! {
    fn float8_array_to_bitcode(fcinfo) {
        let v: &[f64] = unsafe { float_array(arg(fcinfo, 0), "binarize") };
        binarize(v.iter().copied(), typmod_arg(fcinfo))
    }
}

pg_v1! {
    /// `bitcode::real[]`: +1 for a set bit, -1 for a clear one (the sign vector that binarizes
    /// back to the same code).
    fn bitcode_to_float4_array(fcinfo) {
        let c = unsafe { BitcodeRef::arg(fcinfo, 0) };
        let v: Vec<f32> = (0..c.nbits).map(|i| if code::get_bit(c.bytes, i) { 1.0 } else { -1.0 }).collect();
        v.into_datum().unwrap()
    }
}
