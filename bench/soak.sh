#!/usr/bin/env bash
# Soak: the whole stack (one origin, one edge in front of it, one business server, each its own
# `livepulse` process) under the mixed load of scenarios/soak.toml for MINUTES, on loopback.
# The origin is restarted at 1/3 of the run and the edge at 2/3 (SIGTERM, then started again on
# the same ports). Every SAMPLE_SECS each server and the load generator are sampled: RSS (KiB),
# open fds, threads, and open connections from /metrics (the servers expose no task count).
# At the end bench/soak-report.py writes the samples (CSV), a chart (one self-contained HTML
# page, inline SVG) and a summary to OUT_DIR, and prints the summary: the slope of RSS, fds
# and threads per process after warm-up against its noise, the load report's error counts,
# and whether errors happened only around the planned restarts.
#
# usage: bench/soak.sh [MINUTES=30]
#   SAMPLE_SECS=10       sampling period
#   WARMUP=0.2           share of the run dropped before fitting slopes (also after a restart)
#   RECOVER_SECS=30      errors up to this long after a restart count as caused by it
#   EDGE_CACHE_MIB=8     the edge's cache budget (twice the live windows of the 3 streams),
#                        small enough to fill during warm-up
#   OUT_DIR=docs/soak    where the CSV, chart and summary go (soak-<MINUTES>m.*)
#   BUILD=0              use the existing target/release/livepulse instead of building first
# needs: python3, a release build (built here).
# Exits 1 if a process crashed (other than the planned restarts), the load generator gave no
# report, or a server's slope is clearly positive. Bounded: 3 streams, 30 viewers, 30 chat members,
# 100 buyers a minute; stops by itself after MINUTES plus at most 2 minutes; only 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
MIN=${1:-30}
if ! [[ "$MIN" =~ ^[0-9]+$ ]] || [ "$MIN" -lt 1 ] || [ "$MIN" -gt 720 ]; then
  echo "usage: bench/soak.sh [MINUTES=30] (1 to 720)" >&2
  exit 2
fi
SAMPLE_SECS=${SAMPLE_SECS:-10}
WARMUP=${WARMUP:-0.2}
RECOVER_SECS=${RECOVER_SECS:-30}
EDGE_CACHE_MIB=${EDGE_CACHE_MIB:-8}
OUT_DIR=${OUT_DIR:-docs/soak}
BIN=target/release/livepulse
RUN_SECS=$((MIN * 60))
export NO_COLOR=1

bench_workdir soak
declare -A pid=()
# Stops every process still running: SIGTERM, then SIGKILL after 5 s.
cleanup() {
  local p alive
  for p in "${pid[@]}" "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for p in "${pid[@]}" "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pid[@]}" "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "${BUILD:-1}" = 0 ] || cargo build --release -q

now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }
secret() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
# One line in events.csv: role, event, pid, detail.
event() { echo "$(now_ms),$1,$2,$3,$4" >>"$work/events.csv"; }

rtmp_port=$(free_port); http_port=$(free_port); edge_port=$(free_port); biz_port=$(free_port)
admin_key=soak-admin-$(secret)
token_secret=soak-secret-$(secret)
echo "unix_ms,role,event,pid,detail" >"$work/events.csv"

start_origin() {
  RUST_LOG=warn "$BIN" origin --rtmp "127.0.0.1:$rtmp_port" --http "127.0.0.1:$http_port" \
    >>"$work/origin.log" 2>&1 &
  pid[origin]=$!
  wait_port "$rtmp_port" && wait_port "$http_port"
}
start_edge() {
  RUST_LOG=warn "$BIN" edge --listen "127.0.0.1:$edge_port" --origin "http://127.0.0.1:$http_port" \
    --cache-bytes $((EDGE_CACHE_MIB << 20)) >>"$work/edge.log" 2>&1 &
  pid[edge]=$!
  wait_port "$edge_port"
}
# Purchase answers expire after 2 minutes instead of a day, so the sale's book reaches its
# steady size (and its sweep runs) within the warm-up.
start_business() {
  RUST_LOG=warn "$BIN" business --listen "127.0.0.1:$biz_port" --admin-key "$admin_key" \
    --token-secret "$token_secret" --idempotency-ttl-ms 120000 >>"$work/business.log" 2>&1 &
  pid[business]=$!
  wait_port "$biz_port"
}
# start ROLE: starts it and records when it listens.
start() {
  event "$1" start "" ""
  "start_$1" || true
  event "$1" ready "${pid[$1]}" ""
}

# Whether a child is running (a zombie is not).
alive() {
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Planned restart of ROLE: SIGTERM, wait for it to exit (SIGKILL after 10 s), start it again.
restart() {
  local role=$1 p=${pid[$1]} status=0
  event "$role" stop "$p" SIGTERM
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
  alive "$p" && kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null || status=$?
  event "$role" exited "$p" "status $status"
  start "$role"
  echo "$(date +%T) restarted $role (pid $p -> ${pid[$role]})"
}

# Sum of the samples of one metric in a server's /metrics, "" when unreachable.
open_conns() {
  curl -s -m 2 "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v m="$2" '
    $1 == m || index($1, m "{") == 1 { s += $NF; n++ } END { if (n) printf "%d", s }' || true
}

# One row per process in samples.csv.
sample() {
  local t=$1 role p rss fds threads conns
  for role in origin edge business load; do
    p=${pid[$role]:-}
    [ -n "$p" ] && alive "$p" || continue
    rss=$(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null) || continue
    threads=$(awk '/^Threads/{print $2}' "/proc/$p/status" 2>/dev/null) || continue
    fds=$(ls "/proc/$p/fd" 2>/dev/null | wc -l) || continue
    case $role in
      origin) conns=$(open_conns "$http_port" livepulse_origin_connections_open) ;;
      edge) conns=$(open_conns "$edge_port" livepulse_edge_connections_open) ;;
      business) conns=$(open_conns "$biz_port" business_connections_open) ;;
      *) conns="" ;;
    esac
    echo "$t,$(now_ms),$role,$p,$rss,$fds,$threads,$conns" >>"$work/samples.csv"
  done
}

