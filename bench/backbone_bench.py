#!/usr/bin/env python3
"""EfficientNet-Lite0: the trainer's Rust (tch) port against PyTorch eager, same machine, same run.

Run it through bench/backbone.sh, which builds the Rust side (the example `backbone_bench`) and
pins everything to one CPU core.

  1. Agreement: the Rust FeatureExtractor's 1280-d features of real images (emoji PNGs when
     .cache/emoji exists, PNG/JPEG files given with --images or found in the cargo registry, and a
     synthetic 64 px RGBA PNG written here) against the eager network of
     scripts/convert_backbone.py run on the same decoded pixels (Rust's decoder; resize and
     normalisation done here with torch: bilinear to 224, antialiased when shrinking); also the
     synthetic batch of the speed test. Max abs diff per image.
  2. Speed on one core (torch.set_num_threads(1) here, tch::set_num_threads(1) there): images/s
     of the features (no classifier) at each batch size, on the synthetic batch
     raw[n, c, h, w] = (7c + 3h + 5w + 11n) mod 256 (identical on both sides). Rounds interleave
     PyTorch eager (the plain network, under no_grad and under inference_mode), PyTorch eager with
     the Rust port's optimisations (BatchNorm folded into the convolutions, channels-last input,
     in-place ReLU6 and residual adds), and the Rust binary (its own process; warm-up excluded on every side); medians over
     every timed pass of every round.

Writes bench/out/backbone.md and bench/out/backbone.json.
"""
import argparse
import copy
import glob
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, HERE)
import convert_backbone as cb  # noqa: E402
from common import cpu_name  # noqa: E402

TARGET = 1.2  # Rust time per image at most 1.2x PyTorch's


def log(msg):
    print(f"[backbone {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def weights_path():
    d = os.environ.get("JDSH_BACKBONE_DIR")
    if not d:
        pg = os.environ.get("PG_CONFIG") or "pg_config"
        share = subprocess.run([pg, "--sharedir"], capture_output=True, text=True, check=True).stdout.strip()
        d = os.path.join(share, "extension", "jdsh")
    return os.path.join(d, "efficientnet_lite0.safetensors")


def synthetic(batch):
    n = torch.arange(batch, dtype=torch.float32).view(-1, 1, 1, 1)
    c = torch.arange(3, dtype=torch.float32).view(1, -1, 1, 1)
    h = torch.arange(224, dtype=torch.float32).view(1, 1, -1, 1)
    w = torch.arange(224, dtype=torch.float32).view(1, 1, 1, -1)
    raw = torch.remainder(c * 7 + h * 3 + w * 5 + n * 11, 256)
    return ((raw - 127.0) / 128.0).contiguous()


def preprocess(rgb_hwc):
    """Decoded pixels (H x W x 3 in [0, 1]) to the network's input, as the Rust FeatureExtractor."""
    h, w, _ = rgb_hwc.shape
    x = rgb_hwc.permute(2, 0, 1).unsqueeze(0) * 255.0
    if (h, w) != (224, 224):
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=(h > 224 or w > 224))
    return (x - 127.0) / 128.0


def write_png(path, size=64):
    """A synthetic emoji-like RGBA PNG: a disc with a colour gradient on transparency."""
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            r = ((x - 31.5) ** 2 + (y - 31.5) ** 2) ** 0.5
            a = 255 if r < 24 else (128 if r < 28 else 0)
            row += bytes([(x * 4) % 256, (y * 3 + 90) % 256, (x * y // 16 + 60) % 256, a])
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(b"".join(rows))))
        f.write(chunk(b"IEND", b""))


def default_images(tmp):
    emoji = os.environ.get("JDSH_EMOJI_DIR", os.path.join(ROOT, ".cache", "emoji"))
    found = sorted(glob.glob(os.path.join(emoji, "emoji-datasource-google", "img", "google", "64", "*.png")))[:8]
    reg = os.path.expanduser("~/.cargo/registry/src/*/")
    for pattern in ("petgraph-*/assets/images/pridosaurus-64.png", "jpeg-decoder-*/benches/tower.jpg"):
        found += sorted(glob.glob(os.path.join(reg, pattern)))[-1:]
    synth = os.path.join(tmp, "synthetic-emoji-64.png")
    write_png(synth)
    return found + [synth]


def read_f32(path, shape):
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)


