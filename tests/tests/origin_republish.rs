//! A stream key published, dropped and published again 100 times while players poll its
//! playlist. Each new life's segments are listed; the state of the last life, still being
//! torn down, never takes the new one with it, and the media sequence never goes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use livepulse_tests::{get, media_playlist, start_origin, wait_for};
use media_core::flv;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_100_times_under_load() {
    let origin = start_origin(|c| c.hub.linger_secs = 0.0).await;
    let hub = origin.hub().clone();
    let url = format!("http://{}/live/re.m3u8", origin.http_addr());
    let tags = flv::parse_file(include_bytes!("../../assets/sample.flv")).expect("sample");
    // The first 3.5 s of the sample: at least one finished 1 s segment per life.
    let tags: Vec<_> = tags.into_iter().filter(|t| t.timestamp <= 3500).collect();

    let stop = CancellationToken::new();
    let newest = Arc::new(AtomicU64::new(0));
    let mut players = Vec::new();
    for _ in 0..8 {
        let (url, stop, newest) = (url.clone(), stop.clone(), newest.clone());
        players.push(tokio::spawn(async move {
            let mut highest_sequence = 0;
            while !stop.is_cancelled() {
                let (status, body) = get(&url).await;
                if status == 200 {
                    let p = media_playlist(&body);
                    assert!(
                        p.media_sequence >= highest_sequence,
                        "media sequence went back from {highest_sequence}: {p:?}"
                    );
                    highest_sequence = p.media_sequence;
                    let last = p.media_sequence + p.segments.len() as u64;
                    newest.fetch_max(last, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    for life in 0..100 {
        let before = newest.load(Ordering::Relaxed);
        let mut publisher = hub.publish("live/re").expect("the key is free");
        for tag in &tags {
            let data = tag.data.clone();
            let pushed = match tag.tag_type {
                flv::TAG_VIDEO => publisher.push_video(tag.timestamp, data),
                flv::TAG_AUDIO => publisher.push_audio(tag.timestamp, data),
                _ => Ok(0),
            };
            pushed.expect("sample frame");
        }
        let listed = wait_for(Duration::from_secs(10), || async {
            (newest.load(Ordering::Relaxed) > before).then_some(())
        })
        .await;
        assert!(
            listed.is_some(),
            "life {life}: no new segment listed after the republish"
        );
        drop(publisher);
        hub.sweep();
    }
    stop.cancel();
    for p in players {
        p.await.expect("player saw a consistent playlist");
    }
    origin.shutdown().await;
}
