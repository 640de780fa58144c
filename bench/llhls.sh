#!/usr/bin/env bash
# LL-HLS on loopback, in two parts, with the origin, the edge and the publisher on core 0 and
# the load generator on core 1:
#   1. End-to-end latency by protocol, all from the publisher's SEI clock stamps in one load
#      run: RTMP and HTTP-FLV from the origin, HTTP-FLV, TS-HLS and LL-HLS through the edge,
#      LL-HLS from the origin (LATENCY_VIEWERS viewers each, SECS seconds).
#   2. VIEWERS LL-HLS viewers through the edge: origin requests per second (the edge's
#      back-origin requests) and the edge's CPU, per 1,000 viewers.
#
# usage: bench/llhls.sh [VIEWERS=1000] [SECS=60] [LATENCY_VIEWERS=5]
# needs: python3, a release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
VIEWERS=${1:-1000}
SECS=${2:-60}
LATENCY_VIEWERS=${3:-5}
BIN=target/release/livepulse
HZ=$(getconf CLK_TCK)
bench_workdir llhls
ulimit -n "$(ulimit -Hn)"

cargo build --release -q

RTMP=$(free_port)
ORIGIN=$(free_port)
EDGE=$(free_port)
loopback_origin_config "$work/origin.toml"
taskset -c 0 "$BIN" origin --rtmp "127.0.0.1:$RTMP" --http "127.0.0.1:$ORIGIN" \
  --config "$work/origin.toml" >"$work/origin.log" 2>&1 &
origin=$!
pids+=($origin)
taskset -c 0 "$BIN" edge --listen "127.0.0.1:$EDGE" --origin "http://127.0.0.1:$ORIGIN" \
  --max-connections 20000 --max-connections-per-ip 20000 >"$work/edge.log" 2>&1 &
edge=$!
pids+=($edge)
wait_port "$RTMP"
wait_port "$ORIGIN"
wait_port "$EDGE"
taskset -c 0 "$BIN" push "rtmp://127.0.0.1:$RTMP/live/cam" >"$work/push.log" 2>&1 &
pids+=($!)
sleep 6

o="http://127.0.0.1:$ORIGIN/live"
e="http://127.0.0.1:$EDGE/live"
# One closed workload of LATENCY_VIEWERS viewers. Args: name, driver kind, URL.
workload() {
  printf '\n[[workload]]\nname = "%s"\ndriver = { kind = "%s", url = "%s" }\n' "$1" "$2" "$3"
  printf 'model = { kind = "closed", users = %s }\n' "$LATENCY_VIEWERS"
}
{
  printf 'name = "latency by protocol"\nduration = "%ss"\n' "$((SECS + 5))"
  workload "RTMP, origin" rtmp-play "rtmp://127.0.0.1:$RTMP/live/cam"
  workload "HTTP-FLV, origin" flv-play "$o/cam.flv"
  workload "HTTP-FLV, edge" flv-play "$e/cam.flv"
  workload "TS-HLS, edge" hls-play "$e/cam.m3u8"
  workload "LL-HLS, origin" llhls-play "$o/cam/ll.m3u8"
  workload "LL-HLS, edge" llhls-play "$e/cam/ll.m3u8"
} >"$work/latency.toml"
TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" load "$work/latency.toml" --json "$work/latency.json" \
  --quiet >"$work/latency.log" 2>&1 || true

echo "Latency from SEI stamps, $LATENCY_VIEWERS viewers per row, ${SECS}s, one run"
echo
echo "| protocol | live latency p50 | p90 | p99 | max | every frame p50 / p99 (join included) | stalls | sessions |"
echo "|---|---|---|---|---|---|---|---|"
python3 - "$work/latency.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for w in r["workloads"]:
    ops = w["operations"]
    live = ops.get("live_latency") or {}
    every = ops.get("latency") or {}
    media = w.get("media", {})
    cell = lambda h, k: f"{h[k]:.0f} ms" if k in h else "–"
    print(f"| {w['name']} | {cell(live, 'p50_ms')} | {cell(live, 'p90_ms')} | {cell(live, 'p99_ms')}"
          f" | {cell(live, 'max_ms')} | {cell(every, 'p50_ms')} / {cell(every, 'p99_ms')}"
          f" | {media.get('stalls', '–')} | {media.get('sessions', '–')} |")
PY

# Part 2: VIEWERS LL-HLS viewers through the edge, 10% of them reading SEI stamps.
# Requests the edge has sent to the origin so far.
origin_requests() {
  curl -s "http://127.0.0.1:$EDGE/metrics" | awk '/^livepulse_edge_back_origin_requests_total /{print $2}'
}
RAMP=20
before_req=$(origin_requests)
TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" load llhls-play "$e/cam/ll.m3u8" --viewers "$VIEWERS" \
  --qoe-sample 0.1 --ramp "${RAMP}s" --duration "$((RAMP + 5 + SECS + 2))s" \
  --json "$work/viewers.json" --quiet >"$work/viewers.log" 2>&1 &
gen=$!
pids+=($gen)
sleep $((RAMP + 5))
req0=$(origin_requests)
t0=$(cpu_ticks "$edge")
o0=$(cpu_ticks "$origin")
sleep "$SECS"
req1=$(origin_requests)
t1=$(cpu_ticks "$edge")
o1=$(cpu_ticks "$origin")
rss=$(rss_kib "$edge")
wait "$gen" || true
echo
echo "$VIEWERS LL-HLS viewers through the edge, measured ${SECS}s after a ${RAMP}s ramp (back-origin requests before the run: $before_req)"
echo
echo "| viewers | origin requests/s | edge cores | edge cores per 1,000 viewers | origin cores | edge RSS MiB | live latency p50 / p99 | stalls | playlist / part requests per viewer | generator cores |"
echo "|---|---|---|---|---|---|---|---|---|---|"
python3 - "$work/viewers.json" "$VIEWERS" "$req0" "$req1" "$t0" "$t1" "$o0" "$o1" "$HZ" "$SECS" "$rss" <<'PY'
import json, sys
path, n, q0, q1, t0, t1, o0, o1, hz, secs, rss = sys.argv[1:]
n, hz, secs = int(n), int(hz), int(secs)
edge = (int(t1) - int(t0)) / hz / secs
origin = (int(o1) - int(o0)) / hz / secs
req = (float(q1) - float(q0)) / secs
r = json.load(open(path))
w = r["workloads"][0]
ops = w["operations"]
lat = ops.get("live_latency") or {}
media = w.get("media", {})
ll = media.get("llhls", {})
g = r["generators"][0]
print(f"| {n} | {req:.1f} | {edge:.3f} | {edge * 1000 / n:.3f} | {origin:.3f} | {int(rss) / 1024:.1f}"
      f" | {lat.get('p50_ms', float('nan')):.0f} / {lat.get('p99_ms', float('nan')):.0f} ms"
      f" | {media.get('stalls', '–')}"
      f" | {ll.get('playlist_requests_per_viewer', 0):.0f} / {ll.get('part_requests_per_viewer', 0):.0f}"
      f" | {g.get('cpu_cores_avg', 0):.2f} {'; '.join(g.get('warnings', []))} |")
PY
