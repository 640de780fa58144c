#!/usr/bin/env bash
# Takes the screenshots in docs/screenshots/ (viewer and host pages, 1280x800 and 390x844) with
# headless Chromium and chromedriver (Debian: chromium, chromium-driver) from a running demo
# (web/screenshots.py drives them).
#   web/screenshots.sh                       starts `livepulse demo` (release build) on its
#                                            default ports, takes the pictures, stops it
#   LIVEPULSE_DEMO_URL=http://127.0.0.1:8090 web/screenshots.sh   uses a demo already running
# Each page is given 8 s to connect, start its player and draw its charts before the picture.
# Only 127.0.0.1; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/screenshots
mkdir -p "$out"
base=${LIVEPULSE_DEMO_URL:-}
demo=""
profile=$(mktemp -d)
trap '[ -n "$demo" ] && kill "$demo" 2>/dev/null; wait 2>/dev/null; rm -rf "$profile"' EXIT
if [ -z "$base" ]; then
  cargo build --release -q
  target/release/livepulse demo >"$profile/demo.log" 2>&1 &
  demo=$!
  base=http://127.0.0.1:8090
  for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  sleep 6 # the first HLS segments and some chat history
fi
python3 web/screenshots.py "$base" "$out"
