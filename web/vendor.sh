#!/usr/bin/env bash
# Refreshes the vendored browser bundles in web/vendor/ from npm and prints their sha256 hashes.
# Pinned versions; change them here, run this script, check the pages, update README.md there.
# Needs npm (only to refresh; building and running livepulse never does).
set -euo pipefail
cd "$(dirname "$0")/vendor"

HLS_JS=1.7.4       # hls.js: HLS and LL-HLS in browsers through Media Source Extensions
MPEGTS_JS=1.8.2    # mpegts.js: HTTP-FLV in browsers

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "hls.js@$HLS_JS" "mpegts.js@$MPEGTS_JS" >/dev/null)

mkdir -p "$tmp/hls" "$tmp/mpegts"
tar -xzf "$tmp/hls.js-$HLS_JS.tgz" -C "$tmp/hls"
tar -xzf "$tmp/mpegts.js-$MPEGTS_JS.tgz" -C "$tmp/mpegts"

cp "$tmp/hls/package/dist/hls.min.js" hls.min.js
cp "$tmp/hls/package/LICENSE" LICENSE.hls.js.txt
cp "$tmp/mpegts/package/dist/mpegts.js" mpegts.js
cp "$tmp/mpegts/package/LICENSE" LICENSE.mpegts.js.txt
cp "$tmp/mpegts/package/dist/mpegts.js.LICENSE.txt" mpegts.js.LICENSE.txt

echo "hls.js $HLS_JS, mpegts.js $MPEGTS_JS"
sha256sum hls.min.js mpegts.js
