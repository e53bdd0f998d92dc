//! Binary codes: bit order, packing, text forms and the Hamming kernel.
//!
//! A code of `nbits` bits is stored as bytes in MSB-first order (bit 0 of the code is the high bit
//! of byte 0), exactly like PostgreSQL's `bit`/`varbit`, padded with zero bits up to a whole number
//! of 64-bit words. Because of that layout
//! - conversion to and from `bit`, `varbit` and `bytea` is a copy,
//! - `memcmp` of the bytes orders codes lexicographically by bit,
//! - Hamming distance is `popcount(a ^ b)` over 8-byte chunks, whatever the endianness,
//! - the padding is always zero, so equal codes have equal bytes (and equal hashes).

use std::cmp::Ordering;

/// Longest code the type accepts. 4096 bits = 512 bytes keeps every value far below the TOAST
/// threshold, so codes are never compressed or moved out of line.
pub const MAX_BITS: u32 = 4096;

/// Bytes of storage for a code of `nbits` bits (whole 64-bit words).
#[inline]
pub const fn storage_bytes(nbits: u32) -> usize {
    (nbits as usize).div_ceil(64) * 8
}

/// Bytes that carry bits (without the word padding): what `bytea` and `bit` hold.
#[inline]
pub const fn payload_bytes(nbits: u32) -> usize {
    (nbits as usize).div_ceil(8)
}

/// Errors in building or combining codes. Each maps to one SQLSTATE in the extension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("bitcode literal is empty")]
    Empty,
    #[error("\"{ch}\" is not a valid binary digit (position {pos})")]
    InvalidBinaryDigit { ch: char, pos: usize },
    #[error("\"{ch}\" is not a valid hexadecimal digit (position {pos})")]
    InvalidHexDigit { ch: char, pos: usize },
    #[error("bitcode of {nbits} bits exceeds the maximum of {MAX_BITS} bits")]
    TooLong { nbits: usize },
    #[error("bitcode lengths differ: {left} and {right} bits")]
    LengthMismatch { left: u32, right: u32 },
    #[error("cannot binarize NaN (element {index})")]
    NaN { index: usize },
    #[error("cannot binarize a non-finite value (element {index})")]
    NonFinite { index: usize },
    #[error("cannot binarize an empty array")]
    EmptyArray,
}

/// An owned code: the canonical form that every constructor produces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Code {
    nbits: u32,
    bytes: Vec<u8>,
}

impl Code {
    /// All-zero code. `nbits` must be in 1..=MAX_BITS (checked by callers that take user input).
    pub fn zeros(nbits: u32) -> Code {
        debug_assert!((1..=MAX_BITS).contains(&nbits));
        Code { nbits, bytes: vec![0; storage_bytes(nbits)] }
    }

    /// From payload bytes (MSB-first), keeping the first `nbits` bits; missing bytes are zero,
    /// bits past `nbits` are cleared.
    pub fn from_msb_bytes(nbits: u32, payload: &[u8]) -> Result<Code, CodeError> {
        check_len(nbits as usize)?;
        let mut code = Code::zeros(nbits);
        let n = payload.len().min(payload_bytes(nbits));
        code.bytes[..n].copy_from_slice(&payload[..n]);
        code.clear_padding();
        Ok(code)
    }

    /// From a 64-bit integer: bit 0 of the code is the integer's sign bit (as `bit(64)::int8`).
    pub fn from_u64(v: u64) -> Code {
        Code { nbits: 64, bytes: v.to_be_bytes().to_vec() }
    }

    /// One bit per element, set where the element is > 0 (the sign of a real-valued hash output).
    pub fn from_signs<I: IntoIterator<Item = f64>>(values: I) -> Result<Code, CodeError> {
        let values: Vec<f64> = values.into_iter().collect();
        if values.is_empty() {
            return Err(CodeError::EmptyArray);
        }
        check_len(values.len())?;
        let mut code = Code::zeros(values.len() as u32);
        for (i, v) in values.iter().enumerate() {
            if v.is_nan() {
                return Err(CodeError::NaN { index: i + 1 });
            }
            if *v > 0.0 {
                code.set(i as u32, true);
            }
        }
        Ok(code)
    }

