//! An origin killed mid-run: the edge fails over to the second origin and viewers continue.

use std::time::Duration;

use livepulse_tests::{push_sample, start_origin, wait_for};
use player_client::{play, PlayOptions};
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

    let players: Vec<_> = ["flv", "m3u8"]
        .into_iter()
        .map(|ext| {
            let url = format!("http://{}/live/ha.{ext}", edge.http_addr());
            let options = PlayOptions {
                duration: Some(Duration::from_secs(14)),
                ..PlayOptions::default()
            };
            tokio::spawn(async move {
                play(&url, &options, &CancellationToken::new(), &mut |_| {}).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
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
