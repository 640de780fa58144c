//! `push-client` publishes the built-in sample to our origin and to nginx-rtmp; ffprobe reads
//! both back, and the pusher survives an origin restart on its own.

use std::time::Duration;

use livepulse_tests::{codecs, ffprobe_streams, nginx, require, start_origin, wait_for};
use push_client::{Backoff, FlvLoop, PublishOptions, PublishState, PublishStats, RtmpUrl};
use tokio_util::sync::CancellationToken;

fn expected() -> Vec<(String, Option<u64>, Option<u64>)> {
    vec![
        ("aac".to_string(), None, None),
        ("h264".to_string(), Some(640), Some(360)),
    ]
}

async fn probe(url: String) -> Vec<(String, Option<u64>, Option<u64>)> {
    let probe = tokio::task::spawn_blocking(move || ffprobe_streams(&url))
        .await
        .expect("probe task");
    let mut found: Vec<_> = codecs(&probe)
        .into_iter()
        .filter(|(c, _, _)| c == "h264" || c == "aac")
        .collect();
    found.sort();
    found
}

async fn play_for(url: &str, secs: u64) -> player_client::Summary {
    let options = player_client::PlayOptions {
        duration: Some(Duration::from_secs(secs)),
        ..Default::default()
    };
    let summary = tokio::time::timeout(
        Duration::from_secs(secs + 20),
        player_client::play(url, &options, &CancellationToken::new(), &mut |_| {}),
    )
    .await
    .expect("play ends on its own")
    .unwrap_or_else(|e| panic!("{url}: {e}"));
    eprintln!(
        "{url}: {}",
        serde_json::to_string(&summary).unwrap_or_default()
    );
    summary
}

fn spawn_pusher(url: &str) -> (CancellationToken, std::sync::Arc<PublishStats>) {
    let stop = CancellationToken::new();
    let stats = std::sync::Arc::new(PublishStats::default());
    let url = RtmpUrl::parse(url).expect("url");
    let (token, counters) = (stop.clone(), stats.clone());
    tokio::spawn(async move {
        let mut source = FlvLoop::sample().expect("sample");
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        push_client::run(
            &url,
            &mut source,
            &PublishOptions::default(),
            &backoff,
            &token,
            &counters,
        )
        .await;
    });
    (stop, stats)
}

