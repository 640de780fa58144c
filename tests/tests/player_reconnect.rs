//! player-client rides out an origin restart: it retries with backoff and resumes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use livepulse_tests::{push_sample, start_origin, wait_for};
use player_client::{play, PlayOptions, PlayState, Progress, Summary};
use tokio_util::sync::CancellationToken;

/// Plays `url` for `secs`; `playing` is set once the player reports playback.
async fn play_for(url: String, secs: u64, playing: Arc<AtomicBool>) -> Summary {
    let options = PlayOptions {
        duration: Some(Duration::from_secs(secs)),
        give_up_after: Duration::from_secs(8),
        ..PlayOptions::default()
    };
    let mut progress = |p: &Progress| {
        if p.state == PlayState::Playing {
            playing.store(true, Ordering::SeqCst);
        }
    };
    tokio::time::timeout(
        Duration::from_secs(secs + 15),
        play(&url, &options, &CancellationToken::new(), &mut progress),
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

    let playing = [(); 2].map(|_| Arc::new(AtomicBool::new(false)));
    let flv_url = format!("http://{http_addr}/live/again.flv");
    let flv = tokio::spawn(play_for(flv_url, 9, playing[0].clone()));
    let rtmp = tokio::spawn(play_for(publish.clone(), 9, playing[1].clone()));
    let both_playing = wait_for(Duration::from_secs(10), || async {
        playing
            .iter()
            .all(|p| p.load(Ordering::SeqCst))
            .then_some(())
    })
    .await;
    assert!(both_playing.is_some(), "the players never started playing");
    stop.cancel();
    let _ = pusher.await;
    origin.shutdown().await;

    // The origin stays down for a moment, so the players' retries meet a closed port and
    // back off before it returns.
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
