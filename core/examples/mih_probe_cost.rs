//! Where an exact top-10 search's time goes without PostgreSQL buffers: 1M learned-like 64-bit codes
//! in a MemStore, 100 queries, µs per query with probes and new candidates counted, for m = 3,
//! 4, 5 (issue 13). `cargo run --release -p jdsh-core --example mih_probe_cost [rows]`.
use jdsh_core::code::storage_bytes;
use jdsh_core::mih::layout::NEVER_READ;
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
    // MIH_K: the k of the top-k searches (10); MIH_CASE=m:budget runs one case (for a profiler).
    let k: usize = std::env::var("MIH_K").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let only = std::env::var("MIH_CASE").ok();
    for (m, budget) in [(3u32, NEVER_READ), (4, NEVER_READ), (5, NEVER_READ), (4, 0), (4, 100)] {
        if only.as_ref().is_some_and(|c| *c != format!("{m}:{budget}")) {
            continue;
        }
        let p = Params::choose(nbits, n as u64, Some(m), 90).unwrap();
        let mih = Mih::build(MemStore::new(), p, budget, None, table, &tids, |_| {}).unwrap();
        let t0 = Instant::now();
        let (mut pr, mut ca, mut fs, mut vi) = (0, 0, 0, 0);
        let reps: u64 = if only.is_some() { 20 } else { 1 };
        for q in (0..100).cycle().take(100 * reps as usize) {
            let mut s = Search::new(&mih, &queries[q * cb..(q + 1) * cb], None).unwrap();
            for _ in 0..k {
                s.next(&mih).unwrap();
            }
            pr += s.stats.probes;
            ca += s.stats.candidates;
            vi += s.stats.visited;
            fs += s.stats.full_scans;
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / (100 * reps) as f64;
        println!(
            "m={m}, probe budget {budget}, k = {k}: {us:.0} us/query, {} probes, {} entries visited, {} candidates, {} whole-table reads in {} queries",
            pr / (100 * reps),
            vi / (100 * reps),
            ca / (100 * reps),
            fs,
            100 * reps
        );
    }
}
