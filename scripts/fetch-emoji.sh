#!/usr/bin/env bash
# Downloads the emoji data (data card, section 3) from the npm registry with `npm pack` and unpacks
# each package into $JDSH_EMOJI_DIR (default <repo>/.cache/emoji)/<name>/. Idempotent: a package
# whose folder is complete (marker file .done) is skipped, so re-running costs nothing.
#
# What you download, and its terms (from the packages' LICENSE and README):
#   emoji-datasource-google@16.0.0    MIT data; Google Noto emoji images Apache-2.0        (~74 MB)
#   emoji-datasource-twitter@16.0.0   MIT data; Twemoji images CC-BY 4.0 (attribution)     (~62 MB)
#   emoji-datasource-facebook@16.0.0  MIT data; Facebook images: "no clear licensing"      (~103 MB)
#   emojilib@4.0.3                    MIT (emoji keywords)                                 (~53 KB)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${JDSH_EMOJI_DIR:-$ROOT/.cache/emoji}"
PACKAGES=(
    emoji-datasource-google@16.0.0
    emoji-datasource-twitter@16.0.0
    emoji-datasource-facebook@16.0.0
    emojilib@4.0.3
)
command -v npm >/dev/null || { echo "fetch-emoji: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$DEST"
for spec in "${PACKAGES[@]}"; do
    name="${spec%@*}"
    out="$DEST/$name"
    if [[ -f "$out/.done" && "$(cat "$out/.done")" == "$spec" ]]; then
        continue
    fi
    echo "fetch-emoji: $spec -> $out" >&2
    tmp="$(mktemp -d "$DEST/.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
    tgz=("$tmp"/*.tgz)
    mkdir -p "$tmp/x"
    tar -xzf "${tgz[0]}" -C "$tmp/x"
    rm -rf "$out"
    mv "$tmp/x/package" "$out"
    echo "$spec" >"$out/.done"
    rm -rf "$tmp"
    trap - EXIT
done
echo "$DEST"
