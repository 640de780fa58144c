//! An origin killed mid-run: the edge fails over to the second origin and viewers continue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use livepulse_tests::{push_sample, start_origin, wait_for};
use player_client::{play, PlayOptions, PlayState, Progress};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_continue_through_the_edge_when_an_origin_dies() {
    // Two origins carrying the same stream, as an encoder pushing to a primary and a backup.
    let primary = start_origin(|_| {}).await;
    let backup = start_origin(|_| {}).await;
    let (stop_a, _a) = push_sample(&format!("rtmp://{}/live/ha", primary.rtmp_addr()));
    let (stop_b, _b) = push_sample(&format!("rtmp://{}/live/ha", backup.rtmp_addr()));
    for origin in [&primary, &backup] {
        let live = wait_for(Duration::from_secs(10), || async {
            origin.hub().get("live/ha").filter(|s| s.is_live())
        })
        .await;
        assert!(live.is_some());
    }
    let mut config = cdn_edge::Config::ephemeral(vec![
        format!("http://{}", primary.http_addr()),
        format!("http://{}", backup.http_addr()),
    ]);
    config.health_interval_ms = 300;
    let edge = cdn_edge::Server::bind(config).await.expect("edge starts");

    let playing: Vec<_> = (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let players: Vec<_> = ["flv", "m3u8"]
        .into_iter()
        .zip(playing.clone())
        .map(|(ext, playing)| {
            let url = format!("http://{}/live/ha.{ext}", edge.http_addr());
            let options = PlayOptions {
                duration: Some(Duration::from_secs(14)),
                ..PlayOptions::default()
            };
            tokio::spawn(async move {
                let mut progress = |p: &Progress| {
                    if p.state == PlayState::Playing {
                        playing.store(true, Ordering::SeqCst);
                    }
                };
                play(&url, &options, &CancellationToken::new(), &mut progress).await
            })
        })
        .collect();
    // The primary dies once both players play through the edge, the edge's FLV upstream
    // attached to the primary.
    let both_playing = wait_for(Duration::from_secs(15), || async {
        let flv_on_primary = primary
            .hub()
            .stats()
            .iter()
            .any(|s| s.key == "live/ha" && s.viewers.http_flv > 0);
        (flv_on_primary && playing.iter().all(|p| p.load(Ordering::SeqCst))).then_some(())
    })
    .await;
    assert!(
        both_playing.is_some(),
        "the players never played from the primary through the edge"
    );
    stop_a.cancel();
    primary.shutdown().await;

    for player in players {
        let summary = tokio::time::timeout(Duration::from_secs(40), player)
            .await
            .expect("player ends")
            .expect("player task")
            .unwrap_or_else(|e| panic!("player failed: {e}"));
        eprintln!(
            "through the edge across an origin kill: {}",
            serde_json::to_string(&summary).unwrap_or_default()
        );
        // Segments are 1 s long in these origins: all stalls together stay within about one.
        assert!(
            summary.stall_ms <= 1_500.0,
            "at most one segment's stall: {summary:?}"
        );
        assert!(summary.played_secs >= 10.0, "{summary:?}");
    }
    stop_b.cancel();
    edge.shutdown().await;
    backup.shutdown().await;
}