    /// One bit per network output, set where the output is > 0; NaN and infinities are refused
    /// (a model that produced them is broken, whatever their sign says).
    pub fn from_f32_signs(values: &[f32]) -> Result<Code, CodeError> {
        if values.is_empty() {
            return Err(CodeError::EmptyArray);
        }
        check_len(values.len())?;
        let mut code = Code::zeros(values.len() as u32);
        for (i, &v) in values.iter().enumerate() {
            if !v.is_finite() {
                return Err(CodeError::NonFinite { index: i + 1 });
            }
            if v > 0.0 {
                code.set(i as u32, true);
            }
        }
        Ok(code)
    }

    /// Parses `0101...` (one character per bit) or `x3fa0...` / `X3FA0...` (four bits per digit).
    pub fn parse(text: &str) -> Result<Code, CodeError> {
        let (hex, digits) = match text.as_bytes().first() {
            Some(b'x') | Some(b'X') => (true, &text[1..]),
            _ => (false, text),
        };
        if digits.is_empty() {
            return Err(CodeError::Empty);
        }
        let nbits = if hex { digits.len() * 4 } else { digits.len() };
        check_len(nbits)?;
        let mut code = Code::zeros(nbits as u32);
        let offset = usize::from(hex);
        for (i, ch) in digits.chars().enumerate() {
            if hex {
                let v = ch.to_digit(16).ok_or(CodeError::InvalidHexDigit { ch, pos: i + offset + 1 })?;
                code.bytes[i / 2] |= (v as u8) << if i % 2 == 0 { 4 } else { 0 };
            } else {
                match ch {
                    '0' => {}
                    '1' => code.set(i as u32, true),
                    _ => return Err(CodeError::InvalidBinaryDigit { ch, pos: i + 1 }),
                }
            }
        }
        Ok(code)
    }

    pub fn nbits(&self) -> u32 {
        self.nbits
    }

    /// Storage bytes, word-padded.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn get(&self, i: u32) -> bool {
        get_bit(&self.bytes, i)
    }

    pub fn set(&mut self, i: u32, on: bool) {
        let mask = 0x80u8 >> (i % 8);
        let b = &mut self.bytes[(i / 8) as usize];
        if on {
            *b |= mask
        } else {
            *b &= !mask
        }
    }

    fn clear_padding(&mut self) {
        clear_padding(self.nbits, &mut self.bytes);
    }
}

fn check_len(nbits: usize) -> Result<(), CodeError> {
    if nbits == 0 {
        Err(CodeError::Empty)
    } else if nbits > MAX_BITS as usize {
        Err(CodeError::TooLong { nbits })
    } else {
        Ok(())
    }
}

/// Zeroes the bits at positions >= `nbits`.
pub fn clear_padding(nbits: u32, bytes: &mut [u8]) {
    let full = (nbits / 8) as usize;
    let rem = nbits % 8;
    let mut start = full;
    if rem != 0 {
        bytes[full] &= 0xFFu8 << (8 - rem);
        start += 1;
    }
    bytes[start..].fill(0);
}

/// True when the bits at positions >= `nbits` are all zero.
pub fn padding_is_clear(nbits: u32, bytes: &[u8]) -> bool {
    let full = (nbits / 8) as usize;
    let rem = nbits % 8;
    let mut start = full;
    if rem != 0 {
        if bytes[full] & !(0xFFu8 << (8 - rem)) != 0 {
            return false;
        }
        start += 1;
    }
    bytes[start..].iter().all(|&b| b == 0)
}

#[inline]
pub fn get_bit(bytes: &[u8], i: u32) -> bool {
    bytes[(i / 8) as usize] & (0x80u8 >> (i % 8)) != 0
}

/// Hamming distance between two equally long word-padded byte strings: the one popcount kernel
/// that every distance in the project goes through.
#[inline]
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    debug_assert_eq!(a.len(), b.len());
    debug_assert_eq!(a.len() % 8, 0);
    let mut d = 0u32;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_ne_bytes(x.try_into().unwrap());
        let y = u64::from_ne_bytes(y.try_into().unwrap());
        d += (x ^ y).count_ones();
    }
    d
}

