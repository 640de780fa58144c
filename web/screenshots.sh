#!/usr/bin/env bash
# Takes the screenshots in docs/screenshots/ (viewer and host pages, 1280x800 and 390x844) with
# headless Chromium and chromedriver (Debian: chromium, chromium-driver).
# Against a running demo:   LIVEPULSE_DEMO_URL=http://127.0.0.1:8090 web/screenshots.sh
# Without one, the stack is started in-process on free ports, as `livepulse demo` starts it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test -p livepulse-tests --test web_demo -- --ignored --exact screenshots --nocapture
