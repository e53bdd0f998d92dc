#!/usr/bin/env python3
"""Models in the database, measured: training, encoder throughput and text-to-image search.

Run it through bench/models.sh, which starts the side cluster, loads the emoji and Wikipedia
tables (jdsh-train export) and passes the connection through the PG* environment variables.

  1. Trains (jdsh.train) an emoji model on raw keywords text + PNG bytes and a Wikipedia model on
     feature vectors, 64 bits each, unless --reuse-models finds them.
  2. Cold start: in fresh backends, the time of the first jdsh call (loading jdsh.so and libtorch),
     the first encoder call (reading and deserializing the model) and the next call.
  3. Throughput, one backend, jdsh.device = cpu, no parallel workers: every statement runs on the
     same table in every round, rounds interleave the methods, medians over rounds. Each encoder
     statement has a peer of the same shape with a trivial function (md5, jdsh.binarize, or the
     aggregation alone) giving the SQL floor, and the backend's CPU seconds (from /proc) are read
     beside the wall time, so a busy machine shows as wall > CPU. The trainer CLI encodes the same
     inputs in-process (jdsh-train encode) and runs its own bench-encode.
  4. End to end on 1,000,000 image codes (the emoji PNG codes, each copied with 1-3 random bit
     flips) with a mih index: 100 text queries, prepared statements, interleaved query by query,
     client-side p50/p95 and server-side EXPLAIN ANALYZE execution time; peers: the index with a
     precomputed query code, the encoder alone, the encoder in a scalar subquery, the same codes
     under an index WITH (substrings = 4), and sequential scans. The plan and the number of encoder calls per query are checked.

It writes bench/out/models.json (everything) and bench/out/models.md (tables for the README).
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

import psycopg

from common import cpu_name

CLK_TCK = os.sysconf("SC_CLK_TCK")
TEXT_TARGET = 20_000  # rows/s, per-row text encoding on one core (the target)
E2E_TARGET_MS = 5.0  # p50 of a text query on 1M codes
SEQ_OFF = {"enable_indexscan": "off", "enable_bitmapscan": "off", "enable_indexonlyscan": "off"}

# Hand-picked queries first, the rest drawn from the emoji names and keywords.
CURATED = [
    "red fruit", "happy face", "flag of japan", "rocket", "sad crying face", "pizza", "dog",
    "cat face", "red heart", "thumbs up", "sun with rays", "snowman", "birthday cake",
    "soccer ball", "airplane", "car", "ocean wave", "fire", "christmas tree", "musical note",
    "money bag", "smiling face with sunglasses", "ghost", "green apple", "coffee", "moon",
    "clapping hands", "party popper", "skull", "rainbow",
]


def log(msg: str) -> None:
    print(f"[models {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else None


def pct(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


class Db:
    """A connection that retries a statement once when the library is being reinstalled."""

    def __init__(self, dbname: str, settings: dict = None):
        self.dbname = dbname
        self.settings = {"jdsh.device": "'cpu'", "max_parallel_workers_per_gather": "0",
                         "jit": "off", **(settings or {})}
        self.connect()

    def connect(self):
        self.conn = psycopg.connect(dbname=self.dbname, autocommit=True)
        for k, v in self.settings.items():
            self.conn.execute(f"SET {k} = {v}")
        self.pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]

    def execute(self, sql, params=None, prepare=None):
        for attempt in range(3):
            try:
                return self.conn.execute(sql, params, prepare=prepare)
            except psycopg.Error as e:  # "could not load library": jdsh is being reinstalled
                if attempt == 2 or "could not load library" not in str(e):
                    raise
                log(f"retrying after: {e}".strip())
                time.sleep(20)
                self.conn.close()
                self.connect()

    def one(self, sql, params=None):
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    def cpu_seconds(self) -> float:
        """utime + stime of this connection's backend process."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except OSError:
            return float("nan")

    def timed(self, sql, params=None):
        """(wall seconds, backend CPU seconds, first value of the result)."""
        c0, t0 = self.cpu_seconds(), time.perf_counter()
        cur = self.execute(sql, params)
        row = cur.fetchone() if cur.description else None
        t1, c1 = time.perf_counter(), self.cpu_seconds()
        return t1 - t0, c1 - c0, (row[0] if row else None)

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------- training

def train_models(db: Db, args, res: dict) -> None:
    res["training"] = []
    have = {r[0] for r in db.execute("SELECT DISTINCT name FROM jdsh.models").fetchall()}
    jobs = [
        ("emoji", "SELECT * FROM jdsh.train('emoji', 'SELECT * FROM emoji WHERE split = ''train'' "
                  "AND vendor IN (''google'', ''twitter'')', image => 'png', text => 'keywords', "
                  f"labels => 'subcategory_id', bits => 64, epochs => {args.emoji_epochs})",
         "emoji train split, google + twitter: raw keywords (BoW) + PNG bytes"),
        ("wiki", "SELECT * FROM jdsh.train('wiki', 'SELECT * FROM wikipedia WHERE split = "
                 "''train''', image => 'image', text => 'text', labels => 'label', bits => 64, "
                 f"epochs => {args.wiki_epochs})",
         "Wikipedia train split: 128-d image, 10-d text features"),
    ]
    for name, sql, what in jobs:
        if args.reuse_models and name in have:
            row = db.execute(
                "SELECT name, version, method, bits, (metrics->>'epochs')::int, "
                "(metrics->>'train_pairs')::int, (metrics->>'seconds')::float8, NULL::float8, "
                "(metrics #>> '{holdout,image_to_text}')::float8, "
                "(metrics #>> '{holdout,text_to_image}')::float8 FROM jdsh.models "
                "WHERE name = %s ORDER BY version DESC LIMIT 1", (name,)).fetchone()
            reused = True
        else:
            log(f"training {name} ({what})")
            t0 = time.perf_counter()
            row = db.execute(sql).fetchone()
            log(f"  {name}: {time.perf_counter() - t0:.0f} s")
            reused = False
        keys = ["model", "version", "method", "bits", "epochs", "pairs", "seconds", "final_loss",
                "map_i2t", "map_t2i"]
        d = dict(zip(keys, row))
        d.update(what=what, reused=reused)
        d["size_bytes"] = db.one("SELECT octet_length(model) FROM jdsh.models WHERE name = %s "
                                 "ORDER BY version DESC LIMIT 1", (name,))
        res["training"].append(d)