def agreement(model, rust_bin, images, tmp):
    out = os.path.join(tmp, "dump")
    subprocess.run([rust_bin, "dump", "--out", out, *images], check=True)
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    rows = []
    with torch.inference_mode():
        for item in index:
            rgb = read_f32(os.path.join(out, item["rgb"]), (item["height"], item["width"], 3))
            got = read_f32(os.path.join(out, item["feat"]), (1280,))
            want = model.features(preprocess(rgb))[0]
            top5 = model._fc(want).topk(5).indices.tolist()
            rows.append({
                "image": os.path.basename(item["file"]),
                "size": f"{item['width']}x{item['height']}",
                "max_abs_diff": (got - want).abs().max().item(),
                "max_feature": want.abs().max().item(),
                "nonzero": int((want != 0).sum()),
                "top5_imagenet": top5,
            })
        got = read_f32(os.path.join(out, "synthetic.feat.f32"), (2, 1280))
        want = model.features(synthetic(2))
        rows.append({
            "image": "synthetic batch of 2 (speed input)",
            "size": "224x224",
            "max_abs_diff": (got - want).abs().max().item(),
            "max_feature": want.abs().max().item(),
            "nonzero": int((want != 0).sum()),
            "top5_imagenet": model._fc(want[0]).topk(5).indices.tolist(),
        })
    return rows


