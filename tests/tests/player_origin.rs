//! player-client plays the built-in sample from our origin over HLS, HTTP-FLV and RTMP.

use std::time::Duration;

use livepulse_tests::{get, push_sample, start_origin, wait_for};
use player_client::{play, PlayOptions, Protocol, Summary};
use tokio_util::sync::CancellationToken;

async fn play_for(url: &str, secs: u64) -> Summary {
    let options = PlayOptions {
        duration: Some(Duration::from_secs(secs)),
        ..PlayOptions::default()
    };
    let mut reports = 0;
    let summary = tokio::time::timeout(
        Duration::from_secs(secs + 15),
        play(url, &options, &CancellationToken::new(), &mut |_| {
            reports += 1
        }),
    )
    .await
    .expect("play ends on its own")
    .unwrap_or_else(|e| panic!("{url}: {e} ({:?})", e.summary));
    assert!(
        reports >= secs as usize - 1,
        "{url}: {reports} progress reports"
    );
    eprintln!(
        "{url}: {}",
        serde_json::to_string(&summary).expect("summary serializes")
    );
    summary
}

fn assert_clean(summary: &Summary, keyframe_first: bool) {
    assert!(summary.video_frames > 30, "{summary:?}");
    assert!(summary.audio_frames > 30, "{summary:?}");
    assert!(summary.bytes > 10_000, "{summary:?}");
    assert!(summary.startup_ms.is_some(), "{summary:?}");
    assert_eq!(summary.dts_backwards.total(), 0, "{summary:?}");
    if keyframe_first {
        assert_eq!(summary.first_video_keyframe, Some(true), "{summary:?}");
    }
    assert!(summary.played_secs > 1.0, "{summary:?}");
}

/// Stamps are optional (a publisher may not stamp), but stamped frames are video frames.
fn assert_latency_consistent(summary: &Summary) {
    let latency = &summary.latency;
    assert!(latency.samples <= summary.video_frames, "{summary:?}");
    assert_eq!(latency.samples > 0, latency.p50_ms.is_some(), "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_the_sample_over_hls_http_flv_and_rtmp() {
    let origin = start_origin(|_| {}).await;
    let rtmp = format!("rtmp://{}/live/player", origin.rtmp_addr());
    let (stop, pusher) = push_sample(&rtmp);
    let flv = format!("http://{}/live/player.flv", origin.http_addr());
    let live = wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/player").map(|_| ())
    })
    .await;
    assert!(live.is_some(), "the sample never went live");

    let hls = format!("http://{}/live/player.m3u8", origin.http_addr());
    let over_hls = async {
        let listed = wait_for(Duration::from_secs(15), || async {
            let (status, body) = get(&hls).await;
            let playlist = m3u8_rs::parse_media_playlist_res(&body).ok()?;
            (status == 200 && playlist.segments.len() >= 2).then_some(())
        })
        .await;
        assert!(listed.is_some(), "the playlist never listed 2 segments");
        play_for(&hls, 5).await
    };
    let (over_flv, over_rtmp, over_hls) =
        tokio::join!(play_for(&flv, 4), play_for(&rtmp, 4), over_hls);
    assert_eq!(over_hls.protocol, Some(Protocol::Hls));
    assert_clean(&over_hls, true);
    assert_latency_consistent(&over_hls);
    assert!(over_hls.errors.is_empty(), "{over_hls:?}");
    for (summary, protocol) in [(&over_flv, Protocol::HttpFlv), (&over_rtmp, Protocol::Rtmp)] {
        assert_eq!(summary.protocol, Some(protocol));
        assert_clean(summary, true);
        assert_eq!(summary.stalls, 0, "{summary:?}");
        assert_eq!(summary.reconnects, 0, "{summary:?}");
        assert_latency_consistent(summary);
    }
    stop.cancel();
    pusher.await.expect("pusher task").expect("pusher ran");
    origin.shutdown().await;
}