# ---------------------------------------------------------------- cold start

def cold_start(args, res: dict) -> None:
    """First calls in fresh backends: library load, model load, then a warm call."""
    out = {}
    cases = [("emoji", "SELECT jdsh.encode_text('emoji', %s)", "rocket"),
             ("wiki", "SELECT jdsh.encode_image('wiki', %s::real[])", "{" + ",".join(["0.5"] * 128) + "}")]
    for model, sql, arg in cases:
        lib, first, second = [], [], []
        for _ in range(args.cold_reps):
            db = Db(args.db)
            t, _, _ = db.timed("SELECT 'x00'::bitcode")  # loads jdsh.so (and libtorch with it)
            lib.append(t)
            t, _, _ = db.timed(sql, (arg,))
            first.append(t)
            t, _, _ = db.timed(sql, (arg,))
            second.append(t)
            db.close()
        out[model] = {"library_ms": median(lib) * 1e3, "first_encode_ms": median(first) * 1e3,
                      "next_encode_ms": median(second) * 1e3, "reps": args.cold_reps}
        log(f"cold start {model}: library {out[model]['library_ms']:.0f} ms, first encode "
            f"{out[model]['first_encode_ms']:.0f} ms, next {out[model]['next_encode_ms']:.2f} ms")
    res["cold_start"] = out


# ---------------------------------------------------------------- throughput

def build_tables(db: Db, args) -> dict:
    """Replicated inputs: texts with a distinct suffix word, PNG bytes, Wikipedia features."""
    n_emoji = db.one("SELECT count(*) FROM emoji")
    n_wiki = db.one("SELECT count(*) FROM wikipedia")
    db.execute("DROP TABLE IF EXISTS bench_texts, bench_pngs, bench_feats")
    src = "(SELECT (row_number() OVER (ORDER BY id, vendor) - 1)::int AS rn, * FROM emoji)"
    db.execute("CREATE TABLE bench_texts (id int, keywords text, code bitcode)")
    db.execute(f"INSERT INTO bench_texts SELECT g, e.keywords || ' w' || g, NULL "
               f"FROM generate_series(0, %s - 1) g JOIN {src} e ON e.rn = g %% %s",
               (args.text_rows, n_emoji))
    db.execute("CREATE TABLE bench_pngs (id int, png bytea, code bitcode)")
    db.execute(f"INSERT INTO bench_pngs SELECT g, e.png, NULL "
               f"FROM generate_series(0, %s - 1) g JOIN {src} e ON e.rn = g %% %s",
               (args.png_rows, n_emoji))
    db.execute("CREATE TABLE bench_feats (id int, image real[], text real[], code bitcode)")
    db.execute("INSERT INTO bench_feats SELECT g, w.image, w.text, NULL FROM generate_series(0, %s - 1) g "
               "JOIN (SELECT (row_number() OVER (ORDER BY id) - 1)::int AS rn, * FROM wikipedia) w "
               "ON w.rn = g %% %s", (args.feature_rows, n_wiki))
    for t in ("bench_texts", "bench_pngs", "bench_feats"):
        db.execute(f"VACUUM ANALYZE {t}")
        db.execute(f"SELECT pg_prewarm('{t}')")
    sizes = {}
    for t in ("bench_texts", "bench_pngs", "bench_feats"):
        sizes[t] = {"rows": db.one(f"SELECT count(*) FROM {t}"),
                    "bytes": db.one(f"SELECT pg_total_relation_size('{t}')")}
    sizes["avg_keywords_words"] = db.one(
        "SELECT avg(array_length(regexp_split_to_array(keywords, '\\s+'), 1))::float8 FROM emoji")
    sizes["avg_png_bytes"] = db.one("SELECT avg(octet_length(png))::float8 FROM emoji")
    return sizes


