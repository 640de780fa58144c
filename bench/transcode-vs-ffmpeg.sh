#!/usr/bin/env bash
# CPU cores used per rendition of a 720p/480p/360p ladder at 30 fps: our origin's transcoder
# next to the ffmpeg CLI producing the same ladder (one process, split + scale + libx264 with
# the same settings), measured in the same run on loopback.
#
# usage: bench/transcode-vs-ffmpeg.sh [SECONDS=30]
# needs: ffmpeg (with libx264), python3, a release build with the transcode feature (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DUR=${1:-30}
WARMUP=5
HZ=$(getconf CLK_TCK)
# The origin's defaults: preset veryfast, profile high, tune zerolatency, one thread per encoder.
PRESET=veryfast
PROFILE=high
TUNE=zerolatency
LADDER=("720p 1280 720 2500" "480p 854 480 1200" "360p 640 360 600")
bench_workdir transcode

cargo build --release -q --features transcode

# A 1280x720 30 fps H.264/AAC source with a keyframe every 2 s, published by stream copy so
# the publisher itself costs next to nothing.
SRC=$work/source.flv
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=30" \
  -c:v libx264 -preset veryfast -b:v 4000k -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
  -c:a aac -b:a 128k -f flv "$SRC"

# CPU ticks per thread name of a process: "name ticks" lines.
thread_ticks() {
  local task
  for task in /proc/"$1"/task/*; do
    [ -r "$task/stat" ] || continue
    printf '%s %s\n' "$(tr ' ' '_' <"$task/comm")" "$(sed 's/^.*) //' "$task/stat" | awk '{print $12 + $13}')"
  done | awk '{t[$1] += $2} END {for (n in t) print n, t[n]}'
}

# --- Our origin: per-thread CPU of the transcoder's decoder and rendition threads.
config=$work/origin.toml
{
  echo "[transcode]"
  echo "preset = \"$PRESET\""
  echo "profile = \"$PROFILE\""
  echo "tune = \"$TUNE\""
  echo "threads = 1"
  for rung in "${LADDER[@]}"; do
    read -r name w h kbps <<<"$rung"
    printf '[[transcode.ladders.live]]\nname = "%s"\nheight = %s\nvideo_kbps = %s\n' "$name" "$h" "$kbps"
  done
} >"$config"
rtmp_port=$(free_port); http_port=$(free_port)
RUST_LOG=warn target/release/livepulse origin --config "$config" \
  --rtmp "127.0.0.1:$rtmp_port" --http "127.0.0.1:$http_port" >"$work/origin.log" 2>&1 &
origin_pid=$!
pids+=($origin_pid)
wait_port "$rtmp_port"
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$SRC" -c copy \
  -f flv "rtmp://127.0.0.1:$rtmp_port/live/bench" </dev/null >/dev/null 2>&1 &
pub_pid=$!
pids+=($pub_pid)
sleep "$WARMUP"
thread_ticks "$origin_pid" >"$work/ours.0"
t0=$(cpu_ticks "$origin_pid")
sleep "$DUR"
t1=$(cpu_ticks "$origin_pid")
thread_ticks "$origin_pid" >"$work/ours.1"
ours_rss=$(rss_kib "$origin_pid")
renditions_live=$(curl -s "http://127.0.0.1:$http_port/api/v1/streams" |
  python3 -c 'import json,sys; print(sum(1 for s in json.load(sys.stdin)["streams"] if "_" in s["key"] and s["live"]))')
dropped=$(curl -s "http://127.0.0.1:$http_port/metrics" | awk '/^livepulse_origin_transcode_renditions_dropped_total/ {s += $2} END {print s + 0}')
kill "$pub_pid" "$origin_pid"
wait "$pub_pid" "$origin_pid" 2>/dev/null || true
ours_total=$((t1 - t0))

# --- The ffmpeg CLI: the whole ladder in one process, then each piece alone for the split.
x264_opts() {
  local kbps=$1
  echo "-c:v libx264 -preset $PRESET -profile:v $PROFILE -tune $TUNE -threads 1 -b:v ${kbps}k \
    -x264-params keyint=infinite:scenecut=0:bframes=0:vbv-maxrate=$kbps:vbv-bufsize=$((kbps * 2)) \
    -force_key_frames source"
}

# Runs ffmpeg reading the source in real time with the given filter graph and outputs;
# prints its CPU ticks over DUR seconds after the warm-up.
ffmpeg_ticks() {
  # shellcheck disable=SC2068
  ffmpeg -hide_banner -loglevel error -y -threads 1 -re -stream_loop -1 -i "$SRC" $@ </dev/null \
    >/dev/null 2>"$work/ffmpeg.err" &
  local pid=$!
  sleep "$WARMUP"
  local a b
  a=$(cpu_ticks "$pid")
  sleep "$DUR"
  b=$(cpu_ticks "$pid")
  rss_kib "$pid" >"$work/ffmpeg.rss"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo $((b - a))
}

graph="[0:v]split=${#LADDER[@]}"
outs=()
i=0
for rung in "${LADDER[@]}"; do graph+="[s$i]"; i=$((i + 1)); done
i=0
for rung in "${LADDER[@]}"; do
  read -r name w h kbps <<<"$rung"
  graph+=";[s$i]scale=$w:$h[o$i]"
  outs+=(-map "[o$i]" -map 0:a $(x264_opts "$kbps") -c:a copy -f flv /dev/null)
  i=$((i + 1))
done
ff_total=$(ffmpeg_ticks -filter_complex "$graph" "${outs[@]}")
ff_rss=$(cat "$work/ffmpeg.rss")
ff_decode=$(ffmpeg_ticks -map 0:v -c:v rawvideo -f null /dev/null)
declare -A ff_one
for rung in "${LADDER[@]}"; do
  read -r name w h kbps <<<"$rung"
  ff_one[$name]=$(ffmpeg_ticks -filter_complex "[0:v]scale=$w:$h[o]" -map "[o]" -map 0:a \
    $(x264_opts "$kbps") -c:a copy -f flv /dev/null)
done

cores() { python3 -c "print(f'{$1/$HZ/$DUR:.3f}')"; }
delta() { # thread name -> ticks over the run
  python3 - "$work/ours.0" "$work/ours.1" "$1" <<'PY'
import sys
def load(p):
    return {l.split()[0]: int(l.split()[1]) for l in open(p) if l.strip()}
a, b, name = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
print(b.get(name, 0) - a.get(name, 0))
PY
}

echo
echo "source: 1280x720 30 fps H.264 + AAC, keyframe every 2 s; measured ${DUR}s after ${WARMUP}s warm-up"
echo "x264: preset $PRESET, profile $PROFILE, tune $TUNE, 1 thread per rendition, no B-frames,"
echo "keyframes only where the source has them; decoder single-threaded in both"
echo "renditions live in our origin: $renditions_live, dropped for lag: $dropped"
echo
echo "| rendition | livepulse (scale + encode thread) | ffmpeg CLI (alone, minus decode) | ratio |"
echo "|---|---|---|---|"
ours_sum=0
ff_sum=0
for rung in "${LADDER[@]}"; do
  read -r name w h kbps <<<"$rung"
  o=$(delta "tc-$name")
  f=$((ff_one[$name] - ff_decode))
  ours_sum=$((ours_sum + o))
  ff_sum=$((ff_sum + f))
  ratio=$(python3 -c "print(f'{$o/$f:.2f}' if $f > 0 else 'n/a')")
  echo "| $name ${w}x${h} ${kbps}k | $(cores "$o") | $(cores "$f") | $ratio |"
done
dec=$(delta "tc-dec")
echo "| decode 720p (once per source) | $(cores "$dec") | $(cores "$ff_decode") | $(python3 -c "print(f'{$dec/$ff_decode:.2f}' if $ff_decode > 0 else 'n/a')") |"
echo "| whole ladder, one process | $(cores "$ours_total") (whole origin: ingest, HLS of 4 streams, transcoding) | $(cores "$ff_total") | $(python3 -c "print(f'{$ours_total/$ff_total:.2f}' if $ff_total > 0 else 'n/a')") |"
echo
echo "RSS: livepulse origin $((ours_rss / 1024)) MiB, ffmpeg ladder $((ff_rss / 1024)) MiB"
echo "ratio livepulse / ffmpeg CPU, whole ladder: $(python3 -c "print(f'{$ours_total/$ff_total:.2f}')")"
