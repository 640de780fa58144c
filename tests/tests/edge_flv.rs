//! cdn-edge relays HTTP-FLV from our origin: one origin connection per stream however many
//! viewers, late joiners start at a keyframe, the upstream closes after the last viewer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use livepulse_tests::{get, push_sample, start_origin, wait_for};
use media_core::flv::{self, Tag, VideoPacket};

/// Tags read from an FLV URL until `video_tags` video tags arrived; `playing` counts the
/// readers whose first video tag arrived.
async fn read_tags(
    client: &reqwest::Client,
    url: &str,
    video_tags: usize,
    playing: &AtomicUsize,
) -> Vec<Tag> {
    let mut r = client.get(url).send().await.expect("edge answers");
    assert_eq!(r.status(), 200, "{url}");
    let mut reader = flv::Reader::new();
    let mut tags: Vec<Tag> = Vec::new();
    let read = async {
        while tags.iter().filter(|t| t.tag_type == flv::TAG_VIDEO).count() < video_tags {
            let chunk = r.chunk().await.expect("stream").expect("stream open");
            reader.push(&chunk);
            let had_video = tags.iter().any(|t| t.tag_type == flv::TAG_VIDEO);
            while let Some(tag) = reader.next_tag().expect("valid FLV") {
                tags.push(tag);
            }
            if !had_video && tags.iter().any(|t| t.tag_type == flv::TAG_VIDEO) {
                playing.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .expect("video tags arrive");
    tags
}

/// The stream starts with the AVC sequence header, then a keyframe.
fn assert_starts_at_keyframe(tags: &[Tag]) {
    let video: Vec<_> = tags
        .iter()
        .filter(|t| t.tag_type == flv::TAG_VIDEO)
        .map(|t| flv::parse_video(&t.data).expect("video tag"))
        .collect();
    assert_eq!(video[0].packet, VideoPacket::SequenceHeader, "{video:?}");
    assert!(
        video[1].keyframe && video[1].packet == VideoPacket::Nalu,
        "{video:?}"
    );
}

/// The origin's current HTTP-FLV viewer count.
async fn origin_flv_viewers(origin: SocketAddr) -> u64 {
    let (_, body) = get(&format!("http://{origin}/metrics")).await;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("livepulse_origin_viewers{protocol=\"http_flv\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_flv_viewers_share_one_origin_connection() {
    let origin = start_origin(|_| {}).await;
    let (stop, pusher) = push_sample(&format!("rtmp://{}/live/fan", origin.rtmp_addr()));
    let origin_flv = format!("http://{}/live/fan.flv", origin.http_addr());
    wait_for(Duration::from_secs(10), || async {
        (get(&format!("http://{}/api/v1/streams", origin.http_addr()))
            .await
            .1
            .len()
            > 2
            && reqwest::Client::new()
                .head(&origin_flv)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200))
        .then_some(())
    })
    .await
    .expect("stream live on the origin");

    let mut config = cdn_edge::Config::ephemeral(vec![format!("http://{}", origin.http_addr())]);
    config.flv_linger_ms = 300;
    let edge = cdn_edge::Server::bind(config).await.expect("edge starts");
    let url = format!("http://{}/live/fan.flv", edge.http_addr());
    let client = reqwest::Client::new();

    let playing = Arc::new(AtomicUsize::new(0));
    let mut viewers = tokio::task::JoinSet::new();
    for _ in 0..299 {
        let (client, url, playing) = (client.clone(), url.clone(), playing.clone());
        viewers.spawn(async move { read_tags(&client, &url, 60, &playing).await });
    }
    let all_playing = wait_for(Duration::from_secs(15), || async {
        (playing.load(Ordering::SeqCst) == 299).then_some(())
    })
    .await;
    assert!(all_playing.is_some(), "not every edge viewer got video");
    let during = origin_flv_viewers(origin.http_addr()).await;
    let late = read_tags(&client, &url, 10, &AtomicUsize::new(0)).await;
    assert_starts_at_keyframe(&late);
    let mut finished = 0;
    while let Some(tags) = viewers.join_next().await {
        assert_starts_at_keyframe(&tags.expect("viewer task"));
        finished += 1;
    }
    eprintln!("300 edge FLV viewers: origin FLV viewers while playing {during}");
    assert_eq!(finished, 299);
    assert_eq!(during, 1, "one origin connection for all edge viewers");

    let closed = wait_for(Duration::from_secs(5), || async {
        (origin_flv_viewers(origin.http_addr()).await == 0).then_some(())
    })
    .await;
    assert!(
        closed.is_some(),
        "upstream closed after the last viewer left"
    );
    let (_, summary) = get(&format!("http://{}/api/v1/cache", edge.http_addr())).await;
    let summary: serde_json::Value = serde_json::from_slice(&summary).expect("json");
    assert_eq!(summary["flv_upstreams"], 0, "{summary}");

    let (status, _) = get(&format!("http://{}/live/nosuch.flv", edge.http_addr())).await;
    assert_eq!(status, 404);

    let mut still_playing = client.get(&url).send().await.expect("edge answers");
    assert!(still_playing.chunk().await.expect("stream").is_some());
    let started = std::time::Instant::now();
    edge.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "shutdown with a viewer took {took:?}"
    );
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = still_playing.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the viewer's stream ends at shutdown");
    stop.cancel();
    let _ = pusher.await;
    origin.shutdown().await;
}
