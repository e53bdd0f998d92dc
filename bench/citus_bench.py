"""Issue 14: jdsh on Citus (a coordinator and two workers) against the same data on one node.

For each data set: load by COPY and build the mih index on one node (a plain table on the
coordinator) and on the cluster (a hash-distributed table over the two workers, once per --shards
count); then exact top-10 queries (`ORDER BY code <~> q LIMIT 10`, the query code as a literal, one client,
interleaved) and the throughput of 4 concurrent clients for a fixed time. Every answer is scored
against numpy's exact distances (recall@10, tie-aware). Writes out/citus.md and out/citus.json.
Run by bench/citus.sh, which starts the cluster.
"""

import argparse
import json
import statistics
import threading
import time

import psycopg

from common import cpu_name
from mih_bench import Truth, copy_buffer, hex_literal, log, make_dataset, size_label

KNN = "SELECT id FROM {t} ORDER BY code <~> %s::bitcode LIMIT 10"


def connect(port: int):
    return psycopg.connect(host="127.0.0.1", port=port, dbname="jdsh", user="postgres", autocommit=True)


def load(conn, table: str, ds, shards: int) -> dict:
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int, code bitcode({ds.bits}), bv bit({ds.bits}))")
    if shards:
        conn.execute("SELECT create_distributed_table(%s, 'id', shard_count => %s)", (table, shards))
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} (id, code, bv) FROM STDIN") as copy:
            for start in range(0, ds.n, 500_000):
                copy.write(copy_buffer(ds.codes[start:start + 500_000], start))
    t_load = time.perf_counter() - t0
    conn.execute(f"ALTER TABLE {table} DROP COLUMN bv")
    conn.execute(f"VACUUM ANALYZE {table}")
    t0 = time.perf_counter()
    conn.execute(f"CREATE INDEX {table}_mih ON {table} USING mih (code)")
    t_index = time.perf_counter() - t0
    conn.execute(f"ANALYZE {table}")
    log(f"  {table}: COPY {t_load:.1f} s, CREATE INDEX {t_index:.1f} s")
    return {"load_s": t_load, "index_s": t_index}


def latency(conns: dict, ds, truth: Truth, nq: int) -> dict:
    """p50/p95 ms per setup, one client, the setups interleaved query by query."""
    lits = [hex_literal(q) for q in ds.queries[:nq]]
    times = {name: [] for name in conns}
    recall = {name: [] for name in conns}
    for warm in ds.warmup[:10]:
        for name, (conn, table) in conns.items():
            conn.execute(KNN.format(t=table), (hex_literal(warm),)).fetchall()
    for qi, lit in enumerate(lits):
        for name, (conn, table) in conns.items():
            t0 = time.perf_counter()
            rows = conn.execute(KNN.format(t=table), (lit,)).fetchall()
            times[name].append(time.perf_counter() - t0)
            recall[name].append(truth.score_knn(qi, [r[0] for r in rows], 10))
    out = {}
    for name in conns:
        t = sorted(times[name])
        out[name] = {"p50_ms": 1e3 * statistics.median(t), "p95_ms": 1e3 * t[int(0.95 * (len(t) - 1))],
                     "recall": statistics.mean(recall[name]), "queries": len(t)}
    return out


