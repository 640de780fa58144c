# Shared helpers for the bench/ scripts: free ports, process CPU and memory readings.

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Total CPU clock ticks (user + system) of the given pids.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    if [ -r "/proc/$pid/stat" ]; then
      # Fields 14 and 15 after the command name, which may contain spaces.
      total=$(( total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}') ))
    fi
  done
  echo "$total"
}

# Total resident memory in KiB of the given pids.
rss_kib() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/status" ] && total=$(( total + $(awk '/^VmRSS/{print $2}' "/proc/$pid/status") ))
  done
  echo "$total"
}

# Waits until a TCP port accepts connections (up to 10 s).
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}

# A scratch directory on tmpfs in $work, and $pids: processes started with `pids+=($!)` are
# killed and the directory removed when the script exits. Arg: a name for the directory.
bench_workdir() {
  work=$(mktemp -d "/dev/shm/livepulse-$1.XXXXXX")
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# loopback_origin_config FILE: an origin config whose listeners let one address (the load
# generator on this machine) open as many connections as the whole listener.
loopback_origin_config() {
  cat >"$1" <<'TOML'
[rtmp_listener]
max_connections = 20000
max_connections_per_ip = 20000
[http_listener]
max_connections = 20000
max_connections_per_ip = 20000
TOML
}