/// Appends to `out` the Hamming distance from `query` to each code of `codes` (codes as long as
/// `query`, back to back): [`hamming`] over a run of codes, with the one- and two-word lengths
/// unrolled, for searches that read every code of a page. A loop without calls, so that the
/// compiler keeps it tight; the caller filters the distances in a second loop.
#[inline]
pub fn distances(query: &[u8], codes: &[u8], out: &mut Vec<u32>) {
    match query.len() {
        8 => {
            let q = word(query);
            out.extend(codes.chunks_exact(8).map(|c| (word(c) ^ q).count_ones()));
        }
        16 => {
            let (q0, q1) = (word(&query[..8]), word(&query[8..]));
            out.extend(
                codes
                    .chunks_exact(16)
                    .map(|c| (word(&c[..8]) ^ q0).count_ones() + (word(&c[8..]) ^ q1).count_ones()),
            );
        }
        n => out.extend(codes.chunks_exact(n).map(|c| hamming(c, query))),
    }
}

/// Calls `keep(i, d)` for each code `i` of `codes` (back to back, each `query.len()` bytes) whose
/// distance `d` to `query` is at most `limit`; `keep` returns the limit for the codes after it.
/// Returns the last limit. The filtering kernel of whole-table reads: codes are taken eight at a
/// time, and a group is looked at code by code only when one of its codes is within the limit
/// (near the k-th distance, nearly never), so the common path is loads, popcounts and compares,
/// with nothing stored. On CPUs with AVX-512's VPOPCNTQ, 64-, 128- and 256-bit codes take a
/// vector path (eight codes per compare): 1M codes filtered in ~0.17 ms against ~0.55 ms for the scalar
/// loop, in L3. (Asking the CPU for every line of a page's codes up front was 4-5 % slower
/// through the extension than leaving them to the hardware prefetcher: the prefetches queue
/// behind each other.)
#[inline]
pub fn within(query: &[u8], codes: &[u8], limit: u32, keep: impl FnMut(usize, u32) -> u32) -> u32 {
    within_in(Direction::Forward, query, codes, limit, keep)
}

/// The order in which [`within_in`] takes a run of codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// First code to last.
    Forward,
    /// Last code to first: for a run that lies just below the one read before it in memory, so
    /// that the CPU's prefetcher sees one falling stream (it follows a stream either way, but
    /// not one that jumps back a page at every page: 1M codes on consecutive pages, falling,
    /// filtered cold in 0.32-0.43 ms this way, 0.61-0.80 ms forward page by page).
    Backward,
}

/// [`within`], taking the codes in the order `direction` says: groups of eight codes first to
/// last or last to first, the codes within a group (and those after the last whole group, taken
/// first going back) first to last; `keep` is called in that order.
#[inline]
pub fn within_in(
    direction: Direction,
    query: &[u8],
    codes: &[u8],
    limit: u32,
    mut keep: impl FnMut(usize, u32) -> u32,
) -> u32 {
    if query.is_empty() {
        return limit;
    }
    #[cfg(target_arch = "x86_64")]
    if matches!(query.len(), 8 | 16 | 32) && avx512::available() {
        // SAFETY: the CPU has the features the vector path is compiled for (just checked).
        return unsafe {
            match direction {
                Direction::Forward => avx512::within::<false>(query, codes, limit, &mut keep),
                Direction::Backward => avx512::within::<true>(query, codes, limit, &mut keep),
            }
        };
    }
    match direction {
        Direction::Forward => within_groups::<false>(query, codes, limit, &mut keep),
        Direction::Backward => within_groups::<true>(query, codes, limit, &mut keep),
    }
}

/// Calls `group(bytes, first)` for each whole group of eight codes of `codes` (`code_bytes`
/// each), first code's index `first`, in order (`BACK`: last to first), and returns the codes
/// after the last whole group. A run's rest is taken first going back, last going forward.
#[inline(always)]
fn each_group<'a, const BACK: bool>(
    codes: &'a [u8],
    code_bytes: usize,
    mut group: impl FnMut(&'a [u8], usize),
) -> &'a [u8] {
    let groups = codes.chunks_exact(GROUP * code_bytes);
    let (count, rest) = (groups.len(), groups.remainder());
    if BACK {
        for (k, g) in groups.rev().enumerate() {
            group(g, (count - 1 - k) * GROUP);
        }
    } else {
        for (k, g) in groups.enumerate() {
            group(g, k * GROUP);
        }
    }
    rest
}