def throughput_cases(args) -> list:
    """(group, label, kind, table, sql); kind 'enc' rows are encoders, 'floor' their peers."""
    c = args.chunk
    pc = args.png_chunk
    T, P, F = "bench_texts", "bench_pngs", "bench_feats"
    agg = "SELECT sum(cardinality({f})) FROM (SELECT array_agg({col}) a FROM {t} GROUP BY id / {n}) s"
    agg2 = "SELECT sum(array_length({f}, 1)) FROM (SELECT array_agg({col}) a FROM {t} GROUP BY id / {n}) s"
    return [
        # raw text, BoW model
        ("text", "per row: SELECT count(jdsh.encode_text('emoji', keywords))", "enc", T,
         f"SELECT count(jdsh.encode_text('emoji', keywords)) FROM {T}"),
        ("text", "floor: SELECT count(md5(keywords))", "floor", T,
         f"SELECT count(md5(keywords)) FROM {T}"),
        ("text", "per row: UPDATE SET code = jdsh.encode_text('emoji', keywords)", "enc", T,
         f"UPDATE {T} SET code = jdsh.encode_text('emoji', keywords)"),
        ("text", "floor: UPDATE SET code = substr(decode(md5(keywords), 'hex'), 1, 8)::bitcode", "floor", T,
         f"UPDATE {T} SET code = substr(decode(md5(keywords), 'hex'), 1, 8)::bitcode"),
        ("text", f"batch: jdsh.encode_texts('emoji', array_agg(keywords)), {c} per call", "enc", T,
         agg.format(f="jdsh.encode_texts('emoji', a)", col="keywords", t=T, n=c)),
        ("text", f"floor: the same array_agg, {c} per group, no encoder", "floor", T,
         agg.format(f="a", col="keywords", t=T, n=c)),
        ("text", f"jdsh.encode_table('emoji', ..., batch_size => {c})", "enc", T,
         f"SELECT jdsh.encode_table('emoji', '{T}', 'keywords', 'code', batch_size => {c})"),
        ("text", "jdsh.encode_table('emoji', ...) (batch_size 256, the default)", "enc", T,
         f"SELECT jdsh.encode_table('emoji', '{T}', 'keywords', 'code')"),
        # PNG bytes
        ("png", "per row: SELECT count(jdsh.encode_image('emoji', png))", "enc", P,
         f"SELECT count(jdsh.encode_image('emoji', png)) FROM {P}"),
        ("png", "floor: SELECT count(md5(png))", "floor", P, f"SELECT count(md5(png)) FROM {P}"),
        ("png", "per row: UPDATE SET code = jdsh.encode_image('emoji', png)", "enc", P,
         f"UPDATE {P} SET code = jdsh.encode_image('emoji', png)"),
        ("png", "floor: UPDATE SET code = substr(decode(md5(png), 'hex'), 1, 8)::bitcode", "floor", P,
         f"UPDATE {P} SET code = substr(decode(md5(png), 'hex'), 1, 8)::bitcode"),
        ("png", f"batch: jdsh.encode_images('emoji', array_agg(png)), {pc} per call", "enc", P,
         agg.format(f="jdsh.encode_images('emoji', a)", col="png", t=P, n=pc)),
        ("png", f"floor: the same array_agg, {pc} per group, no encoder", "floor", P,
         agg.format(f="a", col="png", t=P, n=pc)),
        ("png", f"jdsh.encode_table('emoji', ..., batch_size => {pc})", "enc", P,
         f"SELECT jdsh.encode_table('emoji', '{P}', 'png', 'code', batch_size => {pc})"),
        # Wikipedia features
        ("features", "per row: SELECT count(jdsh.encode_image('wiki', image)) (128-d)", "enc", F,
         f"SELECT count(jdsh.encode_image('wiki', image)) FROM {F}"),
        ("features", "floor: SELECT count(jdsh.binarize(image)) (128-d)", "floor", F,
         f"SELECT count(jdsh.binarize(image)) FROM {F}"),
        ("features", "per row: SELECT count(jdsh.encode_text('wiki', text)) (10-d)", "enc", F,
         f"SELECT count(jdsh.encode_text('wiki', text)) FROM {F}"),
        ("features", "floor: SELECT count(jdsh.binarize(text)) (10-d)", "floor", F,
         f"SELECT count(jdsh.binarize(text)) FROM {F}"),
        ("features", "per row: UPDATE SET code = jdsh.encode_image('wiki', image)", "enc", F,
         f"UPDATE {F} SET code = jdsh.encode_image('wiki', image)"),
        ("features", "floor: UPDATE SET code = jdsh.binarize(image[1:64])", "floor", F,
         f"UPDATE {F} SET code = jdsh.binarize(image[1:64])"),
        ("features", f"batch: jdsh.encode_images('wiki', array_agg(image)), {c} per call", "enc", F,
         agg2.format(f="jdsh.encode_images('wiki', a)", col="image", t=F, n=c)),
        ("features", f"floor: the same array_agg, {c} per group, no encoder", "floor", F,
         agg2.format(f="a", col="image", t=F, n=c)),
        ("features", f"jdsh.encode_table('wiki', ..., 'image', batch_size => {c})", "enc", F,
         f"SELECT jdsh.encode_table('wiki', '{F}', 'image', 'code', modality => 'image', batch_size => {c})"),
    ]


def throughput(args, res: dict) -> None:
    db = Db(args.db)
    log("building the throughput tables")
    res["tables"] = build_tables(db, args)
    rows = {t: v["rows"] for t, v in res["tables"].items() if isinstance(v, dict)}
    # Warm: one call of each model in this backend before any timing.
    db.execute("SELECT jdsh.encode_text('emoji', 'warm'), jdsh.encode_image('wiki', image) "
               "FROM wikipedia LIMIT 1")
    cases = throughput_cases(args)
    runs = {c[1]: [] for c in cases}
    for rnd in range(args.reps):
        log(f"throughput round {rnd + 1}/{args.reps} (load {loadavg()})")
        for group, label, kind, table, sql in cases:
            if sql.startswith("UPDATE") or "encode_table" in sql:
                db.execute(f"VACUUM {table}")  # the same free space before every write
            wall, cpu, val = db.timed(sql)
            runs[label].append({"wall": wall, "cpu": cpu})
            log(f"  {group:8s} {rows[table] / wall:10.0f} rows/s  cpu {cpu / wall:4.2f}  {label}")
    out = []
    for group, label, kind, table, sql in cases:
        n = rows[table]
        walls = [r["wall"] for r in runs[label]]
        cpus = [r["cpu"] for r in runs[label]]
        out.append({"group": group, "label": label, "kind": kind, "rows": n, "sql": sql,
                    "wall_s": walls, "cpu_s": cpus,
                    "rows_per_s": n / median(walls), "rows_per_cpu_s": n / median(cpus) if median(cpus) else None,
                    "us_per_row": median(walls) / n * 1e6})
    res["throughput"] = out
    db.close()


