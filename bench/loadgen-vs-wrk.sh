#!/usr/bin/env bash
# How much load one `livepulse load` process produces, on this machine, with the server pinned
# to core 0 and the generator to core 1 (one worker thread):
#  1. HTTP requests/s against nginx serving a 1 KiB static file: `livepulse load http` next to
#     wrk with the same connections and core budget (two alternating rounds each).
#  2. Generator CPU and memory per HLS viewer and per RTMP player (nginx-rtmp serving one
#     published stream), per active WebSocket chat member, and memory per idle WebSocket
#     member (our business server), from the generator's own report.
#
# usage: bench/loadgen-vs-wrk.sh [SECONDS=10]
# needs: python3, wrk, nginx + libnginx-mod-rtmp, taskset; builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
SECS=${1:-10}
MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so
work=$(mktemp -d /dev/shm/livepulse-loadgen-bench.XXXXXX)
chmod 0777 "$work"
pids=()
cleanup() {
  [ -s "$work/nginx.pid" ] && kill -TERM "$(cat "$work/nginx.pid")" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release -q
bin=target/release/livepulse
gen() { TOKIO_WORKER_THREADS=1 taskset -c 1 "$bin" load "$@" --quiet; }
field() { python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

http_port=$(free_port); rtmp_port=$(free_port)
mkdir -p "$work/www" "$work/hls"; chmod 0777 "$work/hls"
head -c 1024 /dev/urandom >"$work/www/1k.bin"
cat >"$work/nginx.conf" <<CONF
load_module $MODULE;
daemon off;
worker_processes 1;
worker_rlimit_nofile 30000;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 20000; }
rtmp { server { listen 127.0.0.1:$rtmp_port; chunk_size 4096;
  application live { live on; hls on; hls_path $work/hls; hls_fragment 2s; hls_playlist_length 12s; } } }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$http_port;
    location / { root $work/www; }
    location /hls/ { alias $work/hls/; types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; } } } }
CONF
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
wait_port "$http_port"; wait_port "$rtmp_port"
url="http://127.0.0.1:$http_port/1k.bin"

echo "== 1. HTTP: 50 connections, one core each side, ${SECS}s runs"
declare -a wrk_rps ours_rps
for round in 1 2; do
  w=$(taskset -c 1 wrk -t1 -c50 -d"${SECS}s" "$url" | awk '/Requests\/sec/ {print $2}')
  gen http "$url" --connections 50 --duration "${SECS}s" --json "$work/http.json"
  o=$(field "$work/http.json" "round(r['workloads'][0]['operations']['request']['count']/r['duration_secs'])")
  p99=$(field "$work/http.json" "r['workloads'][0]['operations']['request']['p99_ms']")
  wrk_rps+=("$w"); ours_rps+=("$o")
  echo "round $round: wrk ${w} req/s, livepulse ${o} req/s (p99 ${p99} ms)"
done
python3 - "${wrk_rps[@]}" "${ours_rps[@]}" <<'PY'
import sys
v = list(map(float, sys.argv[1:])); w, o = sum(v[:2]) / 2, sum(v[2:]) / 2
print(f"mean: wrk {w:.0f} req/s, livepulse {o:.0f} req/s, ratio {o / w:.2f}")
PY

echo "== 2. Generator cost per simulated user (generator on core 1, servers on core 0)"
taskset -c 0 "$bin" push "rtmp://127.0.0.1:$rtmp_port/live/cap" >/dev/null 2>&1 &
pids+=($!)
sleep 8
report() { # name users json
  python3 - "$@" <<'PY'
import json, sys
name, users, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = json.load(open(path)); g = r["generators"][0]; w = r["workloads"][0]
m = w.get("media") or {}
cores = g["cpu_cores_avg"]
per_core = users / cores if cores > 0 else float("inf")
print(f"{name}: {users} users, generator {cores:.3f} cores avg (peak {g['cpu_cores_peak']:.2f}), "
      f"RSS {g['max_rss_bytes'] / 2**20:.1f} MiB ({g['max_rss_bytes'] / users / 1024:.1f} KiB/user), "
      f"~{per_core:.0f} users/core, 2 cores at 90%: ~{per_core * 1.8:.0f}; "
      f"stall ratio {m.get('stall_ratio', 0) * 100:.3f}%, errors {sum(w['errors'].values())}, "
      f"warnings {len(g['warnings'])}")
PY
}
for n in 500 2000; do
  gen hls-play "http://127.0.0.1:$http_port/hls/cap.m3u8" --viewers "$n" --ramp 5s --duration 30s --json "$work/hls.json"
  report "hls-play" "$n" "$work/hls.json"
done
for n in 200 1000; do
  gen rtmp-play "rtmp://127.0.0.1:$rtmp_port/live/cap" --viewers "$n" --ramp 5s --duration 30s --json "$work/rtmp.json"
  report "rtmp-play" "$n" "$work/rtmp.json"
done

biz_port=$(free_port)
taskset -c 0 "$bin" business --listen "127.0.0.1:$biz_port" --token-secret bench-secret --max-conns-per-ip 30000 \
  --max-connections 30000 --max-connections-per-ip 30000 >/dev/null 2>&1 &
pids+=($!)
wait_port "$biz_port"
ws="ws://127.0.0.1:$biz_port/ws?room={room}&token={token}"
gen ws-chat "$ws" --members 100 --rooms 10 --send-rate 0 --token-secret bench-secret --ramp 2s --duration 8s --json "$work/idle0.json"
gen ws-chat "$ws" --members 15000 --rooms 10 --send-rate 0 --token-secret bench-secret --ramp 10s --duration 20s --json "$work/idle.json"
python3 - "$work/idle0.json" "$work/idle.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
ra, rb = a["generators"][0]["max_rss_bytes"], b["generators"][0]["max_rss_bytes"]
n = b["workloads"][0]["operations"]["connect"]["count"] - a["workloads"][0]["operations"]["connect"]["count"]
print(f"idle ws members: {n} more connected members took {(rb - ra) / 2**20:.1f} MiB more: {(rb - ra) / n:.0f} B per idle connection")
PY
gen ws-chat "$ws" --members 5000 --rooms 10 --senders 50 --send-rate 2 --token-secret bench-secret --ramp 5s --duration 30s --json "$work/chat.json"
report "ws-chat (10 rooms, 100 msg/s in)" 5000 "$work/chat.json"
field "$work/chat.json" "'  deliveries: %d, deliver p99 %.1f ms' % (r['workloads'][0]['operations']['deliver']['count'], r['workloads'][0]['operations']['deliver']['p99_ms'])"
