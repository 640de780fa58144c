#!/usr/bin/env bash
# Regenerates assets/sample.flv, the built-in demo stream: 10 s of 640x360@30 H.264 (High, B-frames,
# 2 s GOP) with 44.1 kHz stereo AAC. Run from the repository root; needs the ffmpeg CLI.
set -euo pipefail
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100" \
  -t 10 -ac 2 \
  -c:v libx264 -preset medium -profile:v high -pix_fmt yuv420p -b:v 700k -maxrate 800k -bufsize 1600k \
  -g 60 -keyint_min 60 -sc_threshold 0 -bf 2 \
  -c:a aac -b:a 96k \
  -f flv assets/sample.flv
