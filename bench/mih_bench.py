#!/usr/bin/env python3
"""Exact Hamming search benchmark of issue 4: jdsh MIH index against its peers, in one run.

Run it through bench/mih.sh, which creates the venv, installs pgvector, starts the side cluster and
passes the connection through the PG* environment variables. For every (size, bits, set) it

  1. generates codes and 100 queries (not in the table) with numpy and a fixed seed, and the exact
     ground truth with numpy (independent of every method measured);
  2. loads them with COPY into a table (id int, code bitcode(b), bv bit(b)) and builds the indexes
     (jdsh MIH, pgvector HNSW), timing each build and reading its size;
  3. times every method on the same queries, one query per call, interleaved query by query (in
     an order shuffled at each query) so that the load of other processes on the machine and the
     state of the CPU's caches spread over all methods alike;
  4. scores recall against the ground truth, tie-aware.

It writes bench/out/mih.json (everything) and bench/out/mih.md (tables for the README).
"""
import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from common import cpu_name

P_FLIP = 0.1  # clustered set: each bit of a centre flipped with this probability
N_CENTRES = 1000
# Learned-like set (issue 13): the signs of `bits` random projections of points drawn from a
# mixture of 20,000 Gaussians in 128 dimensions, as a hashing model's codes are: balanced bits,
# items spread out. The spread is set so that at 1M x 64 bits the median distance to the 1st /
# 10th neighbour is about 7 / 10 (measured: 0.45 gives 6-7 / 10; 0.5 gives 7 / 11).
LEARNED_CENTRES = 20_000
LEARNED_DIM = 128
LEARNED_SPREAD = 0.45
KS = (1, 10, 100)
RADII = (0, 1, 2, 3, 4)
HNSW_MAX_ROWS = 2_000_000  # pgvector HNSW takes ~219 s per million codes: not built above this
# Above this size the sequential scans (seconds per query) run only these query kinds.
SLOW_BIG_ROWS = 2_000_000
SLOW_BIG_KINDS = ("k=10", "r=3")
SEQ_SETTINGS = {"enable_indexscan": "off", "enable_bitmapscan": "off",
                "enable_indexonlyscan": "off"}
TABLE = "bench_codes"
# pgvector has no index for "within r": its radius rows are a seq scan with a filter.
RADIUS_LABELS = {"pgvector exact scan": "pgvector post-filter (seq scan)"}


