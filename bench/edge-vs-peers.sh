#!/usr/bin/env bash
# Caching edges in front of the same origin, same viewer load, on loopback: our cdn-edge next to
# nginx proxy_cache (proxy_cache_lock on; 1 and 2 workers) and Varnish.
# Per edge: origin requests caused by 200 simultaneous viewers asking for one never-fetched
# segment (fast origin, then a 6 s slow origin), req/s and p99 on a hot 1 MiB segment
# (wrk -t 2 -c 50 -d WRK_SECONDS --latency), and the edge's resident memory afterwards.
#
# usage: bench/edge-vs-peers.sh [CLIENTS=200] [WRK_SECONDS=10]
# needs: python3, wrk, curl, nginx, varnish (apt-get install -y varnish), a release build (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
CLIENTS=${1:-200}
WRK_SECONDS=${2:-10}
SLOW=6
work=$(mktemp -d /dev/shm/livepulse-edge-bench.XXXXXX)
# nginx workers and varnish's child drop privileges; let them use the work dir.
chmod 0777 "$work"
pids=()
nginx_confs=()
varnish_dirs=()
cleanup() {
  local c d p
  for c in "${nginx_confs[@]}"; do
    [ -s "$work/$c.pid" ] && kill -TERM "$(cat "$work/$c.pid")" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release -q

# The origin: 1 MiB deterministic segments, immutable; a 1 s playlist; counts requests per path
# (GET /count?p=PATH); sleeps DELAY seconds before segments (GET /set-delay?s=N changes it).
cat >"$work/origin.py" <<'PY'
import os, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import urlsplit, parse_qs
SEG = bytes(i % 251 for i in range(1 << 20))
counts, lock = {}, threading.Lock()
delay = [float(os.environ.get("DELAY", "0"))]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, body, ctype, cc=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if cc: self.send_header("Cache-Control", cc)
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def do_HEAD(self): self.do_GET()
    def do_GET(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        if u.path == "/count":
            with lock: n = counts.get(q["p"][0], 0)
            return self.send(200, str(n).encode(), "text/plain", "no-store")
        if u.path == "/set-delay":
            delay[0] = float(q["s"][0])
            return self.send(200, b"ok", "text/plain", "no-store")
        with lock: counts[u.path] = counts.get(u.path, 0) + 1
        if u.path.startswith("/live/s/") and u.path.endswith(".ts"):
            if delay[0] > 0: time.sleep(delay[0])
            return self.send(200, SEG, "video/mp2t", "public, max-age=31536000, immutable")
        if u.path == "/live/s.m3u8":
            body = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n" + \
                b"".join(b"#EXTINF:2.0,\ns/%d.ts\n" % i for i in range(3))
            return self.send(200, body, "application/vnd.apple.mpegurl", "public, max-age=1")
        self.send(404, b"not found", "text/plain", "no-store")
class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY

# CLIENTS threads released together, each GETting URL once on its own connection.
cat >"$work/burst.py" <<'PY'
import sys, threading, http.client
host, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
barrier = threading.Barrier(n)
ok, bad, lock = [0], [0], threading.Lock()
def one():
    try:
        c = http.client.HTTPConnection(host, port, timeout=40)
        c.connect()
        barrier.wait(timeout=20)
        c.request("GET", path)
        r = c.getresponse()
        good = r.status == 200 and len(r.read()) == 1 << 20
    except Exception:
        good = False
    with lock:
        (ok if good else bad)[0] += 1
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(ok[0], bad[0])
PY

origin_port=$(free_port)
python3 "$work/origin.py" "$origin_port" >"$work/origin.log" 2>&1 &
pids+=($!)
wait_port "$origin_port"
O="http://127.0.0.1:$origin_port"

seg=0
# Origin requests for fresh segment number N fetched by CLIENTS viewers at once through PORT.
# Prints "origin_requests ok_responses".
burst() {
  local port=$1 delay=$2 path="/live/s/$3.ts" ok bad
  curl -sf "$O/set-delay?s=$delay" >/dev/null
  read -r ok bad < <(timeout 60 python3 "$work/burst.py" 127.0.0.1 "$port" "$path" "$CLIENTS")
  curl -sf "$O/set-delay?s=0" >/dev/null
  sleep 0.5
  echo "$(curl -sf "$O/count?p=$path") $ok"
}

# wrk on a hot segment through PORT; prints "req_per_s p99".
hot() {
  local port=$1 path="/live/s/hot.ts" out
  for _ in 1 2 3; do curl -sf -o /dev/null "http://127.0.0.1:$port$path"; done
  out=$(timeout $((WRK_SECONDS + 20)) wrk -t 2 -c 50 -d "${WRK_SECONDS}s" --latency "http://127.0.0.1:$port$path")
  echo "$out" >>"$work/wrk.log"
  # wrk's error lines ("Non-2xx or 3xx responses", "Socket errors") are flagged next to req/s.
  echo "$(echo "$out" | awk '/^Requests\/sec:/{printf "%.0f", $2}')$(echo "$out" | grep -qE 'Non-2xx|Socket errors' && echo '(errors!)') $(echo "$out" | awk '$1=="99%"{print $2}')"
}

rows=()
# Measures the edge on PORT whose processes are given; appends a table row named NAME.
measure() {
  local name=$1 port=$2; shift 2
  local fast fast_ok slow slow_ok rps p99 rss
  seg=$((seg + 2))
  read -r fast fast_ok < <(burst "$port" 0 "$((seg - 1))")
  read -r slow slow_ok < <(burst "$port" "$SLOW" "$seg")
  read -r rps p99 < <(hot "$port")
  rss=$(rss_kib "$@")
  rows+=("| $name | $fast ($fast_ok/$CLIENTS ok) | $slow ($slow_ok/$CLIENTS ok) | $rps | $p99 | $(python3 -c "print(f'{$rss/1024:.1f}')") |")
  echo "measured $name" >&2
}

# Our edge. `cargo build --release` builds only the root package, whose `livepulse edge` runs the
# same cdn_edge::Server as the cdn-edge binary; use that binary when it has been built.
edge_cmd=(target/release/livepulse edge)
[ -x target/release/cdn-edge ] && edge_cmd=(target/release/cdn-edge)
edge_port=$(free_port)
RUST_LOG=warn "${edge_cmd[@]}" --listen "127.0.0.1:$edge_port" --origin "$O" \
  --max-connections 20000 --max-connections-per-ip 20000 >"$work/edge.log" 2>&1 &
edge_pid=$!
pids+=($edge_pid)
wait_port "$edge_port"
measure "${edge_cmd[*]#target/release/}" "$edge_port" "$edge_pid"
kill -TERM "$edge_pid"; wait "$edge_pid" 2>/dev/null || true

# nginx proxy_cache with proxy_cache_lock (default proxy_cache_lock_timeout 5s), cache on tmpfs.
for workers in 1 2; do
  c=nginx$workers
  nginx_port=$(free_port)
  mkdir -p "$work/$c/cache" "$work/$c/tmp" "$work/$c/logs"
  chmod -R 0777 "$work/$c"
  cat >"$work/$c.conf" <<CONF
daemon off;
worker_processes $workers;
pid $work/$c.pid;
error_log $work/$c/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path $work/$c/cache levels=1:2 keys_zone=edge:10m max_size=256m inactive=10m use_temp_path=off;
  proxy_temp_path $work/$c/tmp;
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass $O;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_lock on;
      proxy_read_timeout 30s;
    }
  }
}
CONF
  nginx_confs+=("$c")
  nginx -c "$work/$c.conf" -p "$work/$c" &
  nginx_master=$!
  pids+=($nginx_master)
  wait_port "$nginx_port"
  sleep 0.3
  measure "nginx proxy_cache, lock on ($workers worker$([ "$workers" = 2 ] && echo s))" "$nginx_port" \
    "$nginx_master" $(pgrep -P "$nginx_master")
  kill -TERM "$nginx_master"; wait "$nginx_master" 2>/dev/null || true
done

# Varnish with the default VCL.
if command -v varnishd >/dev/null; then
  v_port=$(free_port)
  mkdir -p "$work/varnish"
  chmod 0777 "$work/varnish"
  varnishd -F -a "127.0.0.1:$v_port" -b "127.0.0.1:$origin_port" -s malloc,256m -n "$work/varnish" \
    >"$work/varnish.log" 2>&1 &
  v_pid=$!
  pids+=($v_pid)
  wait_port "$v_port"
  sleep 0.5
  measure "varnish (malloc 256m, default VCL)" "$v_port" "$v_pid" $(pgrep -P "$v_pid")
  kill -TERM "$v_pid"; wait "$v_pid" 2>/dev/null || true
else
  rows+=("| varnish | not installed | | | | |")
fi

echo
echo "origin: python3 ThreadingHTTPServer, 1 MiB immutable segments; $CLIENTS simultaneous viewers per fresh segment;"
echo "slow origin sleeps ${SLOW}s per segment; hot: wrk -t 2 -c 50 -d ${WRK_SECONDS}s --latency on one cached 1 MiB segment; $(nproc) cores, loopback"
echo "| edge | origin req per segment (fast origin) | (${SLOW} s origin) | hot 1 MiB req/s | p99 | RSS MiB |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
