#!/usr/bin/env bash
# Business tier benchmark on loopback: MEMBERS members in one room, RATE chat messages/s
# from SENDERS senders, every member receiving every message. Reports deliveries/s,
# p50/p99 delivery latency, server CPU, and resident memory per idle connection; then
# runs the same load against a minimal socket.io room-broadcast server and prints ratios.
#
# Usage: bench/business-room.sh            (env: MEMBERS RATE SENDERS SECS IDLE_MEMBERS SKIP_SOCKETIO)
# Needs: cargo, node + npm (socket.io is installed into a temporary folder).
# Bounded: at most 30,000 connections and a few minutes; only 127.0.0.1 is contacted.
set -euo pipefail

MEMBERS=${MEMBERS:-5000}
RATE=${RATE:-500}
SENDERS=${SENDERS:-10}
SECS=${SECS:-10}
# One process may hold at most `ulimit -n` sockets (20,000 on the reference machine).
IDLE_MEMBERS=${IDLE_MEMBERS:-$(( $(ulimit -n) > 20500 ? 20000 : $(ulimit -n) - 500 ))}
SKIP_SOCKETIO=${SKIP_SOCKETIO:-0}
# socket.io is also measured at a lower rate, where it is not saturated.
SIO_LOW_RATE=${SIO_LOW_RATE:-$(( RATE / 10 ))}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cd "$root"
cargo build --release -q -p business-server --example ws_load --bin business-server
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
server_bin="$target_dir/release/business-server"
load_bin="$target_dir/release/examples/ws_load"
hz=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# start_server <log> <command...>: starts a server printing "listening on http://ADDR".
start_server() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|listening on http://||' || true)
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "server did not start:"; cat "$log"; exit 1
}

stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

# run_load <target> <label>: fan-out run; sets deliveries, p50, p99, cpu.
run_load() {
  local target=$1 out="$work/$2.load" rate=${RATE}
  "$load_bin" --target "$target" --addr "$addr" --secret bench-secret --members "$MEMBERS" --senders "$SENDERS" \
    --rate "$rate" --secs "$SECS" --warmup 2 >"$out" 2>&1 &
  local pid=$!
  until grep -q READY "$out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$out"; exit 1; }
    sleep 0.1
  done
  local c0 t0 c1 t1
  c0=$(cpu_ticks "$server_pid"); t0=$(date +%s.%N)
  wait "$pid"
  c1=$(cpu_ticks "$server_pid"); t1=$(date +%s.%N)
  cat "$out"
  local result; result=$(grep RESULT "$out")
  deliveries=$(sed 's/.*deliveries_per_sec=\([0-9]*\).*/\1/' <<<"$result")
  p50=$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$result")
  p99=$(sed 's/.*p99_ms=\([0-9.]*\).*/\1/' <<<"$result")
  cpu=$(python3 -c "print(round(100 * ($c1 - $c0) / $hz / ($t1 - $t0)))")
}

# run_idle <target> <label>: IDLE_MEMBERS idle members; sets per_conn (bytes).
run_idle() {
  local target=$1 out="$work/$2.idle"
  local r0; r0=$(rss_kb "$server_pid")
  "$load_bin" --target "$target" --addr "$addr" --secret bench-secret --members "$IDLE_MEMBERS" --rate 0 --secs 8 >"$out" 2>&1 &
  local pid=$!
  until grep -q READY "$out" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$out"; exit 1; }
    sleep 0.2
  done
  sleep 3
  local r1; r1=$(rss_kb "$server_pid")
  wait "$pid"
  cat "$out"
  idle_connected=$(sed 's/.*members=\([0-9]*\).*/\1/' <<<"$(grep READY "$out")")
  per_conn=$(( (r1 - r0) * 1024 / (idle_connected > 0 ? idle_connected : 1) ))
  rss_total=$r1
}

business_args=(--listen 127.0.0.1:0 --token-secret bench-secret --max-conns-per-ip 100000
  --max-connections 100000 --max-connections-per-ip 100000 --chat-per-sec 10000 --chat-burst 10000
  --messages-per-sec 10000 --messages-burst 10000 --presence-events false)

echo "== business-server: $MEMBERS members, $RATE msg/s"
start_server "$work/business.log" "$server_bin" "${business_args[@]}"
run_load business business
b_deliv=$deliveries b_p50=$p50 b_p99=$p99 b_cpu=$cpu
stop_server
echo "== business-server: $IDLE_MEMBERS idle members"
start_server "$work/business-idle.log" "$server_bin" "${business_args[@]}"
run_idle business business
b_idle=$per_conn b_idle_n=$idle_connected b_rss=$rss_total
stop_server

if [ "$SKIP_SOCKETIO" != 1 ]; then
  echo "== socket.io: installing"
  (cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund socket.io@4 >/dev/null)
  cat >"$work/room.js" <<'JS'
// Minimal socket.io room broadcast: every socket joins "bench"; a "chat" goes to the room.
const http = require("http");
const { Server } = require("socket.io");
const srv = http.createServer();
const io = new Server(srv, { transports: ["websocket"], perMessageDeflate: false });
io.on("connection", (socket) => {
  socket.join("bench");
  socket.on("chat", (msg) => io.to("bench").emit("chat", msg));
});
srv.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${srv.address().port}`));
JS
  echo "== socket.io: $MEMBERS members, $RATE msg/s"
  start_server "$work/sio.log" node "$work/room.js"
  run_load socketio socketio
  s_deliv=$deliveries s_p50=$p50 s_p99=$p99 s_cpu=$cpu
  stop_server
  echo "== socket.io: $MEMBERS members, $SIO_LOW_RATE msg/s"
  start_server "$work/sio-low.log" node "$work/room.js"
  RATE=$SIO_LOW_RATE run_load socketio socketio-low
  l_deliv=$deliveries l_p50=$p50 l_p99=$p99 l_cpu=$cpu
  stop_server
  echo "== socket.io: $IDLE_MEMBERS idle members"
  start_server "$work/sio-idle.log" node "$work/room.js"
  run_idle socketio socketio
  s_idle=$per_conn
  stop_server
fi

echo
echo "| server | msg/s in | deliveries/s | p50 ms | p99 ms | server CPU % | RSS/idle conn (bytes) |"
echo "|---|---|---|---|---|---|---|"
echo "| business-server | $RATE | $b_deliv | $b_p50 | $b_p99 | $b_cpu | $b_idle ($b_idle_n idle, RSS ${b_rss} KiB) |"
if [ "$SKIP_SOCKETIO" != 1 ]; then
  echo "| socket.io 4 | $RATE | $s_deliv | ${s_p50:-n/a} | ${s_p99:-n/a} | $s_cpu | $s_idle |"
  echo "| socket.io 4 | $SIO_LOW_RATE | $l_deliv | ${l_p50:-n/a} | ${l_p99:-n/a} | $l_cpu | |"
  python3 -c "
b, s, l = $b_deliv, $s_deliv, $l_deliv
same = f'{b / s:.1f}x' if s else 'unbounded (socket.io delivered nothing inside the window)'
print(f'ratio business/socket.io deliveries/s at the same load: {same}; vs socket.io at $SIO_LOW_RATE msg/s: {b / max(l, 1):.1f}x')
print(f'idle memory per connection: socket.io uses {$s_idle / max($b_idle, 1):.2f}x the business server')"
fi
echo "expected deliveries/s: $(( MEMBERS * RATE )) (members x rate); $(nproc) cores shared by server and load client"