/// The vector path of [`within`]: AVX-512F with VPOPCNTQ (Intel Ice Lake, AMD Zen 4 on).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{each_group, keep_group, word, GROUP};
    use std::arch::x86_64::*;

    /// Whether this CPU has the instructions (the check is cached by the standard library).
    #[inline]
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vpopcntdq")
    }

    /// [`super::within_in`] for 8-, 16- or 32-byte codes: each group of eight is one, two or
    /// four 64-byte loads, XORed with the query, popcounted per 64-bit lane, summed per code and
    /// compared with the limit.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX512-VPOPCNTDQ ([`available`]).
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn within<const BACK: bool>(
        query: &[u8],
        codes: &[u8],
        mut limit: u32,
        keep: &mut impl FnMut(usize, u32) -> u32,
    ) -> u32 {
        let n = query.len();
        let whole = codes.len() / (GROUP * n) * GROUP;
        let rest = &codes[whole * n..];
        if BACK {
            limit = keep_group(query, rest, whole, limit, keep);
        }
        let mut lv = _mm512_set1_epi64(limit as i64);
        if n == 8 {
            let qv = _mm512_set1_epi64(word(query) as i64);
            each_group::<BACK>(codes, n, |g, base| {
                // SAFETY: `g` is 64 bytes (a group of eight 8-byte codes); loadu takes any
                // alignment.
                let v = unsafe { _mm512_loadu_si512(g.as_ptr().cast()) };
                let d = _mm512_popcnt_epi64(_mm512_xor_si512(v, qv));
                if _mm512_cmple_epu64_mask(d, lv) != 0 {
                    limit = keep_group(query, g, base, limit, keep);
                    lv = _mm512_set1_epi64(limit as i64);
                }
            });
        } else if n == 32 {
            // Each load holds two codes of four words; summing across the pairs of lanes and
            // then across the 128-bit halves of each 256 bits leaves a code's distance in each
            // of its four lanes.
            let q: [i64; 4] = std::array::from_fn(|i| word(&query[i * 8..i * 8 + 8]) as i64);
            let qv = _mm512_set_epi64(q[3], q[2], q[1], q[0], q[3], q[2], q[1], q[0]);
            each_group::<BACK>(codes, n, |g, base| {
                let mut near = 0;
                for half in 0..4 {
                    // SAFETY: `g` is 256 bytes (eight 32-byte codes): four 64-byte loads within it.
                    let v = unsafe { _mm512_loadu_si512(g.as_ptr().add(64 * half).cast()) };
                    let p = _mm512_popcnt_epi64(_mm512_xor_si512(v, qv));
                    let p = _mm512_add_epi64(p, _mm512_shuffle_epi32::<{ _MM_PERM_BADC }>(p));
                    let d = _mm512_add_epi64(p, _mm512_shuffle_i64x2::<0b1011_0001>(p, p));
                    near |= _mm512_cmple_epu64_mask(d, lv);
                }
                if near != 0 {
                    limit = keep_group(query, g, base, limit, keep);
                    lv = _mm512_set1_epi64(limit as i64);
                }
            });
        } else {
            // Lanes hold (word 0, word 1) of four codes; a lane plus its neighbour is a distance.
            let (q0, q1) = (word(&query[..8]) as i64, word(&query[8..]) as i64);
            let qv = _mm512_set_epi64(q1, q0, q1, q0, q1, q0, q1, q0);
            each_group::<BACK>(codes, n, |g, base| {
                // SAFETY: `g` is 128 bytes (eight 16-byte codes): two 64-byte loads within it.
                let (a, b) = unsafe {
                    (_mm512_loadu_si512(g.as_ptr().cast()), _mm512_loadu_si512(g.as_ptr().add(64).cast()))
                };
                let (pa, pb) = (
                    _mm512_popcnt_epi64(_mm512_xor_si512(a, qv)),
                    _mm512_popcnt_epi64(_mm512_xor_si512(b, qv)),
                );
                // Swapping the two 64-bit halves of each 128-bit lane pairs a code's words.
                let da = _mm512_add_epi64(pa, _mm512_shuffle_epi32::<{ _MM_PERM_BADC }>(pa));
                let db = _mm512_add_epi64(pb, _mm512_shuffle_epi32::<{ _MM_PERM_BADC }>(pb));
                if _mm512_cmple_epu64_mask(da, lv) | _mm512_cmple_epu64_mask(db, lv) != 0 {
                    limit = keep_group(query, g, base, limit, keep);
                    lv = _mm512_set1_epi64(limit as i64);
                }
            });
        }
        if !BACK {
            limit = keep_group(query, rest, whole, limit, keep);
        }
        limit
    }
}