def cli_peers(args, res: dict) -> None:
    """The trainer crate in-process: jdsh-train encode on the same inputs, and bench-encode."""
    out = {}
    db = Db(args.db)
    tmp = os.path.join(args.out, "models-tmp")
    os.makedirs(tmp, exist_ok=True)
    paths = {}
    for name in ("emoji", "wiki"):
        paths[name] = os.path.join(tmp, f"{name}.safetensors")
        with open(paths[name], "wb") as f:
            f.write(db.one("SELECT jdsh.export_model(%s)", (name,)))
    texts = os.path.join(tmp, "texts.txt")
    with open(texts, "w") as f:
        for (k,) in db.execute("SELECT keywords FROM bench_texts ORDER BY id"):
            f.write(k.replace("\n", " ") + "\n")
    feats = os.path.join(tmp, "image-features.txt")
    with open(feats, "w") as f:
        for (v,) in db.execute("SELECT array_to_string(image, ',') FROM bench_feats ORDER BY id"):
            f.write(v + "\n")
    one_text = os.path.join(tmp, "one-text.txt")
    with open(one_text, "w") as f:
        f.write("rocket\n")
    one_feat = os.path.join(tmp, "one-feature.txt")
    with open(one_feat, "w") as f:
        f.write(",".join(["0.5"] * 128) + "\n")
    db.close()

    def run_cli(cmd):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
        return dt

    tr = args.trainer
    jobs = {
        "text": ([tr, "encode", "--model", paths["emoji"], "--texts", texts],
                 [tr, "encode", "--model", paths["emoji"], "--texts", one_text],
                 res["tables"]["bench_texts"]["rows"]),
        "features": ([tr, "encode", "--model", paths["wiki"], "--image-features", feats],
                     [tr, "encode", "--model", paths["wiki"], "--image-features", one_feat],
                     res["tables"]["bench_feats"]["rows"]),
    }
    for key, (full, single, n) in jobs.items():
        fulls, starts = [], []
        for _ in range(args.reps):
            starts.append(run_cli(single))
            fulls.append(run_cli(full))
        net = median(fulls) - median(starts)
        out[f"encode_{key}"] = {"rows": n, "wall_s": fulls, "startup_s": starts,
                                "rows_per_s": n / net if net > 0 else None}
        log(f"jdsh-train encode {key}: {n / net:.0f} rows/s (startup {median(starts):.2f} s)")
    vocab = db_vocab(args)
    cmd = [tr, "bench-encode", "--items", str(args.cli_items), "--vocab", str(vocab), "--hidden", "1024"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    line = (p.stdout.strip().splitlines() or [""])[-1]
    out["bench_encode"] = {"cmd": " ".join(cmd[1:]), "line": line, "seconds": time.perf_counter() - t0,
                           "returncode": p.returncode, "stderr": p.stderr[-1000:]}
    # The line reads: text batched A/s, one per call B/s; image batched C/s, one per call D/s; ...
    vals = [float(x) for x in re.findall(r"([0-9.]+)/s", line)]
    if len(vals) >= 5:
        out["bench_encode"].update(text_batched=vals[0], text_single=vals[1], image_batched=vals[2],
                                   image_single=vals[3], text_single_torch=vals[4])
    log(f"bench-encode: {line}")
    res["cli"] = out
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)  # exported models and input files (~60 MB)


def db_vocab(args) -> int:
    db = Db(args.db)
    info = db.one("SELECT jdsh.model_info(model) FROM jdsh.models WHERE name = 'emoji' "
                  "ORDER BY version DESC LIMIT 1")
    db.close()
    try:  # the text net's input width is the BoW vocabulary
        return int(info["text_net"]["input"]["dim"])
    except (KeyError, TypeError, ValueError):
        return 2000


# ---------------------------------------------------------------- end to end

def build_codes(db: Db, args, res: dict) -> None:
    log(f"building {args.codes:,} image codes and the mih index")
    db.execute("DROP TABLE IF EXISTS bench_codes, emoji_img")
    t0 = time.perf_counter()
    db.execute("CREATE TABLE emoji_img AS SELECT (row_number() OVER (ORDER BY id, vendor) - 1)::int AS rn, "
               "id, vendor, jdsh.encode_image('emoji', png) AS code FROM emoji")
    t_enc = time.perf_counter() - t0
    n_emoji = db.one("SELECT count(*) FROM emoji_img")
    db.execute("SELECT setseed(0.42)")
    db.execute("CREATE TABLE bench_codes (id int, emoji_id int, code bitcode(64))")
    # The first copy of every code is exact; the others flip 1-3 random bits (3 draws, may collide).
    flip = "(1::bigint << floor(random() * 64)::int)"
    db.execute(f"INSERT INTO bench_codes SELECT g, e.id, CASE WHEN g < %s THEN e.code "
               f"ELSE e.code # (({flip} | {flip} | {flip})::bitcode) END "
               f"FROM generate_series(0, %s - 1) g JOIN emoji_img e ON e.rn = g %% %s",
               (n_emoji, args.codes, n_emoji))
    db.execute("VACUUM ANALYZE bench_codes")
    t0 = time.perf_counter()
    db.execute("CREATE INDEX bench_codes_mih ON bench_codes USING mih (code)")
    t_idx = time.perf_counter() - t0
    db.execute("ANALYZE bench_codes")
    db.execute("SELECT pg_prewarm('bench_codes'), pg_prewarm('bench_codes_mih')")
    # The same codes in a second table whose index has another number of substrings (the default
    # is m = bits / log2(n), 3 for 1M 64-bit codes): a peer for the e2e query.
    db.execute("DROP TABLE IF EXISTS bench_codes_m")
    t_idx_m = None
    if args.mih_substrings:
        db.execute("CREATE TABLE bench_codes_m AS SELECT * FROM bench_codes")
        db.execute("VACUUM ANALYZE bench_codes_m")
        t0 = time.perf_counter()
        db.execute(f"CREATE INDEX bench_codes_m_mih ON bench_codes_m USING mih (code) "
                   f"WITH (substrings = {args.mih_substrings})")
        t_idx_m = time.perf_counter() - t0
        db.execute("ANALYZE bench_codes_m")
        db.execute("SELECT pg_prewarm('bench_codes_m'), pg_prewarm('bench_codes_m_mih')")
    res["codes"] = {
        "rows": db.one("SELECT count(*) FROM bench_codes"),
        "distinct": db.one("SELECT count(DISTINCT code) FROM bench_codes"),
        "emoji_png_codes": n_emoji, "emoji_distinct_codes": db.one("SELECT count(DISTINCT code) FROM emoji_img"),
        "encode_pngs_s": t_enc, "index_build_s": t_idx, "substrings_peer": args.mih_substrings,
        "index_m_build_s": t_idx_m,
        "index_bytes": db.one("SELECT pg_relation_size('bench_codes_mih')"),
        "table_bytes": db.one("SELECT pg_relation_size('bench_codes')"),
    }
    log(f"  index built in {t_idx:.1f} s, {res['codes']['index_bytes'] / 2**20:.1f} MiB; "
        f"{res['codes']['distinct']:,} distinct codes")


