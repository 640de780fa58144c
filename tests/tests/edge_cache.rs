//! cdn-edge in front of our origin: request coalescing, playlist refresh, failover, HTTP semantics.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use livepulse_tests::{burst, get, push_sample, segment_uris, start_origin, wait_for};
use tokio_util::sync::CancellationToken;

/// An origin publishing the sample, with at least two segments in its playlist.
struct Live {
    origin: media_server::Running,
    stop: CancellationToken,
    pusher: tokio::task::JoinHandle<anyhow::Result<()>>,
    playlist: String,
}

impl Live {
    async fn start(stream: &str) -> Self {
        let origin = start_origin(|_| {}).await;
        let (stop, pusher) = push_sample(&format!("rtmp://{}/live/{stream}", origin.rtmp_addr()));
        let url = format!("http://{}/live/{stream}.m3u8", origin.http_addr());
        let playlist = wait_for(Duration::from_secs(15), || async {
            let (status, body) = get(&url).await;
            let text = String::from_utf8_lossy(&body).to_string();
            (status == 200 && segment_uris(&text, "").len() >= 2).then_some(text)
        })
        .await
        .expect("origin playlist with two segments");
        Self {
            origin,
            stop,
            pusher,
            playlist,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.origin.http_addr())
    }

    /// Path of the newest segment listed in the playlist fetched at start
    /// (the origin lists segments relative to the app folder).
    fn newest_segment(&self) -> String {
        segment_uris(&self.playlist, "/live/")
            .pop()
            .expect("a segment")
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.pusher.await;
        self.origin.shutdown().await;
    }
}

async fn start_edge(
    origins: Vec<String>,
    tweak: impl FnOnce(&mut cdn_edge::Config),
) -> cdn_edge::Running {
    let mut config = cdn_edge::Config::ephemeral(origins);
    tweak(&mut config);
    cdn_edge::Server::bind(config).await.expect("edge starts")
}

