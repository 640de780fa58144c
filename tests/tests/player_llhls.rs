//! player-client plays low-latency HLS from our origin and through the edge in front of it, as
//! hls.js does (start at PART-HOLD-BACK, blocking reloads, hinted parts), for 20 s from the
//! origin and 60 s through the edge: no stalls, and end-to-end latency from the publisher's SEI
//! stamps within LL-HLS's budget (p50 at most 1.5 s, p99 at most 2.0 s).

use std::time::Duration;

use livepulse_tests::{get, push_sample, start_origin, wait_for};
use player_client::{play, PlayOptions, Protocol, Summary};
use tokio_util::sync::CancellationToken;

/// How long the viewer of the origin watches...
const WATCH: Duration = Duration::from_secs(20);
/// ...and the viewer through the edge.
const WATCH_EDGE: Duration = Duration::from_secs(60);

async fn play_for(url: &str, watch: Duration) -> Summary {
    let options = PlayOptions {
        duration: Some(watch),
        ..PlayOptions::default()
    };
    let summary = tokio::time::timeout(
        watch + Duration::from_secs(15),
        play(url, &options, &CancellationToken::new(), &mut |_| {}),
    )
    .await
    .expect("play ends on its own")
    .unwrap_or_else(|e| panic!("{url}: {e} ({:?})", e.summary));
    eprintln!(
        "{url}: {}",
        serde_json::to_string(&summary).expect("summary serializes")
    );
    summary
}

/// A viewer of `secs` seconds that played LL-HLS cleanly, following the live edge.
fn assert_followed_the_live_edge(s: &Summary, secs: u64) {
    assert_eq!(s.protocol, Some(Protocol::LlHls), "{s:?}");
    assert!(s.startup_ms.is_some_and(|ms| ms < 2000.0), "{s:?}");
    assert_eq!(s.stalls, 0, "{s:?}");
    assert_eq!(s.first_video_keyframe, Some(true), "{s:?}");
    assert_eq!(s.dts_backwards.total(), 0, "{s:?}");
    assert!(s.errors.is_empty(), "{s:?}");
    assert!(
        s.video_frames > 25 * secs && s.audio_frames > 35 * secs,
        "{s:?}"
    );
    let r = s.llhls.expect("LL-HLS request counts");
    // About three parts a second, each asked for by a blocking reload and mostly as a hint.
    assert!(
        r.parts >= 2 * secs && r.blocking_playlists >= 2 * secs,
        "{r:?}"
    );
    assert!(
        r.playlists > r.blocking_playlists && r.hinted_parts * 2 > r.parts,
        "{r:?}"
    );
    assert_eq!(r.inits, 1, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plays_llhls_from_the_origin_and_through_the_edge_within_the_latency_budget() {
    let origin = start_origin(|_| {}).await;
    let edge = livepulse_tests::start_edge(&origin, |_| {}).await;
    let (stop, publisher) = push_sample(&format!("rtmp://{}/live/ll", origin.rtmp_addr()));
    let direct = format!("http://{}/live/ll/ll.m3u8", origin.http_addr());
    let listed = wait_for(Duration::from_secs(20), || async {
        let (status, body) = get(&direct).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        let playlist = media_core::hls::ll::parse::parse(&text).ok()?;
        (status == 200 && playlist.segments.len() >= 2).then_some(())
    })
    .await;
    assert!(listed.is_some(), "the LL playlist never listed 2 segments");

    let via_edge = format!("http://{}/live/ll/ll.m3u8", edge.http_addr());
    // A master playlist of LL variants is played as LL-HLS too.
    let master = format!("http://{}/live/ll/ll-master.m3u8", origin.http_addr());
    let (from_origin, from_edge, from_master) = tokio::join!(
        play_for(&direct, WATCH),
        play_for(&via_edge, WATCH_EDGE),
        play_for(&master, Duration::from_secs(4)),
    );
    for (name, s, watch) in [
        ("origin", &from_origin, WATCH),
        ("edge", &from_edge, WATCH_EDGE),
    ] {
        assert_followed_the_live_edge(s, watch.as_secs());
        let live = &s.live_latency;
        eprintln!(
            "{name}: latency p50 {:?} p99 {:?} ms over {} frames; live p50 {:?} p99 {:?} ms; \
             joins {:?}; requests {:?}",
            s.latency.p50_ms,
            s.latency.p99_ms,
            s.latency.samples,
            live.p50_ms,
            live.p99_ms,
            s.joins,
            s.llhls
        );
        assert_eq!(
            s.joins.len(),
            1,
            "{name}: caught up with the live edge once"
        );
        assert!(live.samples > 400, "{name}: {live:?}");
        // Live latency, and over every presented frame, the join burst from the start point
        // included.
        for latency in [live, &s.latency] {
            let p50 = latency.p50_ms.unwrap_or(f64::MAX);
            let p99 = latency.p99_ms.unwrap_or(f64::MAX);
            assert!(p50 <= 1500.0 && p99 <= 2000.0, "{name}: {latency:?}");
        }
    }
    assert_followed_the_live_edge(&from_master, 4);
    assert!(from_master.url.ends_with("ll-master.m3u8"));

    stop.cancel();
    publisher.await.expect("publisher task").expect("published");
    edge.shutdown().await;
    origin.shutdown().await;
}