def pick_queries(db: Db, n: int, nwarm: int, seed: int) -> tuple:
    names = [r[0] for r in db.execute("SELECT DISTINCT lower(name) FROM emoji ORDER BY 1")]
    words = [r[0] for r in db.execute(
        "SELECT DISTINCT w FROM emoji, regexp_split_to_table(lower(keywords), '\\s+') w "
        "WHERE w ~ '^[a-z]{4,}$' ORDER BY 1")]
    rng = random.Random(seed)
    pool = [x for x in names if x not in CURATED]
    rng.shuffle(pool)
    wpool = [w for w in words if w not in CURATED]
    rng.shuffle(wpool)
    # Curated, then names and single keywords in turn: distinct strings.
    extra = [x for pair in zip(pool, wpool) for x in pair]
    queries = list(dict.fromkeys(CURATED[:n] + extra))[:n + nwarm]
    return queries[:n], queries[n:n + nwarm]


E2E_SQL = "SELECT id FROM bench_codes ORDER BY code <~> jdsh.encode_text('emoji', %s) LIMIT 10"
INIT_SQL = "SELECT id FROM bench_codes ORDER BY code <~> (SELECT jdsh.encode_text('emoji', %s)) LIMIT 10"
INDEX_SQL = "SELECT id FROM bench_codes ORDER BY code <~> %s::bitcode LIMIT 10"
ENC_SQL = "SELECT jdsh.encode_text('emoji', %s)"


def plan_nodes(db: Db, sql: str, arg) -> tuple:
    doc = db.execute("EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) " + sql, (arg,)).fetchone()[0]
    node, names, order_by = doc[0]["Plan"], [], None
    while node:
        index = f" using {node['Index Name']}" if "Index Name" in node else ""
        names.append(node["Node Type"] + index)
        order_by = order_by or node.get("Order By")
        kids = [k for k in node.get("Plans") or [] if k.get("Parent Relationship") != "InitPlan"]
        if len(kids) < len(node.get("Plans") or []):
            names[-1] += " (+ InitPlan)"
        node = kids[0] if kids else None
    return " > ".join(names), order_by


def encoder_calls(db: Db, sql: str, arg, reps: int = 10) -> list:
    """Calls of jdsh.encode_text(text, text) per execution of a prepared statement (the last
    executions, after the generic-plan switch), counted by track_functions in one transaction."""
    fn = "'jdsh.encode_text(text,text)'::regprocedure"
    counts = []
    with db.conn.transaction():
        db.execute("SET LOCAL track_functions = 'all'")
        for _ in range(reps):
            before = db.one(f"SELECT coalesce(pg_stat_get_xact_function_calls({fn}), 0)")
            db.execute(sql, (arg,), prepare=True).fetchall()
            after = db.one(f"SELECT coalesce(pg_stat_get_xact_function_calls({fn}), 0)")
            counts.append(after - before)
    return counts[-3:]


def exec_ms(db: Db, sql: str, arg) -> float:
    doc = db.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, (arg,)).fetchone()[0]
    return doc[0]["Execution Time"] + doc[0].get("Planning Time", 0.0)


