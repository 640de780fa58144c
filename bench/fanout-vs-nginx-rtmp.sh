#!/usr/bin/env bash
# Media fan-out: server CPU, memory and viewer latency for many viewers of one stream, our
# origin (RTMP play and HTTP-FLV) next to nginx-rtmp (RTMP play), measured in the same run.
# The server runs pinned to core 0; the publisher and `livepulse load` run pinned to core 1.
#
# usage: bench/fanout-vs-nginx-rtmp.sh [VIEWERS="1000 2000"] [SECONDS=30]
#   QOE=5%            share of viewers that measure latency (the rest count bytes, frames, stalls)
#   RUNS="rtmp flv nginx"  which servers to measure
# needs: nginx, libnginx-mod-rtmp (Debian), python3, a release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
VIEWERS=${1:-"1000 2000"}
DUR=${2:-30}
QOE=${QOE:-100%}
RUNS=${RUNS:-"rtmp flv nginx"}
RAMP=10
SETTLE=5
HZ=$(getconf CLK_TCK)
BIN=target/release/livepulse
bench_workdir fanout
ulimit -n "$(ulimit -Hn)"

cargo build --release -q

# Starts `livepulse push` to rtmp://127.0.0.1:PORT/live/cam on core 1 and waits for it to run.
start_pusher() {
  taskset -c 1 "$BIN" push "rtmp://127.0.0.1:$1/live/cam" >"$work/push.log" 2>&1 &
  pusher=$!
  pids+=($pusher)
  sleep 3
}

# Runs one measurement. Args: label, server pids (space separated), play URL, driver, viewers.
# Prints one markdown table row.
measure() {
  local label=$1 spids=$2 url=$3 driver=$4 n=$5
  local json="$work/$label-$n.json"
  TOKIO_WORKER_THREADS=1 taskset -c 1 "$BIN" load "$driver" "$url" --viewers "$n" \
    --qoe-sample "$QOE" --ramp "${RAMP}s" --duration "$((RAMP + SETTLE + DUR + 2))s" --json "$json" --quiet \
    >"$work/$label-$n.log" 2>&1 &
  local gen=$!
  pids+=($gen)
  sleep $((RAMP + SETTLE))
  # shellcheck disable=SC2086
  local t0 r0 t1 r1
  t0=$(cpu_ticks $spids); r0=$(rss_kib $spids)
  sleep "$DUR"
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $spids); r1=$(rss_kib $spids)
  wait "$gen" || true
  python3 - "$json" "$label" "$n" "$t0" "$t1" "$r1" "$HZ" "$DUR" "$idle_rss" <<'PY'
import json, sys
path, label, n, t0, t1, rss, hz, dur, idle = sys.argv[1:]
n, hz, dur = int(n), int(hz), int(dur)
cores = (int(t1) - int(t0)) / hz / dur
try:
    r = json.load(open(path))
except Exception as e:
    print(f"| {label} | {n} | {cores:.3f} | {cores * 1000 / n:.3f} | – | – | – | – | report missing: {e} |")
    sys.exit()
w = r["workloads"][0]
ops = w["operations"]
lat = ops.get("live_latency") or ops.get("latency") or {}
media = w.get("media", {})
g = r["generators"][0]
rss_per = (int(rss) - int(idle)) * 1024 / n
warn = "; ".join(g.get("warnings", [])) or ""
print(f"| {label} | {n} | {cores:.3f} | {cores * 1000 / n:.3f} | {rss_per / 1024:.1f} KiB"
      f" | {lat.get('p50_ms', float('nan')):.0f} / {lat.get('p99_ms', float('nan')):.0f} ms"
      f" | {media.get('stalls', '–')} | {media.get('sessions', '–')} "
      f"| {g.get('cpu_cores_avg', 0):.2f} {warn} |")
PY
}

echo "viewers: $VIEWERS, measured ${DUR}s after a ${RAMP}s ramp and ${SETTLE}s settle; sample: assets/sample.flv (~836 kbit/s); latency measured by $QOE of viewers"
echo
echo "| server | viewers | server cores | cores per 1,000 viewers | RSS per viewer | viewer latency p50 / p99 | stalls | sessions | generator cores |"
echo "|---|---|---|---|---|---|---|---|---|"

# Our origin, one run per protocol and viewer count.
for driver in rtmp-play flv-play; do
  case " $RUNS " in *" ${driver%-play} "*) ;; *) continue ;; esac
  for n in $VIEWERS; do
    rtmp_port=$(free_port); http_port=$(free_port)
    loopback_origin_config "$work/origin.toml"
    RUST_LOG=warn TOKIO_WORKER_THREADS=1 taskset -c 0 "$BIN" origin --rtmp "127.0.0.1:$rtmp_port" \
      --http "127.0.0.1:$http_port" --config "$work/origin.toml" >"$work/origin.log" 2>&1 &
    origin=$!
    pids+=($origin)
    wait_port "$rtmp_port"
    start_pusher "$rtmp_port"
    idle_rss=$(rss_kib "$origin")
    if [ "$driver" = rtmp-play ]; then
      url="rtmp://127.0.0.1:$rtmp_port/live/cam"; label="livepulse RTMP play"
    else
      url="http://127.0.0.1:$http_port/live/cam.flv"; label="livepulse HTTP-FLV"
    fi
    measure "$label" "$origin" "$url" "$driver" "$n"
    kill "$pusher" "$origin" 2>/dev/null || true
    wait "$pusher" "$origin" 2>/dev/null || true
  done
done

# nginx-rtmp, one worker.
case " $RUNS " in *" nginx "*) nginx_views=$VIEWERS ;; *) nginx_views="" ;; esac
for n in $nginx_views; do
  port=$(free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 16384; }
rtmp {
  server {
    listen 127.0.0.1:$port;
    chunk_size 4096;
    application live { live on; }
  }
}
CONF
  taskset -c 0 nginx -c "$work/nginx.conf" -p "$work/nginx" &
  master=$!
  pids+=($master)
  wait_port "$port"
  start_pusher "$port"
  npids="$master $(pgrep -P "$master" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  idle_rss=$(rss_kib $npids)
  measure "nginx-rtmp 1 worker, RTMP play" "$npids" "rtmp://127.0.0.1:$port/live/cam" rtmp-play "$n"
  kill "$pusher" "$master" 2>/dev/null || true
  wait "$pusher" "$master" 2>/dev/null || true
done