def throughput(port: int, table: str, ds, clients: int, seconds: float) -> float:
    """Queries per second of `clients` connections, each running top-10 queries back to back."""
    lits = [hex_literal(q) for q in ds.queries]
    counts = [0] * clients
    errors = []
    ready = threading.Barrier(clients + 1)
    window = {}

    def worker(i: int):
        try:
            conn = connect(port)
            # Warm: a new session's first distributed queries open the connections to the
            # workers, whose new backends then load jdsh (and libtorch) once.
            for w in ds.warmup:
                conn.execute(KNN.format(t=table), (hex_literal(w),)).fetchall()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
        ready.wait()
        j = i
        while not errors and time.perf_counter() < window["stop"]:
            conn.execute(KNN.format(t=table), (lits[j % len(lits)],)).fetchall()
            counts[i] += 1
            j += clients
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    window["stop"] = float("inf")
    ready.wait()
    window["stop"] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"throughput on {table}: {errors[0]}")
    return sum(counts) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=54381, help="the coordinator's port")
    ap.add_argument("--sets", default="1m:learned,10m:clustered", help="size:kind,… (64-bit codes)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--shards", default="2,8", help="shard counts of the distributed table, each a row")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--keep", action="store_true", help="keep the last set's tables (bench_single, bench_dist)")
    args = ap.parse_args()
    conn = connect(args.port)
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'").fetchone()[0]
    results = []
    for spec in args.sets.split(","):
        size, kind = spec.split(":")
        n = int(float(size[:-1]) * {"k": 1e3, "m": 1e6}[size[-1].lower()])
        log(f"{size_label(n)} x 64-bit {kind}: generating")
        ds = make_dataset(n, 64, kind, args.queries, 10, seed=14)
        truth = Truth(ds)
        single = load(conn, "bench_single", ds, 0)
        for shards in [int(x) for x in args.shards.split(",")]:
            dist = load(conn, "bench_dist", ds, shards)
            for name, table, want in (("one node", "bench_single", "Index Scan using bench_single_mih"),
                                      ("Citus", "bench_dist", "Index Scan using bench_dist_mih_")):
                # (The literal inlined: Citus cannot show the workers' plans of a parameterised query.)
                sql = KNN.format(t=table).replace("%s", f"'{hex_literal(ds.queries[0])}'")
                plan = "\n".join(r[0] for r in conn.execute("EXPLAIN (COSTS OFF) " + sql))
                if want not in plan:
                    raise SystemExit(f"{name}: top-10 is not a mih index scan:\n{plan}")
            lat = latency({"one node": (conn, "bench_single"), "Citus": (connect(args.port), "bench_dist")}, ds,
                          truth, args.queries)
            qps_single = throughput(args.port, "bench_single", ds, args.clients, args.seconds)
            qps_dist = throughput(args.port, "bench_dist", ds, args.clients, args.seconds)
            row = {"set": f"{size_label(n)} x 64-bit {kind}", "shards": shards,
                   "single": {**single, **lat["one node"], "qps": qps_single},
                   "citus": {**dist, **lat["Citus"], "qps": qps_dist}}
            row["overhead_ms"] = row["citus"]["p50_ms"] - row["single"]["p50_ms"]
            log(f"  {shards} shards: one node p50 {row['single']['p50_ms']:.2f} ms, Citus {row['citus']['p50_ms']:.2f} ms "
                f"(+{row['overhead_ms']:.2f}); {qps_single:.0f} vs {qps_dist:.0f} q/s with {args.clients} clients")
            results.append(row)
        if not (args.keep and spec == args.sets.split(",")[-1]):
            conn.execute("DROP TABLE bench_single")
            conn.execute("DROP TABLE bench_dist")
    meta = {"cpu": cpu_name(), "citus": version, "queries": args.queries, "clients": args.clients,
            "seconds": args.seconds}
    with open(f"{args.out}/citus.json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    lines = [f"Citus {version} (coordinator + 2 workers, all on one {meta['cpu']} VM) vs one node; "
             f"exact top-10, {args.queries} queries, one client (p50 / p95 ms); throughput: {args.clients} "
             f"clients for {args.seconds:.0f} s.", "",
             "| data | setup | COPY s | CREATE INDEX s | top-10 p50 / p95 ms | recall@10 | q/s, 4 clients |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        for name, key in (("one node", "single"), (f"Citus, {r['shards']} shards", "citus")):
            x = r[key]
            lines.append(f"| {r['set']} | {name} | {x['load_s']:.1f} | {x['index_s']:.1f} | "
                         f"{x['p50_ms']:.2f} / {x['p95_ms']:.2f} | {x['recall']:.3f} | {x['qps']:.0f} |")
        lines.append(f"| {r['set']} | Citus overhead, {r['shards']} shards | | | **{r['overhead_ms']:+.2f} ms** | | |")
    with open(f"{args.out}/citus.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
