//! A stream with one keyframe and then none, at 8 Mbit/s for 60 s, as an encoder set to a
//! huge GOP sends it. The origin cuts HLS segments at the maximum duration anyway, so a
//! playlist appears within three target durations and memory stays bounded; the stream's
//! stats and metrics say why.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use livepulse_tests::{
    get, media_playlist, metric, metrics_page, require, self_status_kib, start_origin,
    wait_publishing, ChildGuard,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keyframes_at_8_mbits_for_60_s() {
    if !require("ffmpeg") {
        return;
    }
    let origin = start_origin(|c| c.hls.target_duration_secs = 2.0).await;
    let (rtmp, http) = (origin.rtmp_addr(), origin.http_addr());
    let baseline = self_status_kib("VmRSS");
    let _ffmpeg = ChildGuard(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", "60", "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-tune", "zerolatency", "-pix_fmt", "yuv420p"])
            .args([
                "-g",
                "100000",
                "-keyint_min",
                "100000",
                "-sc_threshold",
                "0",
            ])
            .args([
                "-b:v", "8M", "-minrate", "8M", "-maxrate", "8M", "-bufsize", "2M",
            ])
            .args(["-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "64k"])
            .args(["-f", "flv", &format!("rtmp://{rtmp}/live/nokf")])
            .stdin(Stdio::null())
            .spawn()
            .expect("ffmpeg starts"),
    );
    assert!(wait_publishing(&origin, "live/nokf").await, "publishing");
    let live = Instant::now();
    let url = format!("http://{http}/live/nokf.m3u8");
    let mut first_playlist = None;
    let mut peak = baseline;
    while live.elapsed() < Duration::from_secs(58) {
        peak = peak.max(self_status_kib("VmRSS"));
        if first_playlist.is_none() && get(&url).await.0 == 200 {
            first_playlist = Some(live.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let first = first_playlist.expect("a playlist");
    assert!(
        first <= Duration::from_secs(6),
        "first playlist after {first:?}, over three 2 s target durations"
    );
    let grown_mib = peak.saturating_sub(baseline) / 1024;
    println!("first playlist after {first:?}; RSS {baseline} KiB, peak +{grown_mib} MiB");
    // At 1 MB/s: the TS window (9 segments of 4 s), the GOP cache (16 MiB) and the LL-HLS
    // window (7 segments of 2 s and the open one, kept once as their parts' chunks); measured
    // +64 MiB.
    assert!(grown_mib < 80, "origin RSS grew {grown_mib} MiB");

    let (_, body) = get(&url).await;
    let playlist = media_playlist(&body);
    assert!(playlist.segments.len() >= 3, "{playlist:?}");
    assert!(
        playlist.segments.iter().all(|s| s.duration <= 4.1),
        "segments cut at the 4 s maximum: {playlist:?}"
    );
    let (_, stats) = get(&format!("http://{http}/api/v1/streams")).await;
    let stats: serde_json::Value = serde_json::from_slice(&stats).expect("json");
    let warnings = stats["streams"][0]["warnings"].to_string();
    assert!(warnings.contains("keyframe interval too long"), "{stats}");
    let metrics = metrics_page(&format!("http://{http}/metrics")).await;
    let forced = metric(&metrics, "livepulse_origin_hls_forced_cuts_total", "");
    assert!(forced >= 10, "forced cuts counted: {forced}");
    let forced = metric(&metrics, "livepulse_origin_llhls_forced_cuts_total", "");
    assert!(forced >= 10, "LL-HLS forced cuts counted: {forced}");
    origin.shutdown().await;
}