def end_to_end(args, res: dict) -> None:
    admin = Db(args.db)
    build_codes(admin, args, res)
    queries, warm = pick_queries(admin, args.queries, args.warmup, args.seed)
    admin.execute("SET jdsh.bitcode_output = hex")
    codes = {q: admin.one("SELECT jdsh.encode_text('emoji', %s)::text", (q,)) for q in queries + warm}
    res["queries"] = queries
    # Correctness: the index returns the exact top-10 distances of a sequential scan.
    mism = 0
    seq = Db(args.db, SEQ_OFF)
    for q in queries[:args.check_queries]:
        dsql = "SELECT code <~> %s::bitcode FROM bench_codes ORDER BY code <~> %s::bitcode LIMIT 10"
        a = [r[0] for r in admin.execute(dsql, (codes[q], codes[q]))]
        b = [r[0] for r in seq.execute(dsql, (codes[q], codes[q]))]
        mism += a != b
    res["check"] = {"queries": min(args.check_queries, len(queries)), "top10_distance_mismatches": mism}

    methods = {  # label: (connection, sql, argument from the query text, slow)
        "e2e: ORDER BY code <~> jdsh.encode_text('emoji', $1) LIMIT 10 (mih)": (Db(args.db), E2E_SQL, None, False),
        "e2e, encoder in a scalar subquery: <~> (SELECT jdsh.encode_text(...))": (Db(args.db), INIT_SQL, None, False),
        "index alone: ORDER BY code <~> $1 (precomputed code) LIMIT 10": (Db(args.db), INDEX_SQL, codes, False),
        "encoder alone: SELECT jdsh.encode_text('emoji', $1)": (Db(args.db), ENC_SQL, None, False),
        **({f"e2e, mih WITH (substrings = {args.mih_substrings})": (Db(args.db), E2E_SQL.replace("bench_codes", "bench_codes_m"), None, False),
            f"index alone, mih WITH (substrings = {args.mih_substrings})": (Db(args.db), INDEX_SQL.replace("bench_codes", "bench_codes_m"), codes, False)}
           if args.mih_substrings else {}),
        "SELECT 1 (round trip)": (Db(args.db), "SELECT 1 WHERE %s::text IS NOT NULL", None, False),
        "seq scan, index off, encoder in a scalar subquery": (Db(args.db, SEQ_OFF), INIT_SQL, None, True),
    }
    plans = {}
    for label, (db, sql, amap, slow) in methods.items():
        if "SELECT 1" in label or "encoder alone" in label:
            continue
        arg = amap[queries[0]] if amap else queries[0]
        plans[label] = plan_nodes(db, sql, arg)
    # The same statement as e2e with the index disabled evaluates the encoder once per row
    # (a STABLE function in the sort key of a Sort over a Seq Scan): only a few queries.
    seqe2e = Db(args.db, SEQ_OFF)
    plans["seq scan, index off: the e2e statement"] = plan_nodes(seqe2e, E2E_SQL, queries[0])
    res["plans"] = {k: {"nodes": v[0], "order_by": v[1]} for k, v in plans.items()}
    for k, v in plans.items():
        log(f"  plan {k}: {v[0]}")

    # Warm-up: at least 6 executions per prepared statement, so the generic-plan decision is behind.
    for label, (db, sql, amap, slow) in methods.items():
        for i in range(max(args.warmup, 6)):
            q = warm[i % len(warm)]
            db.execute(sql, (amap[q] if amap else q,), prepare=True).fetchall()
    calls = {}
    for label, (db, sql, amap, slow) in methods.items():
        if "SELECT 1" in label or "encoder alone" in label:
            continue
        q = warm[0]
        calls[label] = encoder_calls(db, sql, amap[q] if amap else q)
    res["encoder_calls"] = calls
    log(f"  encoder calls per execution: {calls}")

    times = {label: [] for label in methods}
    server = {label: [] for label in methods}
    log(f"timing {len(queries)} queries (load {loadavg()})")
    for qi, q in enumerate(queries):
        for label, (db, sql, amap, slow) in methods.items():
            if slow and qi >= args.seq_queries:
                continue
            arg = amap[q] if amap else q
            t0 = time.perf_counter()
            db.execute(sql, (arg,), prepare=True).fetchall()
            times[label].append(time.perf_counter() - t0)
    log("server-side times (EXPLAIN ANALYZE, TIMING OFF)")
    for qi, q in enumerate(queries):
        for label, (db, sql, amap, slow) in methods.items():
            if "SELECT 1" in label or (slow and qi >= args.seq_queries):
                continue
            server[label].append(exec_ms(db, sql, amap[q] if amap else q))
    # The e2e statement as a sequential scan: one encoder call per row.
    seq_times, seq_calls = [], None
    for q in queries[:args.seq_e2e_queries]:
        t0 = time.perf_counter()
        seqe2e.execute(E2E_SQL, (q,)).fetchall()
        seq_times.append(time.perf_counter() - t0)
    if args.seq_e2e_queries:
        with seqe2e.conn.transaction():
            seqe2e.execute("SET LOCAL track_functions = 'all'")
            seqe2e.execute(E2E_SQL, (queries[0],)).fetchall()
            seq_calls = seqe2e.one("SELECT pg_stat_get_xact_function_calls("
                                   "'jdsh.encode_text(text,text)'::regprocedure)")
    label_seq = "seq scan, index off: the e2e statement (encoder per row)"
    times[label_seq] = seq_times
    server[label_seq] = []
    calls[label_seq] = [seq_calls] if seq_calls is not None else []
    out = {}
    for label in times:
        t = [x * 1e3 for x in times[label]]
        out[label] = {"n": len(t), "p50_ms": pct(t, 50), "p95_ms": pct(t, 95), "mean_ms": statistics.fmean(t) if t else None,
                      "server_p50_ms": pct(server[label], 50), "server_p95_ms": pct(server[label], 95),
                      "encoder_calls": calls.get(label)}
        if t:
            log(f"  {label}: p50 {out[label]['p50_ms']:.2f} ms, p95 {out[label]['p95_ms']:.2f} ms")
    res["e2e"] = out
    # The 10th neighbour's distance drives the cost of an exact MIH search: latency by distance.
    d10 = []
    for q in queries:
        ds = [r[0] for r in admin.execute(
            "SELECT code <~> %s::bitcode FROM bench_codes ORDER BY code <~> %s::bitcode LIMIT 10",
            (codes[q], codes[q]))]
        d10.append(ds[-1])
    res["d10"] = d10
    buckets = [(0, 6), (7, 9), (10, 10), (11, 11), (12, 64)]
    by = []
    for lo, hi in buckets:
        idx = [i for i, d in enumerate(d10) if lo <= d <= hi]
        row = {"range": [lo, hi], "queries": len(idx)}
        for label in times:
            if label.startswith(("e2e", "index alone")) and len(times[label]) == len(queries):
                row[label] = pct([times[label][i] * 1e3 for i in idx], 50)
        by.append(row)
    res["by_d10"] = by
    # What the search returns for a few queries (sanity: do text queries find related emoji?).
    samples = {}
    for q in queries[:5]:
        samples[q] = [r[0] for r in admin.execute(
            "SELECT e.name FROM (SELECT emoji_id, code <~> (SELECT jdsh.encode_text('emoji', %s)) d "
            "FROM bench_codes ORDER BY d LIMIT 10) c JOIN (SELECT DISTINCT id, name FROM emoji) e "
            "ON e.id = c.emoji_id ORDER BY c.d", (q,))]
    res["samples"] = samples
    for db, *_ in methods.values():
        db.close()
    seq.close()
    seqe2e.close()
    admin.close()


# ---------------------------------------------------------------- report

def fnum(x, nd=0):
    if x is None:
        return "n/a"
    return f"{x:,.{nd}f}"


