//! player-client rides out an origin restart: it retries with backoff and resumes.

use std::time::Duration;

use livepulse_tests::{push_sample, start_origin, wait_for};
use player_client::{play, PlayOptions, Summary};
use tokio_util::sync::CancellationToken;

async fn play_for(url: String, secs: u64) -> Summary {
    let options = PlayOptions {
        duration: Some(Duration::from_secs(secs)),
        give_up_after: Duration::from_secs(8),
        ..PlayOptions::default()
    };
    tokio::time::timeout(
        Duration::from_secs(secs + 15),
        play(&url, &options, &CancellationToken::new(), &mut |_| {}),
    )
    .await
    .expect("play ends on its own")
    .unwrap_or_else(|e| panic!("{url}: {e} ({:?})", e.summary))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_reconnect_after_the_origin_restarts() {
    let origin = start_origin(|_| {}).await;
    let (rtmp_addr, http_addr) = (origin.rtmp_addr(), origin.http_addr());
    let publish = format!("rtmp://{rtmp_addr}/live/again");
    let (stop, pusher) = push_sample(&publish);
    let live = wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/again").map(|_| ())
    })
    .await;
    assert!(live.is_some(), "the sample never went live");

    let flv = tokio::spawn(play_for(format!("http://{http_addr}/live/again.flv"), 9));
    let rtmp = tokio::spawn(play_for(publish.clone(), 9));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let _ = pusher.await;
    origin.shutdown().await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let origin = start_origin(|c| {
        c.rtmp = rtmp_addr;
        c.http = http_addr;
    })
    .await;
    let (stop, pusher) = push_sample(&publish);

    for (name, task) in [("http-flv", flv), ("rtmp", rtmp)] {
        let summary = task.await.expect("player task");
        eprintln!(
            "{name}: {}",
            serde_json::to_string(&summary).expect("serializes")
        );
        assert_eq!(summary.reconnects, 1, "{name}: {summary:?}");
        assert!(!summary.errors.is_empty(), "{name}: {summary:?}");
        assert!(summary.startup_ms.is_some(), "{name}: {summary:?}");
        assert!(summary.video_frames > 60, "{name}: {summary:?}");
        assert_eq!(summary.dts_backwards.total(), 0, "{name}: {summary:?}");
    }
    stop.cancel();
    let _ = pusher.await;
    origin.shutdown().await;
}