/// The value of a counter on the edge's `/metrics`.
async fn counter(edge: SocketAddr, name: &str) -> u64 {
    let (_, body) = get(&format!("http://{edge}/metrics")).await;
    let text = String::from_utf8_lossy(&body);
    let prefix = format!("livepulse_edge_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_misses_for_one_segment_make_one_origin_request() {
    let live = Live::start("coalesce").await;
    let edge = start_edge(vec![live.base()], |_| {}).await;
    let path = live.newest_segment();
    let (status, expected) = get(&format!("{}{path}", live.base())).await;
    assert_eq!(status, 200, "{path} on the origin");

    let url = format!("http://{}{path}", edge.http_addr());
    let started = Instant::now();
    let mut by_cache = std::collections::BTreeMap::<String, usize>::new();
    let mut answers = 0;
    for (status, x_cache, body) in burst(&url, 1000).await {
        assert_eq!(status, 200);
        assert_eq!(body, expected, "every viewer gets the origin's bytes");
        *by_cache.entry(x_cache).or_default() += 1;
        answers += 1;
    }
    let origin_requests = counter(edge.http_addr(), "back_origin_requests").await;
    eprintln!(
        "1000 concurrent requests for {path} ({} bytes) in {:?}: origin requests {origin_requests}, X-Cache {by_cache:?}",
        expected.len(),
        started.elapsed()
    );
    assert_eq!(answers, 1000);
    assert_eq!(origin_requests, 1);
    assert_eq!(by_cache.get("MISS"), Some(&1));
    assert_eq!(counter(edge.http_addr(), "requests").await, 1000);

    edge.shutdown().await;
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_polled_by_many_viewers_is_refreshed_once_per_freshness_period() {
    let live = Live::start("poll").await;
    let edge = start_edge(vec![live.base()], |c| c.playlist_fresh_ms = Some(1000)).await;
    let url = format!("http://{}/live/poll.m3u8", edge.http_addr());
    let client = reqwest::Client::new();
    let period = Duration::from_secs(20);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut polls = 0;
            while started.elapsed() < period {
                let r = client.get(&url).send().await.expect("edge answers");
                assert_eq!(r.status(), 200);
                let text = r.text().await.expect("body");
                assert!(text.starts_with("#EXTM3U"), "{text}");
                polls += 1;
                // Each viewer polls twice a second, as a player refreshing a live playlist.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            polls
        });
    }
    let mut polls = 0;
    while let Some(n) = tasks.join_next().await {
        polls += n.expect("viewer task");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let origin_requests = counter(edge.http_addr(), "back_origin_requests").await;
    eprintln!(
        "{polls} playlist polls by 1,000 viewers over {elapsed:.1} s: origin requests {origin_requests}"
    );
    assert!(polls > 10_000, "{polls} polls");
    assert!(
        origin_requests >= elapsed.floor() as u64,
        "{origin_requests}"
    );
    assert!(
        origin_requests <= elapsed.ceil() as u64 + 1,
        "{origin_requests}"
    );

    edge.shutdown().await;
    live.stop().await;
}

/// Status code of a GET sent verbatim, so the client cannot normalize the path.
async fn raw_status(addr: SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// A server that answers 503 to everything.
async fn failing_origin() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app =
        axum::Router::new().fallback(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// A loopback address nothing listens on.
async fn dead_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_past_a_dead_origin_and_a_5xx_origin() {
    let live = Live::start("failover").await;
    let dead = dead_addr().await;
    let (failing, failing_task) = failing_origin().await;
    let edge = start_edge(
        vec![
            format!("http://{dead}"),
            format!("http://{failing}"),
            live.base(),
        ],
        |c| c.health_interval_ms = 60_000,
    )
    .await;
    let (status, body) = get(&format!("http://{}/live/failover.m3u8", edge.http_addr())).await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"#EXTM3U"));
    let path = live.newest_segment();
    let (status, _) = get(&format!("http://{}{path}", edge.http_addr())).await;
    assert_eq!(status, 200);
    let origin_requests = counter(edge.http_addr(), "back_origin_requests").await;
    eprintln!("two objects through dead + 503 + live origins: origin requests {origin_requests}");
    // Each bad origin is tried at most once: after that the health check or the failed
    // attempt has marked it down and the live origin is asked first.
    assert!((2..=4).contains(&origin_requests), "{origin_requests}");
    let (_, summary) = get(&format!("http://{}/api/v1/cache", edge.http_addr())).await;
    let summary: serde_json::Value = serde_json::from_slice(&summary).expect("json");
    let health: Vec<_> = summary["origins"]
        .as_array()
        .expect("origins")
        .iter()
        .map(|o| o["healthy"].as_bool())
        .collect();
    assert_eq!(health, [Some(false), Some(false), Some(true)], "{summary}");

    edge.shutdown().await;
    failing_task.abort();
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_range_negative_answers_and_bad_paths() {
    let live = Live::start("http").await;
    let edge = start_edge(vec![live.base()], |_| {}).await;
    let base = format!("http://{}", edge.http_addr());
    let path = live.newest_segment();
    let client = reqwest::Client::new();

    let full = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("get");
    assert_eq!(full.headers()["x-cache"], "MISS");
    assert!(full.headers().contains_key("age"));
    assert!(full.headers()["cache-control"]
        .to_str()
        .unwrap_or_default()
        .contains("immutable"));
    let body = full.bytes().await.expect("body");

    let head = client
        .head(format!("{base}{path}"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["x-cache"], "HIT");
    assert_eq!(
        head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert!(head.bytes().await.expect("empty").is_empty());

    let part = client
        .get(format!("{base}{path}"))
        .header("range", "bytes=188-375")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 188-375/{}", body.len()).as_str()
    );
    assert_eq!(part.bytes().await.expect("part"), body.slice(188..376));

    let missing = format!("{base}/live/http/999999.ts");
    let first = client.get(&missing).send().await.expect("404");
    assert_eq!(first.status(), 404);
    let second = client.get(&missing).send().await.expect("404");
    assert_eq!(second.status(), 404);
    assert_eq!(
        second.headers()["x-cache"],
        "HIT",
        "a 404 is cached briefly"
    );
    // Outlive the cached 404's freshness: the time passing is what is tested.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let third = client.get(&missing).send().await.expect("404");
    assert_eq!(
        third.headers()["x-cache"],
        "MISS",
        "and not longer than 500 ms"
    );

    assert_eq!(raw_status(edge.http_addr(), "/live/../x.ts").await, 400);
    assert_eq!(raw_status(edge.http_addr(), "/live/%2e%2E/x.ts").await, 400);
    let (status, _) = get(&format!("{base}/live/{}.ts", "a".repeat(3000))).await;
    assert_eq!(status, 414);

    let (status, summary) = get(&format!("{base}/api/v1/cache")).await;
    assert_eq!(status, 200);
    let summary: serde_json::Value = serde_json::from_slice(&summary).expect("json");
    assert!(summary["cache"]["objects"].as_u64() >= Some(1), "{summary}");

    edge.shutdown().await;
    live.stop().await;
}