def log(msg: str) -> None:
    print(f"[mih {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# ---------------------------------------------------------------- data

def rng_for(seed: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng([seed, *parts])


def noise(rng: np.random.Generator, rows: int, bits: int) -> np.ndarray:
    """Packed masks with each bit set with probability P_FLIP (MSB-first, as bitcode and bit)."""
    return np.packbits(rng.random((rows, bits), dtype=np.float32) < P_FLIP, axis=1)


def noisy_copies(rng, centres: np.ndarray, rows: int, chunk: int = 250_000) -> np.ndarray:
    bits = centres.shape[1] * 8
    out = np.empty((rows, centres.shape[1]), np.uint8)
    for start in range(0, rows, chunk):  # chunks keep the float mask small at 10M rows
        m = min(chunk, rows - start)
        which = rng.integers(0, len(centres), m)
        out[start:start + m] = centres[which] ^ noise(rng, m, bits)
    return out


def learned_like(seed: int, bits: int, rng: np.random.Generator, rows: int,
                 chunk: int = 250_000) -> np.ndarray:
    g = rng_for(seed, bits, 98)
    mu = g.standard_normal((LEARNED_CENTRES, LEARNED_DIM), dtype=np.float32)
    proj = g.standard_normal((LEARNED_DIM, bits), dtype=np.float32)
    out = np.empty((rows, bits // 8), np.uint8)
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        x = mu[rng.integers(0, LEARNED_CENTRES, m)]
        x += LEARNED_SPREAD * rng.standard_normal((m, LEARNED_DIM), dtype=np.float32)
        out[start:start + m] = np.packbits(x @ proj > 0, axis=1)
    return out


@dataclass
class Dataset:
    n: int
    bits: int
    kind: str  # uniform | clustered | learned
    codes: np.ndarray  # (n, bits/8) uint8, row i is id i
    queries: np.ndarray  # (nq, bits/8) uint8
    warmup: np.ndarray  # extra queries of the same distribution, never measured

    @property
    def label(self) -> str:
        return f"{size_label(self.n)} x {self.bits}-bit {self.kind}"


def make_dataset(n: int, bits: int, kind: str, nq: int, nwarm: int, seed: int) -> Dataset:
    kind_id = {"uniform": 1, "clustered": 2, "learned": 3}[kind]
    nbytes = bits // 8
    # Queries depend on (bits, set) only, not on n: the scaling rows ask the same questions.
    qrng = rng_for(seed, bits, kind_id, 0)
    drng = rng_for(seed, bits, kind_id, n)
    if kind == "uniform":
        codes = drng.integers(0, 256, (n, nbytes), dtype=np.uint8)
        queries = qrng.integers(0, 256, (nq + nwarm, nbytes), dtype=np.uint8)
    elif kind == "learned":
        codes = learned_like(seed, bits, drng, n)
        queries = learned_like(seed, bits, qrng, nq + nwarm)
    else:
        centres = rng_for(seed, bits, 99).integers(0, 256, (N_CENTRES, nbytes), dtype=np.uint8)
        codes = noisy_copies(drng, centres, n)
        queries = noisy_copies(qrng, centres, nq + nwarm)
    return Dataset(n, bits, kind, codes, queries[:nq], queries[nq:])


def hex_literal(code: np.ndarray) -> str:
    """'x…' MSB-first: read by both bitcode_in and PostgreSQL's bit_in."""
    return "x" + code.tobytes().hex()


# ---------------------------------------------------------------- ground truth

class Truth:
    """Exact answers computed with numpy popcounts, independent of every method measured."""

    def __init__(self, ds: Dataset):
        self.words = np.ascontiguousarray(ds.codes).view(np.uint64)
        self.qwords = np.ascontiguousarray(ds.queries).view(np.uint64)
        self.kth = []  # per query: {k: distance of the k-th nearest}
        self.near = []  # per query: (ids, dists) of every code within max(RADII)
        for qi in range(len(self.qwords)):
            d = self.distances(qi)
            ks = [k for k in KS if k <= len(d)]
            part = np.partition(d, [k - 1 for k in ks])
            self.kth.append({k: int(part[k - 1]) for k in ks})
            ids = np.flatnonzero(d <= max(RADII))
            self.near.append((ids, d[ids]))

    def distances(self, qi: int, ids=None) -> np.ndarray:
        words = self.words if ids is None else self.words[ids]
        return np.bitwise_count(words ^ self.qwords[qi]).sum(axis=1, dtype=np.int32)

    def score_knn(self, qi: int, ids: list, k: int) -> float:
        """Recall@k, tie-aware: a returned row is right if its distance <= the true k-th."""
        ids = list(dict.fromkeys(i for i in ids if 0 <= i < len(self.words)))[:k]
        if not ids:
            return 0.0
        d = self.distances(qi, np.asarray(ids))
        return float((d <= self.kth[qi][k]).sum()) / k

    def score_radius(self, qi: int, ids: list, r: int) -> tuple:
        """(hits, true count, wrong): wrong = returned rows farther than r (must be 0)."""
        tids, tdist = self.near[qi]
        truth = set(tids[tdist <= r].tolist())
        got = set(ids)
        return len(got & truth), len(truth), len(got - truth)


# ---------------------------------------------------------------- methods

# A query function: query index -> (seconds, returned ids)
QueryFn = Callable[[int], tuple]


@dataclass
class Task:
    row: str  # method label, a row of the tables
    col: str  # "k=10" or "r=3"
    fn: QueryFn
    slow: bool = False  # sequential scans: fewer queries
    times: list = field(default_factory=list)
    scores: list = field(default_factory=list)

    @property
    def k(self) -> Optional[int]:
        return int(self.col[2:]) if self.col.startswith("k=") else None

    @property
    def r(self) -> Optional[int]:
        return int(self.col[2:]) if self.col.startswith("r=") else None


class Pg:
    """Connections and SQL for the PostgreSQL methods."""

    def __init__(self, dbname: str):
        import psycopg
        self.psycopg = psycopg
        self.dbname = dbname
        self.admin = self.connect({})
        self.conns = []

    def connect(self, settings: dict):
        conn = self.psycopg.connect(dbname=self.dbname, autocommit=True)
        for name, value in settings.items():
            conn.execute(f"SET {name} = {value}")
        return conn

    def method_conn(self, settings: dict):
        """One connection per method: a cached plan is not re-planned when a GUC changes."""
        conn = self.connect(settings)
        self.conns.append(conn)
        return conn

    def close_methods(self):
        for conn in self.conns:
            conn.close()
        self.conns = []

    def one(self, sql: str, params=None):
        row = self.admin.execute(sql, params).fetchone()
        return row[0] if row else None

    def exists(self, sql: str) -> bool:
        return bool(self.one(sql))

    def query_fn(self, conn, sql: str, literals: list) -> QueryFn:
        cur = conn.cursor()

        def run(qi: int):
            t0 = time.perf_counter()
            cur.execute(sql, (literals[qi],), prepare=True)
            rows = cur.fetchall()
            return time.perf_counter() - t0, [r[0] for r in rows]
        return run

    def plan(self, conn, sql: str, literal: str) -> str:
        """The plan's nodes, outermost first, e.g. 'Limit > Index Scan using bench_mih'."""
        doc = conn.execute("EXPLAIN (COSTS OFF, FORMAT JSON) " + sql, (literal,)).fetchone()[0]
        node, names = doc[0]["Plan"], []
        while node:
            index = f" using {node['Index Name']}" if "Index Name" in node else ""
            names.append(node["Node Type"] + index)
            node = (node.get("Plans") or [None])[0]
        return " > ".join(names)

    def select1(self, n: int = 200) -> list:
        cur = self.admin.cursor()
        times = []
        for i in range(n + 20):
            t0 = time.perf_counter()
            cur.execute("SELECT 1", prepare=True)
            cur.fetchall()
            if i >= 20:
                times.append(time.perf_counter() - t0)
        return times


def copy_buffer(codes: np.ndarray, first_id: int) -> bytes:
    """COPY text rows 'id<TAB>x<hex><TAB>x<hex>\\n' built with numpy (no per-row Python)."""
    n, nbytes = codes.shape
    lut = np.frombuffer(b"0123456789abcdef", np.uint8)
    hexw = 2 * nbytes
    digits = 9  # zero-padded ids: fixed width, and int4in reads leading zeros
    width = digits + 2 * (2 + hexw) + 1
    buf = np.empty((n, width), np.uint8)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    buf[:, :digits] = (ids[:, None] // 10 ** np.arange(digits - 1, -1, -1)) % 10 + ord("0")
    hexchars = np.empty((n, hexw), np.uint8)
    hexchars[:, 0::2] = lut[codes >> 4]
    hexchars[:, 1::2] = lut[codes & 15]
    col = digits
    for _ in range(2):  # the same value for code (bitcode) and bv (bit)
        buf[:, col] = ord("\t")
        buf[:, col + 1] = ord("x")
        buf[:, col + 2:col + 2 + hexw] = hexchars
        col += 2 + hexw
    buf[:, col] = ord("\n")
    return buf.tobytes()


def load_table(pg: Pg, ds: Dataset, table: str = TABLE, rows: Optional[range] = None,
               create: bool = True) -> float:
    """COPY the codes `rows` (all by default) into `table`, created unless `create` is false."""
    rows = rows if rows is not None else range(ds.n)
    t0 = time.perf_counter()
    if create:
        pg.admin.execute(f"DROP TABLE IF EXISTS {table}")
        pg.admin.execute(f"CREATE TABLE {table} (id int, code bitcode({ds.bits}), bv bit({ds.bits}))")
    chunk = 500_000
    with pg.admin.cursor() as cur:
        with cur.copy(f"COPY {table} (id, code, bv) FROM STDIN") as copy:
            for start in range(rows.start, rows.stop, chunk):
                end = min(start + chunk, rows.stop)
                copy.write(copy_buffer(ds.codes[start:end], start))
    pg.admin.execute(f"VACUUM (ANALYZE) {table}")  # hint bits and visibility map, statistics
    return time.perf_counter() - t0


def check_loaded(pg: Pg, ds: Dataset, truth: Truth) -> None:
    """The table holds the numpy codes: same distances from jdsh, pgvector and numpy."""
    ids = [0, ds.n // 2, ds.n - 1]
    q = hex_literal(ds.queries[0])
    rows = pg.admin.execute(
        f"SELECT id, code <~> %s::bitcode, (bv <~> %s::bit({ds.bits}))::int FROM {TABLE} "
        "WHERE id = ANY(%s) ORDER BY id", (q, q, ids)).fetchall()
    want = truth.distances(0, np.asarray(ids)).tolist()
    got_j = [r[1] for r in rows]
    got_v = [r[2] for r in rows]
    if got_j != want or got_v != want:
        raise SystemExit(f"loaded table disagrees with numpy: {got_j} {got_v} vs {want}")


def mih_choice(pg: Pg, index: str) -> dict:
    """What the build of a mih index chose (substrings and probe budget), when the server reports
    it (jdsh.mih_info with a probe_budget column); empty otherwise."""
    if not pg.exists("SELECT 1 FROM pg_proc WHERE proname = 'mih_info' AND 'probe_budget' = ANY(proargnames)"):
        return {}
    m, budget = pg.admin.execute(
        "SELECT substrings, probe_budget FROM jdsh.mih_info(%s)", (index,)).fetchone()
    return {"substrings": m, "probe_budget": budget}


def build_index(pg: Pg, name: str, ddl: str) -> dict:
    t0 = time.perf_counter()
    pg.admin.execute(ddl)
    seconds = time.perf_counter() - t0
    size = pg.one("SELECT pg_relation_size(%s::regclass)", (name,))
    log(f"  built {name}: {seconds:.1f} s, {size / 2**20:.1f} MiB")
    return {"seconds": seconds, "bytes": size}


# ---------------------------------------------------------------- FAISS

def faiss_timed(fn) -> QueryFn:
    def run(qi: int):
        t0 = time.perf_counter()
        ids = fn(qi)
        return time.perf_counter() - t0, ids
    return run


def faiss_tasks(ds: Dataset, builds: dict, nflips: list) -> list:
    import faiss
    faiss.omp_set_num_threads(1)  # single thread, as the Postgres backends
    tasks = []
    q = ds.queries

    def knn(index, k):
        return lambda qi: [int(i) for i in index.search(q[qi:qi + 1], k)[1][0] if i >= 0]

    def radius(index, r):  # FAISS binary range_search keeps distance < radius: pass r + 1
        return lambda qi: index.range_search(q[qi:qi + 1], r + 1)[2].tolist()

    t0 = time.perf_counter()
    flat = faiss.IndexBinaryFlat(ds.bits)
    flat.add(ds.codes)
    builds["FAISS BinaryFlat"] = {"seconds": time.perf_counter() - t0,
                                  "bytes": int(faiss.serialize_index_binary(flat).nbytes)}
    tasks += [Task("FAISS BinaryFlat", f"k={k}", faiss_timed(knn(flat, k))) for k in KS]
    tasks += [Task("FAISS BinaryFlat", f"r={r}", faiss_timed(radius(flat, r))) for r in RADII]

    # Multi-index hashing as FAISS has it: nhash tables of b bits; nhash from the MIH paper's
    # rule m = bits / log2(n). A search probes buckets within nflip bit flips in each table:
    # k-NN is approximate for any fixed nflip; radius r is exact when nflip >= floor(r / nhash)
    # (pigeonhole), so radius queries use that smallest exact nflip.
    nhash = max(1, round(ds.bits / math.log2(ds.n)))
    b = ds.bits // nhash
    t0 = time.perf_counter()
    mh = faiss.IndexBinaryMultiHash(ds.bits, nhash, b)
    mh.add(ds.codes)
    label = f"FAISS MultiHash {nhash}x{b}"
    builds[label] = {"seconds": time.perf_counter() - t0,
                     "bytes": int(faiss.serialize_index_binary(mh).nbytes)}

    def with_nflip(nflip, fn):
        def run(qi):
            mh.nflip = nflip
            return fn(qi)
        return run

    for nflip in nflips:
        tasks += [Task(f"{label} nflip={nflip}", f"k={k}",
                       faiss_timed(with_nflip(nflip, knn(mh, k)))) for k in KS]
    tasks += [Task(f"{label} nflip=floor(r/{nhash})", f"r={r}",
                   faiss_timed(with_nflip(r // nhash, radius(mh, r)))) for r in RADII]
    return tasks


# ---------------------------------------------------------------- one data set

@dataclass
class Caps:
    """What the server has: the lead's MIH index and ball operator may not exist yet."""
    mih: bool
    ball: bool
    pgvector: bool


def server_caps(pg: Pg) -> Caps:
    return Caps(
        mih=pg.exists("SELECT 1 FROM pg_am WHERE amname = 'mih'"),
        ball=pg.exists("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                       "WHERE n.nspname = 'jdsh' AND p.proname = 'ball'")
        and pg.exists("SELECT 1 FROM pg_operator WHERE oprname = '<@' "
                      "AND oprleft = 'bitcode'::regtype"),
        pgvector=pg.exists("SELECT 1 FROM pg_extension WHERE extname = 'vector'"))


def pg_task(pg: Pg, conn, label: str, col: str, sql: str, lits: list, warm: list,
            index: Optional[str], plans: dict, slow: bool = False) -> Task:
    """One series: `sql` on `conn` over the queries, warmed on `warm`; its plan is recorded and
    checked to use `index` (a sequential scan when None)."""
    plan = pg.plan(conn, sql, lits[0])
    plans[f"{label} | {col}"] = plan
    if (index and index not in plan) or (not index and "Seq Scan" not in plan):
        log(f"  WARNING: {label} {col} plan is '{plan}'")
    task = Task(label, col, pg.query_fn(conn, sql, lits), slow)
    task.warm = pg.query_fn(conn, sql, warm)
    task.index = index
    return task


def pg_tasks(pg: Pg, ds: Dataset, caps: Caps, args, builds: dict, plans: dict) -> list:
    bits = ds.bits
    lits = [hex_literal(c) for c in ds.queries]
    warm = [hex_literal(c) for c in ds.warmup]
    knn_code = "SELECT id FROM " + TABLE + " ORDER BY code <~> %s::bitcode LIMIT {k}"
    knn_bv = "SELECT id FROM " + TABLE + " ORDER BY bv <~> %s::bit(" + str(bits) + ") LIMIT {k}"
    rad_code = "SELECT id FROM " + TABLE + " WHERE code <~> %s::bitcode <= {r}"
    rad_ball = "SELECT id FROM " + TABLE + " WHERE code <@ jdsh.ball(%s::bitcode, {r})"
    rad_bv = "SELECT id FROM " + TABLE + " WHERE bv <~> %s::bit(" + str(bits) + ") <= {r}"

    methods = []  # (row, settings, knn sql or None, radius sql or None, slow, expected index)
    if "jdsh" in args.peers:
        methods.append(("jdsh seq scan", SEQ_SETTINGS, knn_code, rad_code, True, None))
        if caps.mih:
            methods.append(("jdsh MIH", {}, knn_code, rad_ball if caps.ball else None,
                            False, "bench_mih"))
    if "pgvector" in args.peers and caps.pgvector:
        methods.append(("pgvector exact scan", SEQ_SETTINGS, knn_bv, rad_bv, True, None))
        if "pgvector HNSW" in builds:
            for ef in args.ef_search:
                methods.append((f"pgvector HNSW ef_search={ef}", {"hnsw.ef_search": ef},
                                knn_bv, None, False, "bench_hnsw"))

    tasks = []
    for row, settings, knn_sql, rad_sql, slow, index in methods:
        conn = pg.method_conn(settings)
        specs = [(f"k={k}", knn_sql.format(k=k)) for k in KS] if knn_sql else []
        specs += [(f"r={r}", rad_sql.format(r=r)) for r in RADII] if rad_sql else []
        for col, sql in specs:
            if slow and ds.n > SLOW_BIG_ROWS and col not in SLOW_BIG_KINDS:
                continue
            label = RADIUS_LABELS.get(row, row) if col.startswith("r=") else row
            tasks.append(pg_task(pg, conn, label, col, sql, lits, warm, index, plans, slow))
    return tasks


def measure(tasks: list, ds: Dataset, truth: Truth, nq: int, nslow: int, nwarm: int) -> None:
    """Warm every task, then run query by query, every task on each query (interleaved, in a
    shuffled order)."""
    for task in tasks:
        warm = getattr(task, "warm", None)  # PostgreSQL tasks: on the warm-up queries
        # A sequential scan (0.1-3 s) needs no more than a cache warm-up: planning is noise.
        for wi in range(min(nwarm, 2) if task.slow else nwarm):
            (warm or task.fn)(wi % nq if warm is None else wi)
    t_report = time.time()
    for qi in range(nq):
        # In an order shuffled query by query: in a fixed order (or a rotated one) each method
        # runs after the same one, so FAISS's k = 10 and k = 100 ran on data that its k = 1 had
        # just brought into the L3 cache (32 MiB here: FAISS flat 0.9 ms so, 2.0 ms after
        # another method), while the index's pages came after FAISS and the sequential scans.
        order = np.random.default_rng([qi, 7]).permutation(len(tasks))
        for task in (tasks[i] for i in order):
            if task.slow and qi >= nslow:
                continue
            seconds, ids = task.fn(qi)
            task.times.append(seconds)
            if task.k is not None:
                task.scores.append(truth.score_knn(qi, ids, task.k))
            else:
                task.scores.append(truth.score_radius(qi, ids, task.r))
        if time.time() - t_report > 30:
            log(f"  query {qi + 1}/{nq}")
            t_report = time.time()


def summarize(task: Task) -> dict:
    ms = np.asarray(task.times) * 1000
    out = {"method": task.row, "query": task.col, "n": len(ms),
           "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
           "times_ms": [round(float(t), 4) for t in ms]}  # in query order, for outliers
    if task.k is not None:
        out["recall"] = float(np.mean(task.scores))
    else:
        hits, true, wrong = (sum(s[i] for s in task.scores) for i in range(3))
        out.update(recall=(hits / true) if true else None, wrong=wrong,
                   mean_true=true / len(task.scores))
    return out


def index_scan_counts(pg: Pg) -> dict:
    """Index scans per index, read after the method connections closed (they flush at exit)."""
    time.sleep(1.0)
    pg.admin.execute("SELECT pg_stat_clear_snapshot()")
    rows = pg.admin.execute(
        "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE relname = %s",
        (TABLE,)).fetchall()
    return dict(rows)


def run_config(pg: Optional[Pg], caps: Optional[Caps], n: int, bits: int, kind: str, args) -> dict:
    ds = make_dataset(n, bits, kind, args.queries, args.warmup, args.seed)
    log(f"{ds.label}: ground truth")
    truth = Truth(ds)
    result = {"size": n, "bits": bits, "set": kind, "builds": {}, "plans": {},
              "true_per_query": {f"r={r}": float(np.mean([(d <= r).sum() for _, d in truth.near]))
                                 for r in RADII}}
    builds = result["builds"]
    tasks = []
    if pg:
        log(f"{ds.label}: COPY into {TABLE}")
        result["load_s"] = load_table(pg, ds)
        check_loaded(pg, ds, truth)
        result["table_bytes"] = pg.one(f"SELECT pg_table_size('{TABLE}')")
        if "jdsh" in args.peers and caps.mih:
            builds["jdsh MIH"] = build_index(
                pg, "bench_mih", f"CREATE INDEX bench_mih ON {TABLE} USING mih (code){mih_with(args)}")
            builds["jdsh MIH"].update(mih_choice(pg, "bench_mih"))
        if "pgvector" in args.peers and caps.pgvector and n <= HNSW_MAX_ROWS:
            builds["pgvector HNSW"] = build_index(
                pg, "bench_hnsw", f"CREATE INDEX bench_hnsw ON {TABLE} "
                "USING hnsw (bv bit_hamming_ops) WITH (m = 16, ef_construction = 64)")
        # Every method reads from shared buffers (4 GB in the bench cluster), none from disk.
        for rel in [TABLE] + [i for i in ("bench_mih", "bench_hnsw")
                              if pg.one("SELECT to_regclass(%s) IS NOT NULL", (i,))]:
            pg.admin.execute("SELECT pg_prewarm(%s)", (rel,))
        tasks += pg_tasks(pg, ds, caps, args, builds, result["plans"])
        result["select1_ms"] = float(np.median(pg.select1()) * 1000)
    if "faiss" in args.peers:
        log(f"{ds.label}: FAISS builds")
        tasks += faiss_tasks(ds, builds, args.mh_nflips)
    nslow = min(args.queries, args.slow_queries)
    if n > SLOW_BIG_ROWS:
        nslow = min(nslow, 10)  # seconds per scan at 10M
    result["queries"], result["slow_queries"] = args.queries, nslow
    log(f"{ds.label}: {len(tasks)} series, {args.queries} queries ({nslow} for seq scans)")
    measure(tasks, ds, truth, args.queries, nslow, args.warmup)
    result["series"] = [summarize(t) for t in tasks]
    if pg:
        pg.close_methods()
        expected = {}
        for t in tasks:
            if getattr(t, "index", None):
                expected[t.index] = expected.get(t.index, 0) + len(t.times) + args.warmup
        seen = index_scan_counts(pg)
        result["index_scans"] = {i: {"expected": e, "seen": seen.get(i)}
                                 for i, e in expected.items()}
        for i, e in expected.items():
            if not seen.get(i):
                log(f"  note: {i}: pg_stat_user_indexes.idx_scan is 0 (expected {e}): the "
                    "access method does not call pgstat_count_index_scan")
            elif seen[i] < e:
                log(f"  WARNING: {i}: {seen[i]} index scans, expected {e}: "
                    "some queries did not use it")
        pg.admin.execute(f"DROP TABLE {TABLE}")
    return result


GROWN_TABLE = "bench_grown"


def run_growth(pg: Pg, n: int, bits: int, kind: str, args) -> dict:
    """An index that grew after its build against one built on all the rows (issue 13): the MIH
    index is created on the first tenth of a table, then the other nine tenths are COPYed into
    the indexed table; a second table holds the same rows loaded first and indexed after.
    Both, and FAISS BinaryFlat, answer the same k-NN queries interleaved."""
    ds = make_dataset(n, bits, kind, args.queries, args.warmup, args.seed)
    log(f"{ds.label}: growth: ground truth")
    truth = Truth(ds)
    first = n // 10
    result = {"size": n, "bits": bits, "set": kind, "growth": True, "builds": {}, "plans": {},
              "built_on": first, "true_per_query": {}}
    builds = result["builds"]
    log(f"{ds.label}: growth: {size_label(first)} rows, index, then {size_label(n - first)} more")
    load_table(pg, ds, GROWN_TABLE, range(first))
    grown = f"jdsh MIH built on {size_label(first)}, grown to {size_label(n)}"
    builds[grown] = build_index(pg, "bench_mih_grown",
                                f"CREATE INDEX bench_mih_grown ON {GROWN_TABLE} USING mih (code)")
    result["grow_s"] = load_table(pg, ds, GROWN_TABLE, range(first, n), create=False)
    builds[grown]["bytes"] = pg.one("SELECT pg_relation_size('bench_mih_grown')")
    log(f"  {size_label(n - first)} rows COPYed into the indexed table in {result['grow_s']:.1f} s "
        f"(with its VACUUM), index now {builds[grown]['bytes'] / 2**20:.1f} MiB")
    if pg.exists("SELECT 1 FROM pg_proc WHERE proname = 'mih_info'"):
        rows_for, chosen_by = pg.admin.execute(
            "SELECT built_rows, chosen_by FROM jdsh.mih_info('bench_mih_grown')").fetchone()
        result["grown_tables_for"], result["grown_chosen_by"] = rows_for, chosen_by
        log(f"  its tables are for {rows_for} rows, chosen by {chosen_by}")
        # A second VACUUM frees the tables a retune replaced (no scan of that time is left, which
        # a transaction id assigned since tells).
        pg.admin.execute("SELECT txid_current()")
        t0 = time.perf_counter()
        pg.admin.execute(f"VACUUM {GROWN_TABLE}")
        result["second_vacuum_s"] = time.perf_counter() - t0
        free = pg.one("SELECT free_pages FROM jdsh.mih_check('bench_mih_grown')")
        log(f"  a second VACUUM in {result['second_vacuum_s']:.1f} s: {free} free pages of "
            f"{builds[grown]['bytes'] // 8192} in the index")
        result["grown_free_pages"] = free
    result["load_s"] = load_table(pg, ds)
    result["table_bytes"] = pg.one(f"SELECT pg_table_size('{TABLE}')")
    built = f"jdsh MIH built on {size_label(n)}"
    builds[built] = build_index(pg, "bench_mih", f"CREATE INDEX bench_mih ON {TABLE} USING mih (code)")
    for label, index in ((grown, "bench_mih_grown"), (built, "bench_mih")):
        builds[label].update(mih_choice(pg, index))
    for rel in (GROWN_TABLE, "bench_mih_grown", TABLE, "bench_mih"):
        pg.admin.execute("SELECT pg_prewarm(%s)", (rel,))
    lits = [hex_literal(c) for c in ds.queries]
    warm = [hex_literal(c) for c in ds.warmup]
    tasks = []
    for label, table, index in ((grown, GROWN_TABLE, "bench_mih_grown"), (built, TABLE, "bench_mih")):
        conn = pg.method_conn({})
        tasks += [pg_task(pg, conn, label, f"k={k}",
                          f"SELECT id FROM {table} ORDER BY code <~> %s::bitcode LIMIT {k}",
                          lits, warm, index, result["plans"]) for k in KS]
    result["select1_ms"] = float(np.median(pg.select1()) * 1000)
    if "faiss" in args.peers:
        tasks += [t for t in faiss_tasks(ds, builds, []) if t.row == "FAISS BinaryFlat" and t.k]
    result["queries"], result["slow_queries"] = args.queries, 0
    log(f"{ds.label}: growth: {len(tasks)} series, {args.queries} queries")
    measure(tasks, ds, truth, args.queries, 0, args.warmup)
    result["series"] = [summarize(t) for t in tasks]
    pg.close_methods()
    pg.admin.execute(f"DROP TABLE {TABLE}")
    pg.admin.execute(f"DROP TABLE {GROWN_TABLE}")
    return result


def mih_with(args) -> str:
    """The `WITH (...)` of the jdsh index that `--mih-substrings` / `--mih-fillfactor` ask for."""
    opts = [f"substrings = {args.mih_substrings}"] if args.mih_substrings else []
    opts += [f"fillfactor = {args.mih_fillfactor}"] if args.mih_fillfactor else []
    return f" WITH ({', '.join(opts)})" if opts else ""


def run_paired(pg: Pg, n: int, bits: int, kind: str, args) -> dict:
    """The A/B protocol for small changes: per query, FAISS BinaryFlat and then each jdsh setting
    (`--paired "default;jdsh.mih_probe_budget=0"`), in an order rotated query by query, so that
    the machine's drift spreads over all alike; the figure is each setting's median of its own
    time over FAISS's on the same query (what the bench's separate p50s only approximate)."""
    import faiss
    faiss.omp_set_num_threads(1)
    ds = make_dataset(n, bits, kind, args.queries, args.warmup, args.seed)
    truth = Truth(ds)
    load_table(pg, ds)
    build_index(pg, "bench_mih", f"CREATE INDEX bench_mih ON {TABLE} USING mih (code){mih_with(args)}")
    pg.admin.execute("SELECT pg_prewarm(%s)", (TABLE,))
    pg.admin.execute("SELECT pg_prewarm('bench_mih')")
    flat = faiss.IndexBinaryFlat(bits)
    flat.add(ds.codes)
    lits = [hex_literal(c) for c in ds.queries]
    warm = [hex_literal(c) for c in ds.warmup]
    result = {"size": n, "bits": bits, "set": kind, "paired": True, "series": []}
    for k in KS:
        runs = [("FAISS BinaryFlat",
                 faiss_timed(lambda qi, k=k: [int(i) for i in flat.search(ds.queries[qi:qi + 1], k)[1][0]]))]
        for setting in args.paired:
            conn = pg.method_conn(dict(kv.split("=", 1) for kv in setting.split(",") if "=" in kv))
            sql = f"SELECT id FROM {TABLE} ORDER BY code <~> %s::bitcode LIMIT {k}"
            warm_up = pg.query_fn(conn, sql, warm)  # past the generic-plan switch (6th run)
            for qi in range(len(warm)):
                warm_up(qi)
            runs.append((f"jdsh {setting}", pg.query_fn(conn, sql, lits)))
        times = {label: [] for label, _ in runs}
        for qi in range(args.queries):
            turn = qi % len(runs)
            for label, run in runs[turn:] + runs[:turn]:
                seconds, ids = run(qi)
                if truth.score_knn(qi, ids, k) != 1:
                    raise SystemExit(f"{label} k={k} query {qi}: not exact")
                times[label].append(seconds)
        base = np.array(times["FAISS BinaryFlat"])
        for label, ts in times.items():
            ts = np.array(ts)
            result["series"].append({"method": label, "k": k, "p50_ms": float(np.median(ts) * 1000),
                                     "ratio": float(np.median(ts / base))})
            log(f"{ds.label} k={k}: {label}: p50 {np.median(ts) * 1000:.2f} ms, "
                f"{np.median(ts / base):.2f}x FAISS (median of per-query ratios)")
        pg.close_methods()
    pg.admin.execute(f"DROP TABLE {TABLE}")
    return result


def paired_table(configs: list) -> list:
    lines = ["| codes | method | k=1 | k=10 | k=100 |", "|---|---|---|---|---|"]
    for c in (c for c in configs if c.get("paired")):
        for m in dict.fromkeys(s["method"] for s in c["series"]):
            cells = [next((f"{s['p50_ms']:.2f} ms ({s['ratio']:.2f}x)" for s in c["series"]
                           if s["method"] == m and s["k"] == k), "n/a") for k in KS]
            lines.append(f"| {cfg_label(c)} | {m} | " + " | ".join(cells) + " |")
    return lines


def growth_table(configs: list) -> list:
    lines = ["| codes | index | k=1 | k=10 | k=100 | top-10 grown / built |", "|---|---|---|---|---|---|"]
    for c in (c for c in configs if c.get("growth")):
        rows = list(dict.fromkeys(s["method"] for s in c["series"]))
        grown = next((r for r in rows if "grown" in r), None)
        built = next((r for r in rows if r.startswith("jdsh MIH built") and r != grown), None)
        for r in rows:
            cells = [fmt_cell(series_of(c, r, f"k={k}")) for k in KS]
            vs = ratio(p50(series_of(c, r, "k=10")), p50(series_of(c, built, "k=10"))) if r == grown else ""
            lines.append(f"| {cfg_label(c)} | {r} | " + " | ".join(cells) + f" | {vs} |")
    return lines


# ---------------------------------------------------------------- report

def fmt_recall(rec: Optional[float]) -> str:
    """'1' only when exact; 0.9996 is not rounded up to look exact."""
    if rec is None:
        return "–"  # no true result to find (radius queries on sparse data)
    return "1" if rec == 1 else f"{rec:.4f}" if rec > 0.999 else f"{rec:.3f}"


def fmt_cell(s: Optional[dict]) -> str:
    if not s:
        return "n/a"
    rec_txt = fmt_recall(s.get("recall"))
    wrong = f", {s['wrong']} wrong" if s.get("wrong") else ""
    return f"{s['p50_ms']:.2f} / {s['p95_ms']:.2f} ({rec_txt}{wrong})"


def series_of(cfg: dict, method_prefix: str, query: str) -> Optional[dict]:
    for s in cfg["series"]:
        if s["method"].startswith(method_prefix) and s["query"] == query:
            return s
    return None


def ratio(a: Optional[float], b: Optional[float]) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    x = a / b
    return f"{x:.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 1 else f"{x:.2f}x"


def p50(s: Optional[dict]) -> Optional[float]:
    return s["p50_ms"] if s else None


def build_of(cfg: dict, prefix: str, key: str) -> Optional[float]:
    for name, b in cfg["builds"].items():
        if name.startswith(prefix):
            return b[key]
    return None


def cfg_label(cfg: dict) -> str:
    return f"{size_label(cfg['size'])} x {cfg['bits']}-bit {cfg['set']}"


def summary_table(configs: list, ef_ref: int) -> list:
    lines = [
        "| codes | MIH top-10 p50 / p95 ms (recall) | vs pgvector HNSW "
        f"ef_search={ef_ref} (its recall) | vs pgvector exact scan | vs jdsh seq scan | "
        "vs FAISS BinaryFlat | MIH build s | vs HNSW build | MIH size MiB | MIH / HNSW size |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for cfg in configs:
        mih = series_of(cfg, "jdsh MIH", "k=10")
        hnsw = series_of(cfg, f"pgvector HNSW ef_search={ef_ref}", "k=10")
        hnsw_rec = f" ({fmt_recall(hnsw['recall'])})" if hnsw else ""
        mb, hb = build_of(cfg, "jdsh MIH", "seconds"), build_of(cfg, "pgvector HNSW", "seconds")
        ms, hs = build_of(cfg, "jdsh MIH", "bytes"), build_of(cfg, "pgvector HNSW", "bytes")
        lines.append(" | ".join([
            f"| {cfg_label(cfg)}", fmt_cell(mih),
            ratio(p50(hnsw), p50(mih)) + hnsw_rec,
            ratio(p50(series_of(cfg, "pgvector exact", "k=10")), p50(mih)),
            ratio(p50(series_of(cfg, "jdsh seq", "k=10")), p50(mih)),
            ratio(p50(series_of(cfg, "FAISS BinaryFlat", "k=10")), p50(mih)),
            "n/a" if mb is None else f"{mb:.1f}", ratio(hb, mb),
            "n/a" if ms is None else f"{ms / 2**20:.1f}", ratio(ms, hs)]) + " |")
    return lines


def scaling_table(configs: list) -> list:
    rows = [c for c in configs if c["bits"] == 64 and c["set"] == "clustered" and not c.get("growth")]
    rows.sort(key=lambda c: c["size"])
    methods = ["jdsh MIH", "jdsh seq scan", "pgvector exact scan", "FAISS BinaryFlat"]
    lines = ["| codes | " + " | ".join(methods) + " | MIH build s | MIH size MiB |",
             "|---|" + "---|" * (len(methods) + 2)]
    for c in rows:
        cells = [fmt_cell(series_of(c, m, "k=10")) for m in methods]
        mb, ms = build_of(c, "jdsh MIH", "seconds"), build_of(c, "jdsh MIH", "bytes")
        lines.append(f"| {size_label(c['size'])} | " + " | ".join(cells) +
                     f" | {'n/a' if mb is None else f'{mb:.1f}'}"
                     f" | {'n/a' if ms is None else f'{ms / 2**20:.1f}'} |")
    return lines


def detail_tables(cfg: dict) -> list:
    lines = [f"### {cfg_label(cfg)}", ""]
    if "table_bytes" in cfg:
        lines.append(f"Table {cfg['table_bytes'] / 2**20:.1f} MiB (id, bitcode, bit), "
                     f"loaded in {cfg['load_s']:.1f} s; prepared `SELECT 1` round trip "
                     f"{cfg['select1_ms']:.3f} ms; {cfg.get('queries', '?')} queries per series, "
                     f"{cfg.get('slow_queries', '?')} for the sequential scans.")
        lines.append("")
    lines += ["| index | build s | size MiB | chosen at build |", "|---|---|---|---|"]
    for name, b in cfg["builds"].items():
        chosen = (f"m = {b['substrings']}, probe budget {b['probe_budget']} %"
                  if "substrings" in b else "")
        lines.append(f"| {name} | {b['seconds']:.2f} | {b['bytes'] / 2**20:.1f} | {chosen} |")
    for kind, cols in (("k", [f"k={k}" for k in KS]), ("r", [f"r={r}" for r in RADII])):
        series = [s for s in cfg["series"] if s["query"].startswith(kind + "=")]
        methods = list(dict.fromkeys(s["method"] for s in series))
        if not methods:
            continue
        lines += ["", f"{'k-NN' if kind == 'k' else 'Radius'}: p50 / p95 ms (recall) per method"]
        if kind == "r":  # over all the queries (the seq scans ran only the first ones)
            true = cfg.get("true_per_query", {})
            lines[-1] += "; true rows per query (mean): " + ", ".join(
                f"{c}: {true.get(c, 0):.2f}" for c in cols)
        lines += ["", "| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for m in methods:
            lines.append(f"| {m} | " + " | ".join(
                fmt_cell(series_of(cfg, m, c) if any(
                    s["method"] == m and s["query"] == c for s in series) else None)
                for c in cols) + " |")
    bad = [f"{k}: {v}" for k, v in cfg.get("plans", {}).items()
           if ("MIH" in k and "bench_mih" not in v) or ("HNSW" in k and "bench_hnsw" not in v)
           or (("seq" in k or "exact" in k or "post-filter" in k) and "Seq Scan" not in v)]
    if bad:
        lines += ["", "**Unexpected plans:** " + "; ".join(bad)]
    return lines + [""]


def markdown(results: dict) -> str:
    meta = results["meta"]
    caps = meta.get("caps") or {}
    lines = [
        "# MIH benchmark", "",
        f"{meta['date']}, {meta['cpu']} ({meta['cores']} cores), PostgreSQL {meta.get('pg', 'n/a')},"
        f" pgvector {meta.get('pgvector', 'n/a')}, FAISS {meta.get('faiss', 'n/a')}. "
        f"{meta['queries']} queries per series ({meta['slow_queries']} for sequential scans), "
        f"{meta['warmup']} warm-up queries first; latency is client-side (psycopg, prepared "
        "statements, one query per call; FAISS in-process, no round trip), p50 / p95 in ms. "
        "Recall is tie-aware (a row counts if its true distance <= the true k-th distance; "
        "radius: share of the true rows returned, `wrong` = returned rows outside the ball). "
        "One backend per query (max_parallel_workers_per_gather = 0, jit = off), FAISS single "
        "thread. Ratios are peer / jdsh (> 1: jdsh faster, smaller or quicker to build), "
        "except the size ratio MIH / HNSW (target <= 0.25).", "",
        "Peers as configured: pgvector HNSW with m = 16, ef_construction = 64 (its defaults; "
        "built with the server's default parallel maintenance workers), returning at most "
        "ef_search rows, so k = 100 at ef_search = 40 caps its recall at 0.4; FAISS "
        "IndexBinaryMultiHash with nhash = round(bits / log2(n)) tables of bits / nhash bits, "
        "k-NN approximate at every fixed nflip, radius exact with nflip = floor(r / nhash); FAISS "
        "sizes are the serialized index. pgvector has no radius index: its radius rows are a "
        "sequential scan with `bv <~> q <= r` (post-filter). `–` = no true result to find.", ""]
    if not caps.get("mih", True):
        lines += ["**The `mih` access method is not installed: its columns are n/a.**", ""]
    elif not caps.get("ball", True):
        lines += ["**`jdsh.ball` / `<@` are not installed: MIH radius rows are n/a.**", ""]
    plain = [c for c in results["configs"] if not c.get("growth") and not c.get("paired")]
    if plain:
        lines += ["## Exact top-10, ratios against peers", ""]
        lines += summary_table(plain, results["meta"]["ef_ref"]) + [""]
    if any(c.get("paired") for c in results["configs"]):
        lines += ["## Paired: jdsh settings against FAISS flat, query by query", "",
                  "p50 ms (median over queries of jdsh's time / FAISS's on the same query).", ""]
        lines += paired_table(results["configs"]) + [""]
        return "\n".join(lines)
    if len(plain) < len(results["configs"]):
        lines += ["## Growth: an index built on a tenth of the rows, then given the rest", "",
                  "p50 / p95 ms (recall); the ratio is the grown index's top-10 p50 over the one "
                  "built on all rows (target <= 1.5).", ""]
        lines += growth_table(results["configs"]) + [""]
    if any(c["bits"] == 64 and c["set"] == "clustered" and not c.get("growth")
           for c in results["configs"]):
        lines += ["## Scaling: 64-bit clustered, top-10, p50 / p95 ms (recall)", ""]
        lines += scaling_table(results["configs"]) + [""]
    lines += ["## Per data set", ""]
    for cfg in results["configs"]:
        lines += detail_tables(cfg)
    return "\n".join(lines)


# ---------------------------------------------------------------- main

# Defaults of a full run, and of --quick (the lead's development loop: a couple of minutes).
# An option given on the command line wins over both.
FULL = {"sizes": "100k,1m", "bits": "64,128", "queries": 100, "slow_queries": 20,
        "ef_search": "40,200,400", "warmup": 8}
QUICK = {"sizes": "100k", "bits": "64", "queries": 30, "slow_queries": 10,
         "ef_search": "40,200", "warmup": 6}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", help=f"codes per table, e.g. 100k,1m (default {FULL['sizes']})")
    p.add_argument("--bits", help=f"code lengths, multiples of 64 (default {FULL['bits']})")
    p.add_argument("--sets", default="uniform,clustered,learned")
    p.add_argument("--peers", default="jdsh,pgvector,faiss")
    p.add_argument("--queries", type=int, help=f"queries per series (default {FULL['queries']})")
    p.add_argument("--slow-queries", type=int,
                   help="queries for the sequential scans, 100-300 ms each at 1M "
                   f"(default {FULL['slow_queries']}; at most 10 above 2M)")
    # At least 6: PostgreSQL decides between a custom and a generic plan at the 6th execution of
    # a prepared statement, and that one-off planning must not land in the measured queries.
    p.add_argument("--warmup", type=int, help=f"warm-up queries (default {FULL['warmup']})")
    p.add_argument("--ef-search", help=f"pgvector HNSW settings (default {FULL['ef_search']})")
    p.add_argument("--mh-nflips", default="0,1,2", help="FAISS MultiHash k-NN settings")
    p.add_argument("--mih-substrings", type=int, default=None, help="WITH (substrings = m)")
    p.add_argument("--mih-fillfactor", type=int, default=None, help="WITH (fillfactor = f)")
    p.add_argument("--scale-10m", action="store_true",
                   help="add a 10M 64-bit point of each set (no HNSW; seq scans k=10, r=3 only)")
    p.add_argument("--growth", action="store_true",
                   help="instead of the peers' tables: an index built on a tenth of each table, "
                        "given the rest by COPY, against one built on all of it (jdsh, FAISS flat)")
    p.add_argument("--paired", default=None,
                   help="A/B: jdsh under these settings (';' between settings, ',' between GUCs: "
                        "'default;jdsh.mih_probe_budget=0') against FAISS flat, query by query")
    p.add_argument("--quick", action="store_true",
                   help="100k, 64 bits, both sets, 30 queries: a couple of minutes")
    p.add_argument("--seed", type=int, default=20240)
    p.add_argument("--db", default="jdsh_mih_bench")
    p.add_argument("--no-db", action="store_true", help="FAISS only (no PostgreSQL)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.sizes = [parse_size(s) for s in args.sizes.split(",")]
    args.bits = [int(b) for b in args.bits.split(",")]
    args.sets = args.sets.split(",")
    args.peers = set(args.peers.split(","))
    args.ef_search = [int(e) for e in args.ef_search.split(",")]
    args.mh_nflips = [int(f) for f in args.mh_nflips.split(",")]
    args.paired = args.paired.split(";") if args.paired else None
    for b in args.bits:
        if b % 64:
            p.error("--bits: multiples of 64 only (the numpy ground truth works on 64-bit words)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "cores": os.cpu_count(),
            "queries": args.queries, "slow_queries": min(args.queries, args.slow_queries),
            "warmup": args.warmup, "seed": args.seed, "ef_search": args.ef_search,
            "ef_ref": 200 if 200 in args.ef_search else args.ef_search[-1],
            "argv": sys.argv[1:]}
    if "faiss" in args.peers:
        import faiss
        meta["faiss"] = faiss.__version__
    pg = caps = None
    if not args.no_db:
        pg = Pg(args.db)
        caps = server_caps(pg)
        meta["caps"] = caps.__dict__
        meta["pg"] = pg.one("SHOW server_version")
        meta["pgvector"] = pg.one("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        meta["settings"] = dict(pg.admin.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers', "
            "'max_parallel_workers_per_gather', 'max_parallel_maintenance_workers', 'jit', "
            "'maintenance_work_mem', 'work_mem')").fetchall())
        log(f"server: mih={caps.mih} ball={caps.ball} pgvector={caps.pgvector}")
    configs = [(n, b, s) for n in args.sizes for b in args.bits for s in args.sets]
    if args.scale_10m:
        configs += [(10_000_000, 64, s) for s in args.sets if (10_000_000, 64, s) not in configs]
    results = {"meta": meta, "configs": []}
    os.makedirs(args.out, exist_ok=True)
    for n, bits, kind in configs:
        if args.paired:
            if not (pg and caps.mih):
                raise SystemExit("--paired needs the mih access method in the server")
            results["configs"].append(run_paired(pg, n, bits, kind, args))
        elif args.growth:
            if not (pg and caps.mih):
                raise SystemExit("--growth needs the mih access method in the server")
            results["configs"].append(run_growth(pg, n, bits, kind, args))
        else:
            results["configs"].append(run_config(pg, caps, n, bits, kind, args))
        write_outputs(results, args.out)  # after every data set: a long run keeps its results
    print(markdown(results))
    return 0


def write_outputs(results: dict, out: str) -> None:
    with open(os.path.join(out, "mih.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out, "mih.md"), "w") as f:
        f.write(markdown(results) + "\n")


if __name__ == "__main__":
    sys.exit(main())
