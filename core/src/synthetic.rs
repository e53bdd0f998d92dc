//! Synthetic codes for the tests, examples and benchmarks of the index.

use crate::code::storage_bytes;
use crate::rng::SeededRng;

/// `n` codes "like learned codes", back to back (`storage_bytes(nbits)` each): the signs of
/// `nbits` random projections of points drawn from a mixture of `centres` Gaussians (unit
/// variance centres, `spread` around them) in 32 dimensions. Bits come out balanced and items
/// spread out, as a hashing model's codes are; a larger `spread` puts neighbours further apart.
pub fn learned_like(n: usize, nbits: u32, centres: usize, spread: f64, seed: u64) -> Vec<u8> {
    let dim = 32;
    let mut rng = SeededRng::new(seed);
    let proj: Vec<f64> = (0..nbits as usize * dim).map(|_| rng.normal()).collect();
    let mu: Vec<f64> = (0..centres * dim).map(|_| rng.normal()).collect();
    let cb = storage_bytes(nbits);
    let mut out = vec![0u8; n * cb];
    let mut x = vec![0f64; dim];
    for i in 0..n {
        let c = rng.below(centres as u64) as usize;
        for (d, v) in x.iter_mut().enumerate() {
            *v = mu[c * dim + d] + spread * rng.normal();
        }
        for b in 0..nbits as usize {
            let s: f64 = (0..dim).map(|d| proj[b * dim + d] * x[d]).sum();
            if s > 0.0 {
                out[i * cb + b / 8] |= 1 << (b % 8);
            }
        }
    }
    out
}