/// Codes per group of [`within`].
const GROUP: usize = 8;

#[inline]
fn word(b: &[u8]) -> u64 {
    u64::from_ne_bytes(b.try_into().unwrap())
}

/// The scalar path of [`within_in`].
fn within_groups<const BACK: bool>(
    query: &[u8],
    codes: &[u8],
    mut limit: u32,
    keep: &mut impl FnMut(usize, u32) -> u32,
) -> u32 {
    let n = query.len();
    let whole = codes.len() / (GROUP * n) * GROUP;
    let rest = &codes[whole * n..];
    if BACK {
        limit = keep_group(query, rest, whole, limit, keep);
    }
    // Whether any code of a group is within the limit, as an OR of compares over a fixed-size
    // group: the compiler keeps it branch-free (a fold over a slice's chunks compiled to twice
    // the time).
    macro_rules! scan {
        ($bytes:expr, $dist:expr) => {
            each_group::<BACK>(codes, n, |g, base| {
                let g: &[u8; $bytes] = g.try_into().unwrap();
                let near = (0..GROUP).fold(false, |any, j| any | ($dist(g, j) <= limit));
                if near {
                    limit = keep_group(query, g, base, limit, keep);
                }
            })
        };
    }
    match n {
        8 => {
            let q = word(query);
            scan!(64, |g: &[u8; 64], j: usize| (word(&g[j * 8..j * 8 + 8]) ^ q).count_ones());
        }
        16 => {
            let (q0, q1) = (word(&query[..8]), word(&query[8..]));
            scan!(128, |g: &[u8; 128], j: usize| {
                (word(&g[j * 16..j * 16 + 8]) ^ q0).count_ones()
                    + (word(&g[j * 16 + 8..j * 16 + 16]) ^ q1).count_ones()
            });
        }
        _ => {
            each_group::<BACK>(codes, n, |g, base| {
                if g.chunks_exact(n).any(|c| hamming(c, query) <= limit) {
                    limit = keep_group(query, g, base, limit, keep);
                }
            });
        }
    }
    if !BACK {
        limit = keep_group(query, rest, whole, limit, keep);
    }
    limit
}

/// The rare path of [`within`]: the codes of `group` (the first at index `base`) one by one.
#[cold]
#[inline(never)]
fn keep_group(
    query: &[u8],
    group: &[u8],
    base: usize,
    mut limit: u32,
    keep: &mut impl FnMut(usize, u32) -> u32,
) -> u32 {
    for (j, c) in group.chunks_exact(query.len()).enumerate() {
        let d = hamming(c, query);
        if d <= limit {
            limit = keep(base + j, d);
        }
    }
    limit
}

/// Number of set bits.
#[inline]
pub fn popcount(a: &[u8]) -> u32 {
    a.chunks_exact(8).map(|x| u64::from_ne_bytes(x.try_into().unwrap()).count_ones()).sum()
}

/// Total order used by the btree opclass: lexicographic by bit, a proper prefix sorts first
/// (the same order as PostgreSQL's `bit`).
pub fn compare(a_bits: u32, a: &[u8], b_bits: u32, b: &[u8]) -> Ordering {
    let common = payload_bytes(a_bits.min(b_bits));
    // Padding is zero, so comparing whole payload bytes of the shorter length is exact up to the
    // shorter code's last bit, except that the longer code may carry ones in that last partial
    // byte: those make it greater, which is also what bit order says.
    a[..common].cmp(&b[..common]).then(a_bits.cmp(&b_bits))
}

