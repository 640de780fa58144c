//! player-client ends with a clear error, in bounded time, on sources it cannot play.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use player_client::{play, PlayError, PlayErrorKind, PlayOptions};
use tokio_util::sync::CancellationToken;

/// Serves `app` on an ephemeral loopback port until the test ends.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Plays `url` expecting an error within `within`; returns it with how long it took.
async fn fails(url: &str, options: PlayOptions, within: Duration) -> (PlayError, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(
        within,
        play(url, &options, &CancellationToken::new(), &mut |_| {}),
    )
    .await
    .unwrap_or_else(|_| panic!("{url}: still playing after {within:?}"));
    let err = result.expect_err("playing fails");
    eprintln!("{url}: {err} after {:?}", started.elapsed());
    (err, started.elapsed())
}

#[tokio::test]
async fn a_url_that_is_not_hls_fails_at_once() {
    let addr = serve(Router::new().route(
        "/x.m3u8",
        get(|| async { "hello, this is not a playlist\n" }),
    ))
    .await;
    let url = format!("http://{addr}/x.m3u8");
    let (err, _) = fails(&url, PlayOptions::default(), Duration::from_secs(10)).await;
    match &err.kind {
        PlayErrorKind::NotHls { reason, .. } => assert!(reason.contains("#EXTM3U"), "{reason}"),
        other => panic!("expected NotHls, got {other}"),
    }
    assert!(err.to_string().contains("is not an HLS playlist"), "{err}");
    assert!(err.summary.bytes > 0);
}

#[tokio::test]
async fn a_playlist_that_never_updates_goes_stale() {
    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\n0.ts\n#EXTINF:1.0,\n1.ts\n#EXTINF:1.0,\n2.ts\n";
    let addr = serve(
        Router::new()
            .route("/live/fixed.m3u8", get(|| async { PLAYLIST }))
            .route("/live/{segment}", get(|| async { "" })),
    )
    .await;
    let url = format!("http://{addr}/live/fixed.m3u8");
    let (err, took) = fails(&url, PlayOptions::default(), Duration::from_secs(15)).await;
    assert!(
        matches!(err.kind, PlayErrorKind::StalePlaylist { .. }),
        "expected StalePlaylist, got {}",
        err.kind
    );
    assert!(took >= Duration::from_secs(3), "stale after {took:?}");
    assert!(err.to_string().contains("EXT-X-ENDLIST"), "{err}");
}

#[tokio::test]
async fn a_forbidden_stream_fails_without_retrying() {
    let addr = serve(Router::new().route(
        "/live/cam.flv",
        get(|| async { (StatusCode::FORBIDDEN, "no") }),
    ))
    .await;
    let url = format!("http://{addr}/live/cam.flv");
    let (err, _) = fails(&url, PlayOptions::default(), Duration::from_secs(10)).await;
    assert!(
        matches!(err.kind, PlayErrorKind::HttpStatus { status: 403, .. }),
        "{}",
        err.kind
    );
}

#[tokio::test]
async fn an_http_answer_that_is_not_flv_fails_at_once() {
    let addr = serve(Router::new().route(
        "/live/cam.flv",
        get(|| async { "<html>not a stream</html>" }),
    ))
    .await;
    let url = format!("http://{addr}/live/cam.flv");
    let (err, _) = fails(&url, PlayOptions::default(), Duration::from_secs(10)).await;
    assert!(
        matches!(err.kind, PlayErrorKind::NotFlv { .. }),
        "{}",
        err.kind
    );
}

#[tokio::test]
async fn unreachable_sources_give_up_after_the_configured_time() {
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("bound address")
    };
    let options = PlayOptions {
        give_up_after: Duration::from_secs(1),
        ..PlayOptions::default()
    };
    for url in [
        format!("http://{closed}/live/cam.m3u8"),
        format!("http://{closed}/live/cam.flv"),
        format!("rtmp://{closed}/live/cam"),
    ] {
        let (err, took) = fails(&url, options.clone(), Duration::from_secs(10)).await;
        assert!(
            matches!(err.kind, PlayErrorKind::GaveUp { .. }),
            "{url}: {}",
            err.kind
        );
        assert!(
            took >= Duration::from_secs(1),
            "{url}: gave up after {took:?}"
        );
        assert!(
            err.summary.errors.get("connect").is_some_and(|&n| n >= 2),
            "{url}: {:?}",
            err.summary.errors
        );
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "ftp://h/x.flv",
        "http://h/live/cam.mp4",
        "rtmp://h/nostream",
    ] {
        let (err, _) = fails(url, PlayOptions::default(), Duration::from_secs(5)).await;
        assert!(
            matches!(err.kind, PlayErrorKind::UnsupportedUrl(_)),
            "{url}: {}",
            err.kind
        );
    }
}