/// Pushes the sample to `rtmp`, waits for `hls` to list two segments, then checks ffprobe and
/// our player read both URLs: h264 640x360 + aac, frames flowing, SEI stamps intact.
async fn push_then_probe_and_play(server: &str, rtmp: String, hls: String) {
    let (stop, stats) = spawn_pusher(&rtmp);
    let ready = wait_for(Duration::from_secs(20), || async {
        let r = reqwest::get(&hls).await.ok()?;
        let body = r.text().await.ok()?;
        (body.matches(".ts").count() >= 2).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "{server} never produced an HLS playlist from our publisher"
    );
    assert_eq!(probe(rtmp.clone()).await, expected(), "{server} RTMP play");
    assert_eq!(probe(hls.clone()).await, expected(), "{server} HLS");
    for url in [rtmp, hls] {
        let summary = play_for(&url, 4).await;
        assert!(
            summary.video_frames > 30 && summary.audio_frames > 30,
            "{url}: {summary:?}"
        );
        assert_eq!(summary.dts_backwards.total(), 0, "{url}: {summary:?}");
        assert!(
            summary.latency.samples > 0,
            "{url}: no SEI stamps came through {server}"
        );
    }
    assert_eq!(stats.snapshot().reconnects, 0);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_pushed_to_nginx_rtmp_is_readable_over_rtmp_and_hls() {
    if !require("ffprobe") || !nginx::available() {
        return;
    }
    let nginx = nginx::start();
    push_then_probe_and_play(
        "nginx-rtmp",
        format!("rtmp://127.0.0.1:{}/live/s", nginx.rtmp_port),
        format!("http://127.0.0.1:{}/hls/s.m3u8", nginx.http_port),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_pushed_to_our_origin_is_readable_over_rtmp_and_hls() {
    if !require("ffprobe") {
        return;
    }
    let origin = start_origin(|_| {}).await;
    push_then_probe_and_play(
        "our origin",
        format!("rtmp://{}/live/s", origin.rtmp_addr()),
        format!("http://{}/live/s.m3u8", origin.http_addr()),
    )
    .await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_loop_points_play_without_backwards_dts_or_stalls() {
    let origin = start_origin(|_| {}).await;
    let (stop, stats) = spawn_pusher(&format!("rtmp://{}/live/loop", origin.rtmp_addr()));
    let live = wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/loop").filter(|s| s.is_live())
    })
    .await;
    assert!(live.is_some());
    // The sample is 10 s long: 32 s of play crosses at least three loop points.
    let summary = play_for(&format!("http://{}/live/loop.flv", origin.http_addr()), 32).await;
    assert_eq!(summary.dts_backwards.total(), 0, "{summary:?}");
    assert_eq!(summary.stalls, 0, "{summary:?}");
    assert!(summary.played_secs >= 30.0, "{summary:?}");
    assert!(summary.latency.samples > 500, "{summary:?}");
    assert_eq!(stats.snapshot().reconnects, 0);
    stop.cancel();
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_reconnects_by_itself_after_an_origin_restart() {
    let origin = start_origin(|_| {}).await;
    let (rtmp_addr, http_addr) = (origin.rtmp_addr(), origin.http_addr());
    let (stop, stats) = spawn_pusher(&format!("rtmp://{rtmp_addr}/live/s"));
    let live = wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/s").filter(|s| s.is_live())
    })
    .await;
    assert!(live.is_some());
    origin.shutdown().await;

    // The origin comes back once the pusher has found it gone: its first reconnect met a
    // closed port and it is backing off again.
    let retrying = wait_for(Duration::from_secs(10), || async {
        let s = stats.snapshot();
        (s.reconnects >= 1 && s.state == PublishState::Backoff).then_some(())
    })
    .await;
    assert!(
        retrying.is_some(),
        "the pusher did not retry the stopped origin: {:?}",
        stats.snapshot()
    );
    let restarted = start_origin(|c| {
        c.rtmp = rtmp_addr;
        c.http = http_addr;
    })
    .await;
    let back = wait_for(Duration::from_secs(10), || async {
        restarted.hub().get("live/s").filter(|s| s.is_live())
    })
    .await;
    assert!(
        back.is_some(),
        "the pusher did not come back after the restart"
    );
    assert!(stats.snapshot().reconnects >= 1);
    stop.cancel();
    restarted.shutdown().await;
}

#[cfg(feature = "transcode")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libx264_test_pattern_publishes_at_the_chosen_resolution() {
    if !require("ffprobe") {
        return;
    }
    use push_client::pattern::{PatternSource, PatternSpec};
    let origin = start_origin(|_| {}).await;
    let url = RtmpUrl::parse(&format!("rtmp://{}/live/pattern", origin.rtmp_addr())).expect("url");
    let stop = CancellationToken::new();
    let token = stop.clone();
    let spec = PatternSpec::parse("480x272@25", "400k").expect("spec");
    tokio::spawn(async move {
        let mut source = PatternSource::start(spec).expect("encoder starts");
        let stats = PublishStats::default();
        let _ = push_client::publish(
            &url,
            &mut source,
            &PublishOptions::default(),
            &token,
            &stats,
        )
        .await;
    });
    let flv = format!("http://{}/live/pattern.flv", origin.http_addr());
    let live = wait_for(Duration::from_secs(15), || async {
        origin
            .hub()
            .stats()
            .into_iter()
            .find(|s| s.key == "live/pattern" && s.gop_frames > 0)
    })
    .await;
    let stats = live.expect("pattern went live");
    assert_eq!(
        (stats.media.width, stats.media.height),
        (Some(480), Some(272))
    );
    let probe = tokio::task::spawn_blocking(move || ffprobe_streams(&flv))
        .await
        .expect("probe task");
    assert_eq!(
        codecs(&probe),
        vec![("h264".to_string(), Some(480), Some(272))]
    );
    let summary = play_for(&format!("rtmp://{}/live/pattern", origin.rtmp_addr()), 3).await;
    assert!(
        summary.video_frames > 40 && summary.latency.samples > 0,
        "{summary:?}"
    );
    stop.cancel();
    origin.shutdown().await;
}