/// 64-bit hash of a code (the padding is zero, so equal codes hash equally). `seed` supports
/// PostgreSQL's extended hash functions (hash partitioning).
pub fn hash64(nbits: u32, bytes: &[u8], seed: u64) -> u64 {
    let mut h = crate::rng::splitmix64(seed ^ u64::from(nbits).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for chunk in bytes.chunks_exact(8) {
        h = crate::rng::splitmix64(h ^ u64::from_ne_bytes(chunk.try_into().unwrap()));
    }
    h
}

/// Writes the code as one `0`/`1` character per bit.
pub fn format_bits(nbits: u32, bytes: &[u8]) -> String {
    (0..nbits).map(|i| if get_bit(bytes, i) { '1' } else { '0' }).collect()
}

/// Writes the code as `x` followed by one hex digit per four bits. Only for lengths that are a
/// multiple of 4 (the only ones whose hex form reads back to the same length).
pub fn format_hex(nbits: u32, bytes: &[u8]) -> Option<String> {
    if !nbits.is_multiple_of(4) {
        return None;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(1 + nbits as usize / 4);
    s.push('x');
    for i in 0..(nbits / 4) as usize {
        let b = bytes[i / 2];
        let nib = if i % 2 == 0 { b >> 4 } else { b & 0x0F };
        s.push(HEX[nib as usize] as char);
    }
    Some(s)
}

/// Bitwise combination of two codes of the same length.
pub fn combine(
    a_bits: u32,
    a: &[u8],
    b_bits: u32,
    b: &[u8],
    op: impl Fn(u8, u8) -> u8,
) -> Result<Vec<u8>, CodeError> {
    if a_bits != b_bits {
        return Err(CodeError::LengthMismatch { left: a_bits, right: b_bits });
    }
    Ok(a.iter().zip(b).map(|(x, y)| op(*x, *y)).collect())
}

/// Complement, keeping the padding zero.
pub fn complement(nbits: u32, a: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = a.iter().map(|x| !x).collect();
    clear_padding(nbits, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_hamming(a: &Code, b: &Code) -> u32 {
        (0..a.nbits()).filter(|&i| a.get(i) != b.get(i)).count() as u32
    }

    #[test]
    fn parses_binary_and_hex() {
        let c = Code::parse("0110").unwrap();
        assert_eq!(c.nbits(), 4);
        assert_eq!(c.bytes(), &[0x60, 0, 0, 0, 0, 0, 0, 0]);
        let h = Code::parse("x3fA0").unwrap();
        assert_eq!(h.nbits(), 16);
        assert_eq!(&h.bytes()[..2], &[0x3f, 0xa0]);
        assert_eq!(format_hex(16, h.bytes()).unwrap(), "x3fa0");
        assert_eq!(format_bits(4, c.bytes()), "0110");
        assert_eq!(format_hex(3, Code::parse("101").unwrap().bytes()), None);
    }

    #[test]
    fn rejects_bad_literals() {
        assert_eq!(Code::parse(""), Err(CodeError::Empty));
        assert_eq!(Code::parse("x"), Err(CodeError::Empty));
        assert_eq!(Code::parse("0120"), Err(CodeError::InvalidBinaryDigit { ch: '2', pos: 3 }));
        assert_eq!(Code::parse("x0g"), Err(CodeError::InvalidHexDigit { ch: 'g', pos: 3 }));
        assert_eq!(Code::parse(" 01"), Err(CodeError::InvalidBinaryDigit { ch: ' ', pos: 1 }));
        assert_eq!(Code::parse(&"1".repeat(4097)), Err(CodeError::TooLong { nbits: 4097 }));
        assert!(Code::parse(&"1".repeat(4096)).is_ok());
        assert_eq!(Code::parse(&format!("x{}", "f".repeat(1025))), Err(CodeError::TooLong { nbits: 4100 }));
    }

    #[test]
    fn u64_is_msb_first() {
        let c = Code::from_u64(0x8000_0000_0000_0001);
        assert!(c.get(0));
        assert!(c.get(63));
        assert_eq!(popcount(c.bytes()), 2);
    }

    #[test]
    fn signs() {
        let c = Code::from_signs([0.5, -1.0, 0.0, 2.0]).unwrap();
        assert_eq!(format_bits(c.nbits(), c.bytes()), "1001");
        assert_eq!(Code::from_signs([1.0, f64::NAN]), Err(CodeError::NaN { index: 2 }));
        assert_eq!(Code::from_signs(Vec::<f64>::new()), Err(CodeError::EmptyArray));
    }

    #[test]
    fn compare_orders_by_bits_then_length() {
        let c = |s| Code::parse(s).unwrap();
        let cmp = |a: &Code, b: &Code| compare(a.nbits(), a.bytes(), b.nbits(), b.bytes());
        assert_eq!(cmp(&c("0110"), &c("0111")), Ordering::Less);
        assert_eq!(cmp(&c("011"), &c("0110")), Ordering::Less);
        assert_eq!(cmp(&c("0111"), &c("011")), Ordering::Greater);
        assert_eq!(cmp(&c("1"), &c("0111")), Ordering::Greater);
        assert_eq!(cmp(&c("0110"), &c("0110")), Ordering::Equal);
    }

    #[test]
    fn padding_checks() {
        let mut b = vec![0xFFu8; 8];
        clear_padding(12, &mut b);
        assert_eq!(b, [0xFF, 0xF0, 0, 0, 0, 0, 0, 0]);
        assert!(padding_is_clear(12, &b));
        b[1] = 0xF8;
        assert!(!padding_is_clear(12, &b));
    }

    fn code_strategy(nbits: u32) -> impl Strategy<Value = Code> {
        proptest::collection::vec(any::<bool>(), nbits as usize).prop_map(move |v| {
            let mut c = Code::zeros(nbits);
            for (i, on) in v.into_iter().enumerate() {
                c.set(i as u32, on);
            }
            c
        })
    }

    /// `n` random codes of `nbits` bits back to back, word-padded (the padding random too, for
    /// the kernel and its reference alike), and a query: (bytes per code, codes, query).
    fn random_codes(nbits: u32, n: usize, seed: u64) -> (usize, Vec<u8>, Vec<u8>) {
        let mut rng = crate::rng::SeededRng::new(seed);
        let cb = storage_bytes(nbits);
        let mut codes = vec![0u8; n * cb];
        codes.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        let query: Vec<u8> = (0..cb).map(|_| rng.next_u64() as u8).collect();
        (cb, codes, query)
    }

    /// The order in which `within_in` takes `n` codes going `direction`: groups of eight in order,
    /// the codes of a group (and the rest after the last whole group, first going back) first
    /// to last.
    fn kernel_order(direction: Direction, n: usize) -> Vec<usize> {
        let whole = n / GROUP * GROUP;
        let groups: Vec<usize> = (0..whole / GROUP).collect();
        let rest = whole..n;
        match direction {
            Direction::Forward => (0..n).collect(),
            Direction::Backward => {
                rest.chain(groups.iter().rev().flat_map(|g| g * GROUP..(g + 1) * GROUP)).collect()
            }
        }
    }

    /// Both paths of `within_in`, both ways, on many groups of 64-, 128- and 256-bit codes, at
    /// every limit, with a `keep` that leaves the limit where it is (a radius read) and one that
    /// lowers it.
    #[test]
    fn within_vector_and_scalar_paths_agree_on_long_runs() {
        for (bits, seed) in [(64u32, 1u64), (128, 2), (256, 5), (64, 3), (128, 4), (256, 6), (192, 7)] {
            let (cb, codes, query) = random_codes(bits, 1003, seed);
            for direction in [Direction::Forward, Direction::Backward] {
                for limit in (0..=bits).step_by(3) {
                    for lowers in [false, true] {
                        let step = |d: u32, l: u32| if lowers { d.saturating_sub(1) } else { l };
                        let (mut got, mut scalar) = (Vec::new(), Vec::new());
                        let a = within_in(direction, &query, &codes, limit, |i, d| {
                            got.push((i, d));
                            step(d, limit)
                        });
                        let mut keep = |i, d| {
                            scalar.push((i, d));
                            step(d, limit)
                        };
                        let b = match direction {
                            Direction::Forward => within_groups::<false>(&query, &codes, limit, &mut keep),
                            Direction::Backward => within_groups::<true>(&query, &codes, limit, &mut keep),
                        };
                        let mut lim = limit;
                        let want: Vec<(usize, u32)> = kernel_order(direction, codes.len() / cb)
                            .into_iter()
                            .filter_map(|i| {
                                let d = hamming(&codes[i * cb..(i + 1) * cb], &query);
                                (d <= lim).then(|| {
                                    lim = step(d, lim);
                                    (i, d)
                                })
                            })
                            .collect();
                        let at = format!("{bits} bits, {direction:?}, limit {limit}");
                        assert_eq!((&got, a), (&want, lim), "{at}");
                        assert_eq!((&scalar, b), (&want, lim), "{at}");
                    }
                }
            }
        }
    }

    fn pair_strategy() -> impl Strategy<Value = (Code, Code)> {
        (1u32..=300).prop_flat_map(|n| (code_strategy(n), code_strategy(n)))
    }

    proptest! {
        #[test]
        fn hamming_matches_naive((a, b) in pair_strategy()) {
            prop_assert_eq!(hamming(a.bytes(), b.bytes()), naive_hamming(&a, &b));
            prop_assert_eq!(hamming(a.bytes(), a.bytes()), 0);
        }

        #[test]
        fn distances_match_hamming(q in 0u32..=300, n in 0usize..20, seed in any::<u64>()) {
            let (cb, codes, query) = random_codes(q.max(1), n, seed);
            let mut got = vec![7];
            distances(&query, &codes, &mut got);
            let want: Vec<u32> =
                std::iter::once(7).chain(codes.chunks_exact(cb).map(|c| hamming(c, &query))).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn within_keeps_exactly_the_codes_within_a_shrinking_limit(
            q in 0u32..=300, n in 0usize..40, limit in 0u32..80, seed in any::<u64>()
        ) {
            let (cb, codes, query) = random_codes(q.max(1), n, seed);
            // keep lowers the limit to the distance just kept, so later codes must be closer.
            let mut got = Vec::new();
            let last = within(&query, &codes, limit, |i, d| {
                got.push((i, d));
                d.saturating_sub(1)
            });
            let (mut want, mut lim) = (Vec::new(), limit);
            for (i, c) in codes.chunks_exact(cb).enumerate() {
                let d = hamming(c, &query);
                if d <= lim {
                    want.push((i, d));
                    lim = d.saturating_sub(1);
                }
            }
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(last, lim);
            // The scalar loop too, which CPUs without the vector path take.
            let mut scalar = Vec::new();
            let last = within_groups::<false>(&query, &codes, limit, &mut |i, d| {
                scalar.push((i, d));
                d.saturating_sub(1)
            });
            prop_assert_eq!(&scalar, &want);
            prop_assert_eq!(last, lim);
        }

        #[test]
        fn text_round_trips((a, _b) in pair_strategy()) {
            let bits = format_bits(a.nbits(), a.bytes());
            prop_assert_eq!(Code::parse(&bits).unwrap(), a.clone());
            if let Some(hex) = format_hex(a.nbits(), a.bytes()) {
                prop_assert_eq!(Code::parse(&hex).unwrap(), a.clone());
            }
        }

        #[test]
        fn xor_popcount_is_hamming((a, b) in pair_strategy()) {
            let x = combine(a.nbits(), a.bytes(), b.nbits(), b.bytes(), |p, q| p ^ q).unwrap();
            prop_assert_eq!(popcount(&x), hamming(a.bytes(), b.bytes()));
            let n = complement(a.nbits(), a.bytes());
            prop_assert_eq!(popcount(&n), a.nbits() - popcount(a.bytes()));
            prop_assert!(padding_is_clear(a.nbits(), &n));
        }

        #[test]
        fn compare_matches_string_order(
            a in (1u32..=200).prop_flat_map(code_strategy),
            b in (1u32..=200).prop_flat_map(code_strategy),
        ) {
            let sa = format_bits(a.nbits(), a.bytes());
            let sb = format_bits(b.nbits(), b.bytes());
            prop_assert_eq!(compare(a.nbits(), a.bytes(), b.nbits(), b.bytes()), sa.cmp(&sb));
            let equal = a == b;
            prop_assert_eq!(hash64(a.nbits(), a.bytes(), 7) == hash64(b.nbits(), b.bytes(), 7), equal);
        }
    }
}
