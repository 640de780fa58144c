#!/usr/bin/env bash
# CPU time per stream-minute of N concurrent RTMP publishers with HLS on: our origin next to
# nginx with the rtmp module, measured in the same run on loopback.
#
# usage: bench/origin-vs-nginx-rtmp.sh [PUBLISHERS=20] [SECONDS=60]
# needs: ffmpeg, nginx, libnginx-mod-rtmp (Debian), a release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N=${1:-20}
DUR=${2:-60}
WARMUP=5
SAMPLE=assets/sample.flv
HZ=$(getconf CLK_TCK)
bench_workdir bench

cargo build --release -q

# Starts N ffmpeg publishers copying the sample in a loop to rtmp://127.0.0.1:PORT/live/sN.
start_publishers() {
  local port=$1 i
  pubs=()
  for i in $(seq "$N"); do
    ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$SAMPLE" -c copy \
      -f flv "rtmp://127.0.0.1:$port/live/s$i" </dev/null >/dev/null 2>&1 &
    pubs+=($!)
    pids+=($!)
  done
}

stop_publishers() {
  kill "${pubs[@]}" 2>/dev/null || true
  wait "${pubs[@]}" 2>/dev/null || true
}

# Measures the server pids over DUR seconds of load; prints "cpu_s_per_stream_min rss_mib".
measure() {
  local port=$1; shift
  start_publishers "$port"
  sleep "$WARMUP"
  local t0 t1
  t0=$(cpu_ticks "$@")
  sleep "$DUR"
  t1=$(cpu_ticks "$@")
  local rss
  rss=$(rss_kib "$@")
  stop_publishers
  python3 -c "
ticks=$t1-$t0; cpu=ticks/$HZ
print(f'{cpu/($N*$DUR/60):.3f} {cpu/$DUR*100:.1f} {$rss/1024:.1f}')"
}

# Our origin.
rtmp_port=$(free_port); http_port=$(free_port)
loopback_origin_config "$work/origin.toml"
RUST_LOG=warn target/release/livepulse origin --rtmp "127.0.0.1:$rtmp_port" --http "127.0.0.1:$http_port" \
  --config "$work/origin.toml" >"$work/origin.log" 2>&1 &
origin_pid=$!
pids+=($origin_pid)
wait_port "$rtmp_port"
read -r ours_cpu ours_pct ours_rss < <(measure "$rtmp_port" "$origin_pid")
ours_streams=$(curl -s "http://127.0.0.1:$http_port/api/v1/streams" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["streams"]))')
kill "$origin_pid"

# nginx-rtmp with HLS written to tmpfs.
nginx_port=$(free_port)
mkdir -p "$work/hls" "$work/nginx"
# nginx workers drop privileges; let them write the HLS files.
chmod 0777 "$work" "$work/hls"
cat >"$work/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
rtmp {
  server {
    listen 127.0.0.1:$nginx_port;
    chunk_size 4096;
    application live {
      live on;
      hls on;
      hls_path $work/hls;
      hls_fragment 2s;
      hls_playlist_length 12s;
    }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work/nginx" &
nginx_master=$!
pids+=($nginx_master)
wait_port "$nginx_port"
nginx_pids=($nginx_master $(pgrep -P "$nginx_master"))
read -r nginx_cpu nginx_pct nginx_rss < <(measure "$nginx_port" "${nginx_pids[@]}")
nginx_streams=$(find "$work/hls" -name "*.m3u8" | wc -l)

ratio=$(python3 -c "print(f'{$ours_cpu/$nginx_cpu:.2f}' if $nginx_cpu > 0 else 'n/a')")
echo
echo "publishers: $N, measured: ${DUR}s after ${WARMUP}s warm-up, sample: $SAMPLE (~800 kbit/s), HLS on"
echo "| server | CPU s per stream-minute | CPU % of one core | RSS MiB | HLS streams seen |"
echo "|---|---|---|---|---|"
echo "| livepulse origin | $ours_cpu | $ours_pct | $ours_rss | $ours_streams |"
echo "| nginx-rtmp (1 worker) | $nginx_cpu | $nginx_pct | $nginx_rss | $nginx_streams |"
echo "ratio livepulse / nginx-rtmp CPU: $ratio"
