//! The real ffmpeg CLI publishes to our origin; ffprobe and ffmpeg play it back over HLS,
//! HTTP-FLV and RTMP.

use std::time::Duration;

use livepulse_tests::{
    assert_starts_with_keyframe, codecs, ffmpeg_decode_errors, ffmpeg_publish, ffprobe_streams,
    get, media_playlist, require, segment_uris, start_origin, wait_for, wait_publishing,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_then_ffprobe_and_decode_over_hls_flv_and_rtmp() {
    if !require("ffmpeg") || !require("ffprobe") {
        return;
    }
    let origin = start_origin(|_| {}).await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let http = format!("http://{}", origin.http_addr());
    let _ffmpeg = ffmpeg_publish(&rtmp, "640x360", 30);

    let hls = format!("{http}/live/cam.m3u8");
    let ready = wait_for(Duration::from_secs(20), || async {
        let (status, body) = get(&hls).await;
        (status == 200 && media_playlist(&body).segments.len() >= 3).then_some(())
    })
    .await;
    assert!(ready.is_some(), "playlist never reached 3 segments");

    let flv = format!("{http}/live/cam.flv");
    let probes = tokio::task::spawn_blocking({
        let (hls, flv) = (hls.clone(), flv.clone());
        move || (ffprobe_streams(&hls), ffprobe_streams(&flv))
    })
    .await
    .expect("probe task");
    for (name, probe) in [("hls", &probes.0), ("http-flv", &probes.1)] {
        let mut found = codecs(probe);
        found.sort();
        assert_eq!(
            found,
            vec![
                ("aac".to_string(), None, None),
                ("h264".to_string(), Some(640), Some(360))
            ],
            "{name} streams"
        );
    }

    let decodes: Vec<_> = [hls.clone(), flv, rtmp]
        .into_iter()
        .map(|url| tokio::task::spawn_blocking(move || (ffmpeg_decode_errors(&url, 5), url)))
        .collect();
    let mut poll_task = tokio::spawn({
        let hls = hls.clone();
        async move {
            let mut last_seq = 0;
            let mut polls = 0;
            for _ in 0..12 {
                let (_, body) = get(&hls).await;
                let pl = media_playlist(&body);
                assert!(
                    pl.media_sequence >= last_seq,
                    "media sequence went back: {} after {last_seq}",
                    pl.media_sequence
                );
                last_seq = pl.media_sequence;
                polls += 1;
                // Twelve polls half a second apart, spread over the decodes.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            polls
        }
    });
    for d in decodes {
        let (errors, url) = d.await.expect("decode task");
        assert!(errors.is_empty(), "decoding {url}: {errors:#?}");
    }
    assert_eq!((&mut poll_task).await.expect("poller"), 12);

    let (_, body) = get(&hls).await;
    let pl = media_playlist(&body);
    assert!(pl.segments.len() >= 3);
    for seg in &pl.segments {
        assert!(
            (seg.duration.round() as u64) <= pl.target_duration,
            "segment of {}s exceeds TARGETDURATION {}",
            seg.duration,
            pl.target_duration
        );
    }
    for uri in segment_uris(&String::from_utf8_lossy(&body), &format!("{http}/live/")) {
        let (status, data) = get(&uri).await;
        assert_eq!(status, 200, "{uri}");
        assert_starts_with_keyframe(&uri, &data);
    }
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_publisher_is_replaced_without_waiting_for_tcp_timeout() {
    if !require("ffmpeg") {
        return;
    }
    let origin = start_origin(|c| c.hub.publisher_timeout_secs = 1.5).await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let ffmpeg = ffmpeg_publish(&rtmp, "320x240", 30);
    assert!(
        wait_publishing(&origin, "live/cam").await,
        "ffmpeg never went live"
    );
    let first_epoch = origin.hub().get("live/cam").expect("stream").epoch();

    // Freeze ffmpeg: its TCP connection stays open but no media flows, as after a network drop.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &ffmpeg.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    let started = std::time::Instant::now();
    let evicted = wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/cam").filter(|s| !s.is_live())
    })
    .await;
    assert!(evicted.is_some(), "the silent publisher was never evicted");
    let (stop, task) = livepulse_tests::push_sample(&rtmp);
    let replaced = wait_for(Duration::from_secs(10), || async {
        origin
            .hub()
            .get("live/cam")
            .filter(|s| s.is_live() && s.epoch() > first_epoch && s.info().video_codec.is_some())
    })
    .await;
    assert!(
        replaced.is_some() && !task.is_finished(),
        "a new publisher got the key"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "republish took {:?}",
        started.elapsed()
    );
    stop.cancel();
    task.await
        .expect("publisher task")
        .expect("publisher ran cleanly");
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &ffmpeg.id().to_string()])
        .status();
    origin.shutdown().await;
}