def markdown(res: dict) -> str:
    m = res["meta"]
    L = [f"# jdsh models in the database ({m['date']})", "",
         f"{m['cpu']}, {m['cores']} cores, PostgreSQL {m.get('pg', '?')}, one backend, "
         f"`jdsh.device = cpu`, `max_parallel_workers_per_gather = 0`, `jit = off`; load average "
         f"{m.get('load_start', '?')} at the start, {m.get('load_end', '?')} at the end. "
         f"GPU rows: not measured (no GPU on this machine).", ""]
    if res.get("training"):
        L += ["## Training (jdsh.train, CPU)", "",
              "| model | data | epochs | pairs | seconds | MAP i→t | MAP t→i | size |", "|---|---|---|---|---|---|---|---|"]
        for t in res["training"]:
            L.append(f"| {t['model']} v{t['version']} | {t['what']} | {t['epochs']} | {t['pairs']} | "
                     f"{fnum(t['seconds'], 0)}{' (reused)' if t['reused'] else ''} | {fnum(t['map_i2t'], 3)} | "
                     f"{fnum(t['map_t2i'], 3)} | {t['size_bytes'] / 2**20:.1f} MiB |")
        L.append("")
    if res.get("cold_start"):
        L += ["## First calls in a new backend (medians of fresh connections)", "",
              "| model | first jdsh call (loads jdsh.so + libtorch) | first encoder call (loads the model) | next call |",
              "|---|---|---|---|"]
        for k, v in res["cold_start"].items():
            L.append(f"| {k} | {v['library_ms']:.0f} ms | {v['first_encode_ms']:.0f} ms | {v['next_encode_ms']:.2f} ms |")
        L.append("")
    if res.get("throughput"):
        tab = res["tables"]
        L += ["## Encoder throughput in SQL (one backend, CPU, warm)", "",
              f"Rows: {tab['bench_texts']['rows']:,} texts (emoji keywords, avg "
              f"{tab['avg_keywords_words']:.1f} words, plus a distinct suffix word), "
              f"{tab['bench_pngs']['rows']:,} PNGs (emoji, avg {tab['avg_png_bytes']:.0f} bytes), "
              f"{tab['bench_feats']['rows']:,} Wikipedia feature rows; median of {m['reps']} rounds, "
              "statements interleaved. `cpu` = backend CPU seconds / wall seconds (below 1: the "
              "backend waited for a core). `net` = the encoder's own cost, rows / (time - the "
              "floor's time) for the floor row just below it.", "",
              "| input | statement | rows/s | µs/row | rows per CPU-s | cpu | vs floor |", "|---|---|---|---|---|---|---|"]
        rows = res["throughput"]
        for i, r in enumerate(rows):
            rel = []
            fl = rows[i + 1] if i + 1 < len(rows) else None
            if r["kind"] == "enc" and fl and fl["kind"] == "floor" and fl["group"] == r["group"]:
                t_enc, t_fl = median(r["wall_s"]), median(fl["wall_s"])
                net = r["rows"] / (t_enc - t_fl) if t_enc > t_fl else None
                rel.append(f"{t_enc / t_fl:.1f}x the floor's time; net {fnum(net)} rows/s")
            if r["kind"] == "enc" and not r["label"].startswith("per row"):
                # batch forms against the group's per-row SELECT, encode_table against its UPDATE
                want = "per row: UPDATE" if "encode_table" in r["label"] else "per row: SELECT"
                ref = next((x for x in rows if x["group"] == r["group"] and x["label"].startswith(want)), None)
                if ref:
                    rel.append(f"{r['rows_per_s'] / ref['rows_per_s']:.2f}x the rows/s of the per-row {want[9:]}")
            rel = "; ".join(rel)
            lab = r["label"] if r["kind"] == "enc" else f"*{r['label']}*"
            cpu = median(r["cpu_s"]) / median(r["wall_s"])
            L.append(f"| {r['group']} | {lab} | **{fnum(r['rows_per_s'])}** | {r['us_per_row']:.1f} | "
                     f"{fnum(r['rows_per_cpu_s'])} | {cpu:.2f} | {rel} |")
        L.append("")
        cli = res.get("cli", {})
        if cli:
            L += ["Trainer crate in-process (the same model, inputs and machine, run just after):", ""]
            for k in ("encode_text", "encode_features"):
                if k in cli:
                    c = cli[k]
                    L.append(f"- `jdsh-train encode` {k.split('_')[1]} ({c['rows']:,} rows, batched, "
                             f"process startup {median(c['startup_s']):.2f} s subtracted): "
                             f"**{fnum(c['rows_per_s'])} rows/s**")
            b = cli.get("bench_encode", {})
            if "text_single" in b:
                L.append(f"- `jdsh-train {b['cmd']}` (synthetic 8-word BoW, a model trained on it): text "
                         f"batched {fnum(b['text_batched'])}/s, one per call **{fnum(b['text_single'])}/s**, "
                         f"one per call through libtorch {fnum(b['text_single_torch'])}/s; 128-d image features "
                         f"batched {fnum(b['image_batched'])}/s, one per call {fnum(b['image_single'])}/s")
            elif b:
                L.append(f"- `jdsh-train {b['cmd']}`: {b['line'] or 'failed: ' + b['stderr']}")
            L.append("")
        t = next(r for r in rows if r["label"].startswith("per row: SELECT count(jdsh.encode_text"))
        u = next(r for r in rows if r["label"].startswith("per row: UPDATE SET code = jdsh.encode_text"))
        ok = t["rows_per_s"] >= TEXT_TARGET
        L += [f"Target, per-row BoW text encoding >= {TEXT_TARGET:,} rows/s on one core: "
              f"**{'met' if ok else 'not met'}** ({fnum(t['rows_per_s'])} rows/s wall, "
              f"{fnum(t['rows_per_cpu_s'])} per CPU-second in `SELECT count(...)`; "
              f"{fnum(u['rows_per_s'])} rows/s wall for the `UPDATE`, which also writes every row).", ""]
    if res.get("e2e"):
        c = res["codes"]
        e = res["e2e"]
        L += [f"## Text query on {c['rows']:,} image codes (end to end)", "",
              f"{c['rows']:,} 64-bit codes ({c['distinct']:,} distinct): the emoji model's codes of "
              f"the {c['emoji_png_codes']:,} emoji PNGs ({c['emoji_distinct_codes']:,} distinct), each copied with "
              f"1-3 random bit flips; mih index (default substrings) built in {c['index_build_s']:.1f} s, "
              f"{c['index_bytes'] / 2**20:.1f} MiB" + (f"; the peer with `WITH (substrings = {c['substrings_peer']})` "
              f"is a copy of the table with its own index, built in {c['index_m_build_s']:.1f} s" if c.get("index_m_build_s") else "") + f". {len(res['queries'])} distinct text queries, "
              "psycopg prepared statements, one query per call, interleaved query by query; client "
              "time includes the round trip, server time is EXPLAIN (ANALYZE, TIMING OFF) execution + "
              "planning.", "",
              "| method | queries | client p50 / p95 ms | server p50 / p95 ms | encoder calls per query | p50 vs e2e |",
              "|---|---|---|---|---|---|"]
        e2e_label = next(k for k in e if k.startswith("e2e: "))
        base = e[e2e_label]["p50_ms"]
        for label, v in e.items():
            if not v["n"]:
                continue
            calls = v.get("encoder_calls")
            calls = ", ".join(str(x) for x in sorted(set(calls))) if calls else ""
            srv = (f"{v['server_p50_ms']:.2f} / {v['server_p95_ms']:.2f}" if v["server_p50_ms"] is not None else "")
            ratio = f"{v['p50_ms'] / base:.2f}x" if v["p50_ms"] else ""
            name = f"**{label}**" if label == e2e_label else label
            L.append(f"| {name} | {v['n']} | {v['p50_ms']:.2f} / {v['p95_ms']:.2f} | {srv} | {calls} | {ratio} |")
        ok = base < E2E_TARGET_MS
        L += ["", f"Target, p50 under {E2E_TARGET_MS:g} ms on 1M codes: **{'met' if ok else 'not met'}** "
              f"({base:.2f} ms client-side on {c['rows']:,} codes). Plans: " +
              "; ".join(f"{k.split(':')[0]}: `{v['nodes']}`" for k, v in res["plans"].items()) +
              f". Index answers checked against a sequential scan on {res['check']['queries']} queries: "
              f"{res['check']['top10_distance_mismatches']} top-10 distance mismatches.", ""]
        if res.get("by_d10"):
            d10 = res["d10"]
            labels = [k for k in e if k.startswith(("e2e", "index alone")) and e[k]["n"] == len(d10)]
            L += [f"Distance of the 10th nearest image code to the text query: p50 {pct(d10, 50):g}, "
                  f"min {min(d10)}, max {max(d10)} (an exact search must probe every code within it). "
                  "Client p50 ms by that distance:", "",
                  "| 10th-NN distance | queries | " + " | ".join(k.split(":")[0] for k in labels) + " |",
                  "|---|---|" + "---|" * len(labels)]
            for row in res["by_d10"]:
                lo, hi = row["range"]
                rng = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi < 64 else f">= {lo}")
                L.append(f"| {rng} | {row['queries']} | " +
                         " | ".join(fnum(row.get(k), 2) for k in labels) + " |")
            L.append("")
        if res.get("samples"):
            L += ["Sample answers (emoji names of the top 10 codes):", ""]
            for q, names in res["samples"].items():
                L.append(f"- {q!r}: {', '.join(dict.fromkeys(n.lower() for n in names))}")
            L.append("")
    L.append(f"Run time: {res['meta'].get('seconds', 0):.0f} s.")
    return "\n".join(L)


