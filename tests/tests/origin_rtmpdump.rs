//! RTMP interop with tools nobody here wrote: ffmpeg publishes H.264 with B-frames and AAC,
//! ffmpeg decodes our RTMP play cleanly, and `rtmpdump --live` records it to a file that
//! ffprobe reads as H.264 + AAC with the composition offsets intact.

use std::process::{Command, Stdio};

use livepulse_tests::{
    codecs, ffmpeg_decode_errors, ffmpeg_publish_with_b_frames, ffprobe_streams, require,
    start_origin, wait_publishing,
};

/// Packets of the first video stream whose presentation and decode times differ.
fn reordered_packets(file: &str) -> usize {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts,dts", "-of", "csv=p=0", file])
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let mut parts = l.split(',');
            parts.next() != parts.next()
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_b_frames_play_over_rtmp_and_rtmpdump_records_them() {
    if !require("ffmpeg") || !require("ffprobe") || !require("rtmpdump") {
        return;
    }
    let origin = start_origin(|_| {}).await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let _ffmpeg = ffmpeg_publish_with_b_frames(&rtmp, "320x240", 30, 2);
    assert!(
        wait_publishing(&origin, "live/cam").await,
        "ffmpeg never went live"
    );

    let url = rtmp.clone();
    let errors = tokio::task::spawn_blocking(move || ffmpeg_decode_errors(&url, 4))
        .await
        .expect("decode task");
    assert!(errors.is_empty(), "decoding {rtmp}: {errors:#?}");

    let dir = std::env::temp_dir().join(format!("livepulse-rtmpdump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("recorded.flv").to_string_lossy().into_owned();
    let recorded = tokio::task::spawn_blocking({
        let (rtmp, file) = (rtmp.clone(), file.clone());
        move || {
            Command::new("timeout")
                .args(["5", "rtmpdump", "--live", "-q", "-r", &rtmp, "-o", &file])
                .stdin(Stdio::null())
                .status()
                .expect("rtmpdump runs")
        }
    })
    .await
    .expect("rtmpdump task");
    // `timeout` ends the live recording: 124 is that, anything else is rtmpdump's verdict.
    assert!(
        recorded.code() == Some(124) || recorded.success(),
        "rtmpdump failed: {recorded:?}"
    );
    let probe = ffprobe_streams(&file);
    let mut found = codecs(&probe);
    found.sort();
    assert_eq!(
        found,
        vec![
            ("aac".to_string(), None, None),
            ("h264".to_string(), Some(320), Some(240))
        ],
        "streams in rtmpdump's recording"
    );
    assert!(
        reordered_packets(&file) > 10,
        "B-frames lost their composition offsets"
    );
    let _ = std::fs::remove_dir_all(&dir);
    origin.shutdown().await;
}
