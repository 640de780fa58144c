//! Hostile clients at the edge: header floods and viewers that never read do not hurt others.

use std::time::{Duration, Instant};

use livepulse_tests::{push_sample, start_origin, wait_for};
use media_core::flv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Counts FLV video tags a well-behaved viewer receives during `secs`.
async fn video_tags_within(url: &str, secs: u64) -> usize {
    let mut r = reqwest::get(url).await.expect("edge answers");
    assert_eq!(r.status(), 200);
    let mut reader = flv::Reader::new();
    let mut video = 0;
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, r.chunk()).await else {
            break;
        };
        reader.push(&chunk);
        while let Some(tag) = reader.next_tag().expect("valid FLV") {
            video += usize::from(tag.tag_type == flv::TAG_VIDEO);
        }
    }
    video
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_and_stuck_readers_do_not_hurt_other_viewers() {
    let origin = start_origin(|_| {}).await;
    let (stop, _pusher) = push_sample(&format!("rtmp://{}/live/bad", origin.rtmp_addr()));
    let live = wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/bad").filter(|s| s.is_live())
    })
    .await;
    assert!(live.is_some());
    let edge = livepulse_tests::start_edge(&origin, |_| {}).await;
    let addr = edge.http_addr();
    let url = format!("http://{addr}/live/bad.flv");

    // Viewers that ask for the stream and then never read a byte.
    let mut stuck = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /live/bad.flv HTTP/1.1\r\nHost: edge\r\n\r\n")
            .await
            .expect("write");
        stuck.push(s);
    }

    // A header flood: 10,000 headers in one request.
    let mut flood = TcpStream::connect(addr).await.expect("connect");
    let mut request = b"GET /live/bad.m3u8 HTTP/1.1\r\nHost: edge\r\n".to_vec();
    for i in 0..10_000 {
        request.extend_from_slice(format!("X-Flood-{i}: {}\r\n", "a".repeat(32)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let _ = flood.write_all(&request).await;
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), flood.read(&mut answer))
        .await
        .map(|r| r.unwrap_or(0))
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(
        n == 0 || head.starts_with("HTTP/1.1 431") || head.starts_with("HTTP/1.1 400"),
        "header flood answered {head:?}"
    );

    // Meanwhile a normal viewer plays at full rate (the sample is 30 fps).
    let video = video_tags_within(&url, 4).await;
    assert!(
        video >= 90,
        "a healthy viewer got only {video} video tags in 4 s"
    );
    let (status, _) = livepulse_tests::get(&format!("http://{addr}/api/v1/cache")).await;
    assert_eq!(status, 200);

    drop(stuck);
    stop.cancel();
    edge.shutdown().await;
    origin.shutdown().await;
}