echo "soak: ${MIN} min; origin rtmp :$rtmp_port http :$http_port, edge :$edge_port, business :$biz_port;" \
  "work dir $work"
start origin
start edge
start business
for role in origin edge business; do
  alive "${pid[$role]}" || { echo "$role did not start:" >&2; cat "$work/$role.log" >&2; exit 1; }
done

# The scenario with this run's ports and secrets in place of the demo's.
sed -e "s|127.0.0.1:1935|127.0.0.1:$rtmp_port|g" -e "s|127.0.0.1:8080|127.0.0.1:$http_port|g" \
  -e "s|127.0.0.1:8081|127.0.0.1:$edge_port|g" -e "s|127.0.0.1:8090|127.0.0.1:$biz_port|g" \
  -e "s|livepulse-dev-secret|$token_secret|g" -e "s|livepulse-admin|$admin_key|g" \
  scenarios/soak.toml >"$work/soak.toml"

echo "t_secs,unix_ms,process,pid,rss_kib,fds,threads,conns" >"$work/samples.csv"
RUST_LOG=warn "$BIN" load "$work/soak.toml" --duration "${MIN}m" --json "$work/load.json" \
  --html "$work/load.html" >"$work/load.log" 2>&1 &
pid[load]=$!
t0=$(now_ms)
event load start "${pid[load]}" "${MIN}m"

origin_restart_at=$((t0 + RUN_SECS * 1000 / 3))
edge_restart_at=$((t0 + RUN_SECS * 2000 / 3))
deadline=$((t0 + (RUN_SECS + 120) * 1000))
next_sample=$t0
crashes=0
load_status=""
while :; do
  now=$(now_ms)
  if [ "$now" -ge "$next_sample" ]; then
    sample $(((now - t0) / 1000))
    next_sample=$((next_sample + SAMPLE_SECS * 1000))
  fi
  if ! alive "${pid[load]}"; then
    load_status=0
    wait "${pid[load]}" || load_status=$?
    event load exited "${pid[load]}" "status $load_status"
    break
  fi
  if [ "$now" -ge "$deadline" ]; then
    event load crash "${pid[load]}" "still running 120 s after the end; killed"
    kill -KILL "${pid[load]}" 2>/dev/null || true
    crashes=$((crashes + 1))
    break
  fi
  if [ "$origin_restart_at" -gt 0 ] && [ "$now" -ge "$origin_restart_at" ]; then
    restart origin; origin_restart_at=0
  elif [ "$edge_restart_at" -gt 0 ] && [ "$now" -ge "$edge_restart_at" ]; then
    restart edge; edge_restart_at=0
  fi
  # A server that exited by itself is a crash: recorded, then started again so the rest of the
  # stack keeps being soaked.
  for role in origin edge business; do
    if ! alive "${pid[$role]}"; then
      status=0
      wait "${pid[$role]}" 2>/dev/null || status=$?
      event "$role" crash "${pid[$role]}" "exited with status $status"
      echo "$(date +%T) CRASH: $role (pid ${pid[$role]}) exited with status $status; last log lines:" >&2
      tail -n 20 "$work/$role.log" >&2
      crashes=$((crashes + 1))
      start "$role"
    fi
  done
  if [ "$crashes" -ge 5 ]; then
    echo "$crashes crashes: stopping the run early" >&2
    event load crash "${pid[load]}" "run stopped after $crashes server crashes"
    break
  fi
  sleep 1
done
if [ -n "$load_status" ] && [ "$load_status" -gt 1 ]; then
  # 1 is breached thresholds (in the report); anything else is the generator failing.
  event load crash "${pid[load]}" "exited with status $load_status"
  echo "load generator exited with status $load_status:" >&2
  tail -n 20 "$work/load.log" >&2
fi
if [ -z "$load_status" ]; then
  kill -TERM "${pid[load]}" 2>/dev/null || true
  wait "${pid[load]}" 2>/dev/null || true
fi
unset 'pid[load]'
for role in origin edge business; do
  event "$role" stop "${pid[$role]}" "end of run"
  kill -TERM "${pid[$role]}" 2>/dev/null || true
done
wait "${pid[@]}" 2>/dev/null || true
# Reaped: nothing left for the exit trap to signal.
pid=()
echo "== load generator's summary"
grep -Ev '^[^ ]*Z +(WARN|ERROR|INFO)' "$work/load.log" || true

mkdir -p "$OUT_DIR"
status=0
python3 bench/soak-report.py --work "$work" --minutes "$MIN" --warmup "$WARMUP" \
  --recover-secs "$RECOVER_SECS" --sample-secs "$SAMPLE_SECS" --out "$OUT_DIR/soak-${MIN}m" \
  --ports "origin=$rtmp_port,$http_port edge=$edge_port business=$biz_port" || status=$?
cp "$work/samples.csv" "$OUT_DIR/soak-${MIN}m.csv"
cp "$work/events.csv" "$OUT_DIR/soak-${MIN}m-events.csv"
echo "wrote $OUT_DIR/soak-${MIN}m.csv, soak-${MIN}m-events.csv, soak-${MIN}m.html, soak-${MIN}m.txt"
exit "$status"