def write_outputs(res: dict, out: str) -> None:
    with open(os.path.join(out, "models.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)
    with open(os.path.join(out, "models.md"), "w") as f:
        f.write(markdown(res) + "\n")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default=os.environ.get("PGDATABASE", "jdsh_models_bench"))
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    p.add_argument("--trainer", default="jdsh-train", help="the jdsh-train binary")
    p.add_argument("--reuse-models", action="store_true", help="keep trained models 'emoji' and 'wiki' if present")
    p.add_argument("--quick", action="store_true",
                   help="20k texts and features, 5,682 PNGs, 1 round, 30 queries, 200k codes")
    p.add_argument("--emoji-epochs", type=int, default=20)
    p.add_argument("--wiki-epochs", type=int, default=30)
    p.add_argument("--text-rows", type=int, default=200_000)
    p.add_argument("--png-rows", type=int, default=22_728, help="4 copies of the 5,682 emoji PNGs")
    p.add_argument("--feature-rows", type=int, default=200_000)
    p.add_argument("--chunk", type=int, default=1000, help="items per batch call (texts, features)")
    p.add_argument("--png-chunk", type=int, default=256, help="items per batch call (PNGs)")
    p.add_argument("--reps", type=int, default=5, help="throughput rounds (medians)")
    p.add_argument("--cold-reps", type=int, default=5)
    p.add_argument("--cli-items", type=int, default=20_000)
    p.add_argument("--codes", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--seq-queries", type=int, default=10, help="queries for the seq scan with the encoder once")
    p.add_argument("--seq-e2e-queries", type=int, default=2, help="queries for the seq scan encoding every row")
    p.add_argument("--check-queries", type=int, default=10)
    p.add_argument("--mih-substrings", type=int, default=4,
                   help="peer: the same codes with an index WITH (substrings = m); 0 leaves it out")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--skip", default="", help="comma list of sections to skip: throughput,cli,e2e,cold")
    a = p.parse_args(argv)
    if a.quick:
        a.text_rows, a.feature_rows, a.png_rows = 20_000, 20_000, 5_682
        a.reps, a.cold_reps, a.queries, a.codes = 1, 2, 30, 200_000
        a.seq_queries, a.seq_e2e_queries, a.cli_items = 3, 1, 5_000
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    t0 = time.perf_counter()
    res = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "cores": os.cpu_count(),
                    "reps": args.reps, "argv": sys.argv[1:], "load_start": loadavg()}}
    os.makedirs(args.out, exist_ok=True)
    db = Db(args.db)
    db.execute("SET client_min_messages = warning")
    db.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    res["meta"]["pg"] = db.one("SHOW server_version")
    res["meta"]["jdsh"] = db.one("SELECT extversion FROM pg_extension WHERE extname = 'jdsh'")
    train_models(db, args, res)
    db.close()
    write_outputs_partial = lambda: (res["meta"].__setitem__("seconds", time.perf_counter() - t0),
                                     res["meta"].__setitem__("load_end", loadavg()),
                                     write_outputs(res, args.out))
    write_outputs_partial()
    if "cold" not in skip:
        cold_start(args, res)
    if "throughput" not in skip:
        throughput(args, res)
        write_outputs_partial()
        if "cli" not in skip:
            cli_peers(args, res)
            write_outputs_partial()
    if "e2e" not in skip:
        end_to_end(args, res)
    write_outputs_partial()
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