def folded(model):
    """A copy with the Rust port's optimisations, for the "same optimisations" row: every
    BatchNorm folded into the convolution before it, in-place ReLU6 and residual adds."""
    m = copy.deepcopy(model)
    m.inplace = True
    for b in m._blocks:
        b.inplace = True
    pairs = [(m, "_conv_stem", "_bn0"), (m, "_conv_head", "_bn1")]
    for b in m._blocks:
        if b.expand:
            pairs.append((b, "_expand_conv", "_bn0"))
        pairs += [(b, "_depthwise_conv", "_bn1"), (b, "_project_conv", "_bn2")]
    with torch.no_grad():
        for owner, conv_name, bn_name in pairs:
            conv, bn = getattr(owner, conv_name).conv, getattr(owner, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            conv.bias = torch.nn.Parameter(bn.bias - bn.running_mean * scale)
            setattr(owner, bn_name, torch.nn.Identity())
    return m.eval()


def time_python(model, batch, seconds, mode, channels_last=False):
    x = synthetic(batch)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = torch.inference_mode if mode == "inference_mode" else torch.no_grad
    times = []
    with ctx():
        t0 = time.perf_counter()
        n = 0
        while n < 2 or time.perf_counter() - t0 < 0.5:
            model.features(x)
            n += 1
        start = time.perf_counter()
        while not times or time.perf_counter() - start < seconds:
            t = time.perf_counter()
            f = model.features(x)
            times.append(time.perf_counter() - t)
            assert f.shape == (batch, 1280)
    return times


def time_rust(rust_bin, batch, seconds):
    out = subprocess.run(
        [rust_bin, "speed", "--batch", str(batch), "--seconds", str(seconds), "--threads", "1"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["times"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rust", required=True, help="the backbone_bench example binary")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per method, batch and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", nargs="*", help="PNG/JPEG files for the agreement check")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    path = weights_path()
    model = cb.load_model(path)
    cpus = sorted(os.sched_getaffinity(0))
    log(f"weights {path}; torch {torch.__version__}, 1 thread; CPUs allowed {cpus}")

    with tempfile.TemporaryDirectory() as tmp:
        images = args.images or default_images(tmp)
        check = agreement(model, args.rust, images, tmp)
    for r in check:
        log(f"agreement {r['image']} ({r['size']}): max abs diff {r['max_abs_diff']:.2e}")

    batches = [int(b) for b in args.batches.split(",")]
    fused = folded(model)
    with torch.inference_mode():
        x = synthetic(2)
        d = (fused.features(x.contiguous(memory_format=torch.channels_last)) - model.features(x)).abs().max().item()
    log(f"PyTorch with the optimisations vs plain: max abs diff {d:.2e}")
    runs = {
        "PyTorch eager, no_grad": lambda b: time_python(model, b, args.seconds, "no_grad"),
        "PyTorch eager, inference_mode": lambda b: time_python(model, b, args.seconds, "inference_mode"),
        "PyTorch eager, BN folded + channels-last + in-place, inference_mode": lambda b: time_python(
            fused, b, args.seconds, "inference_mode", channels_last=True),
        "Rust (tch), BN folded + channels-last + in-place, no_grad": lambda b: time_rust(args.rust, b, args.seconds),
    }
    methods = list(runs)
    times = {(m, b): [] for m in methods for b in batches}
    for r in range(args.rounds):
        for b in batches:
            for m in methods:
                t = runs[m](b)
                times[(m, b)] += t
                log(f"round {r + 1} batch {b} {m}: {len(t)} passes, median {statistics.median(t) * 1e3:.1f} ms")

    speed = []
    for b in batches:
        plain = min(statistics.median(times[(m, b)]) for m in methods[:2])
        same = statistics.median(times[(methods[2], b)])
        for m in methods:
            med = statistics.median(times[(m, b)])
            speed.append({
                "batch": b, "method": m, "passes": len(times[(m, b)]), "median_ms": med * 1e3,
                "ms_per_image": med * 1e3 / b, "images_per_s": b / med,
                "vs_pytorch_eager": med / plain, "vs_pytorch_same_optimisations": med / same,
            })

    os.makedirs(args.out, exist_ok=True)
    meta = {"cpu": cpu_name(), "torch": torch.__version__, "threads": 1, "cpus_allowed": cpus,
            "seconds": args.seconds, "rounds": args.rounds, "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(args.out, "backbone.json"), "w") as f:
        json.dump({"meta": meta, "agreement": check, "speed": speed}, f, indent=1)
    md = [f"EfficientNet-Lite0 features, one core ({meta['cpu']}), torch {meta['torch']}, "
          f"{args.rounds} rounds x {args.seconds:g} s per method and batch, {meta['date']}", "",
          "| batch | method | images/s | ms per image | time vs PyTorch eager | vs PyTorch, same optimisations |",
          "|---|---|---|---|---|---|"]
    for s in speed:
        md.append(f"| {s['batch']} | {s['method']} | {s['images_per_s']:.1f} | {s['ms_per_image']:.1f} | "
                  f"{s['vs_pytorch_eager']:.2f}x | {s['vs_pytorch_same_optimisations']:.2f}x |")
    md += ["", "| image | size | Rust vs PyTorch max abs diff | largest feature | ImageNet top-5 |", "|---|---|---|---|---|"]
    for r in check:
        md.append(f"| {r['image']} | {r['size']} | {r['max_abs_diff']:.2e} | {r['max_feature']:.3f} | "
                  f"{r['top5_imagenet']} |")
    rust = [s for s in speed if s["method"].startswith("Rust")]
    worst = max(s["vs_pytorch_eager"] for s in rust)
    worst_same = max(s["vs_pytorch_same_optimisations"] for s in rust)
    md += ["", f"Target: Rust at most {TARGET}x PyTorch eager's time: {'met' if worst <= TARGET else 'NOT met'} "
           f"(worst {worst:.2f}x; {worst_same:.2f}x against PyTorch with the same optimisations)."]
    with open(os.path.join(args.out, "backbone.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
