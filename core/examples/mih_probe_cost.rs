//! Where an exact top-10 search's time goes without PostgreSQL buffers: 1M learned-like 64-bit codes
//! in a MemStore, 100 queries, µs per query with probes and new candidates counted, for m = 3,
//! 4, 5 (issue 13). `cargo run --release -p jdsh-core --example mih_probe_cost [rows]`.
use jdsh_core::code::storage_bytes;
use jdsh_core::mih::{MemStore, Mih, Params, Search, Tid};
use jdsh_core::rng::SeededRng;
use std::time::Instant;

fn learned_like(n: usize, nbits: u32, centres: usize, spread: f64, seed: u64) -> Vec<u8> {
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

fn main() {
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    let nbits = 64;
    let codes = learned_like(n + 100, nbits, 20000, 0.45, 7);
    let cb = storage_bytes(nbits);
    let (table, queries) = codes.split_at(n * cb);
    let tids: Vec<Tid> = (0..n).map(|i| Tid::new(1 + (i / 100) as u32, 1 + (i % 100) as u16)).collect();
    for m in [3u32, 4, 5] {
        let p = Params::choose(nbits, n as u64, Some(m), 90).unwrap();
        let mih = Mih::build(MemStore::new(), p, table, &tids, |_| {}).unwrap();
        let t0 = Instant::now();
        let (mut pr, mut ca, mut fs) = (0, 0, 0);
        for q in 0..100 {
            let mut s = Search::new(&mih, &queries[q * cb..(q + 1) * cb], None).unwrap();
            for _ in 0..10 {
                s.next(&mih).unwrap();
            }
            pr += s.stats.probes;
            ca += s.stats.candidates;
            fs += s.stats.full_scans;
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / 100.0;
        println!(
            "m={m}: {us:.0} us/query, {} probes, {} candidates, {} whole-table reads in 100 queries",
            pr / 100,
            ca / 100,
            fs
        );
    }
}
