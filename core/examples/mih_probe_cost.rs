//! Where an exact top-10 search's time goes without PostgreSQL buffers: 1M learned-like 64-bit codes
//! in a MemStore, 100 queries, µs per query with probes and new candidates counted, for m = 3,
//! 4, 5 (issue 13). `cargo run --release -p jdsh-core --example mih_probe_cost [rows]`.
use jdsh_core::code::storage_bytes;
use jdsh_core::mih::{MemStore, Mih, Params, Search, Tid};
use jdsh_core::synthetic::learned_like;
use std::time::Instant;

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
