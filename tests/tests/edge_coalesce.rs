//! cdn-edge request coalescing against a scripted origin: a slow fetch, a failing fetch and
//! an uncacheable answer each cost one origin request however many clients wait.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use livepulse_tests::burst;

/// Requests the scripted origin received, by path.
#[derive(Default)]
struct Counts {
    slow: AtomicUsize,
    flaky: AtomicUsize,
    private: AtomicUsize,
}

const BODY_LEN: usize = 100_000;

fn body(seed: u8) -> Vec<u8> {
    (0..BODY_LEN)
        .map(|i| (i as u8).wrapping_mul(seed))
        .collect()
}

/// An origin whose `/slow.ts` takes 1.5 s, whose `/flaky.ts` fails its first request with
/// a 503 after 300 ms, and whose `/private.ts` is `no-store` and takes 1.5 s.
async fn scripted_origin(counts: Arc<Counts>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (slow, flaky, private) = (counts.clone(), counts.clone(), counts);
    let app = axum::Router::new()
        .route(
            "/slow.ts",
            axum::routing::get(move || async move {
                slow.slow.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                body(3).into_response()
            }),
        )
        .route(
            "/flaky.ts",
            axum::routing::get(move || async move {
                let n = flaky.flaky.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                if n == 0 {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    body(5).into_response()
                }
            }),
        )
        .route(
            "/private.ts",
            axum::routing::get(move || async move {
                private.private.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                ([(header::CACHE_CONTROL, "no-store")], body(7)).into_response()
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

fn count(results: &[(u16, String, bytes::Bytes)], x_cache: &str) -> usize {
    results.iter().filter(|r| r.1 == x_cache).count()
}

async fn start(origin: SocketAddr) -> cdn_edge::Running {
    let mut config = cdn_edge::Config::ephemeral(vec![format!("http://{origin}")]);
    config.health_interval_ms = 60_000;
    cdn_edge::Server::bind(config).await.expect("edge starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fetch_is_shared_by_every_waiter() {
    let counts = Arc::new(Counts::default());
    let (origin, origin_task) = scripted_origin(counts.clone()).await;
    let edge = start(origin).await;
    let results = burst(&format!("http://{}/slow.ts", edge.http_addr()), 500).await;
    let expected = body(3);
    assert!(results.iter().all(|r| r.0 == 200 && r.2 == expected));
    let origin_requests = counts.slow.load(Ordering::SeqCst);
    eprintln!(
        "500 requests during a 1.5 s origin fetch: origin requests {origin_requests}, MISS {}, COALESCED {}, HIT {}",
        count(&results, "MISS"),
        count(&results, "COALESCED"),
        count(&results, "HIT")
    );
    assert_eq!(origin_requests, 1);
    assert_eq!(count(&results, "MISS"), 1);
    assert!(
        count(&results, "COALESCED") > 400,
        "most arrive during the fetch"
    );
    edge.shutdown().await;
    origin_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_is_retried_by_one_waiter_not_all() {
    let counts = Arc::new(Counts::default());
    let (origin, origin_task) = scripted_origin(counts.clone()).await;
    let edge = start(origin).await;
    let results = burst(&format!("http://{}/flaky.ts", edge.http_addr()), 300).await;
    let expected = body(5);
    let ok = results
        .iter()
        .filter(|r| r.0 == 200 && r.2 == expected)
        .count();
    let origin_requests = counts.flaky.load(Ordering::SeqCst);
    eprintln!(
        "300 requests, first origin answer 503: origin requests {origin_requests}, served {ok}"
    );
    assert_eq!(origin_requests, 2, "one failed fetch, one retry");
    assert_eq!(ok, 300);
    edge.shutdown().await;
    origin_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncacheable_answer_is_shared_by_its_waiters_but_not_stored() {
    let counts = Arc::new(Counts::default());
    let (origin, origin_task) = scripted_origin(counts.clone()).await;
    let edge = start(origin).await;
    let url = format!("http://{}/private.ts", edge.http_addr());
    let results = burst(&url, 300).await;
    let expected = body(7);
    assert!(results.iter().all(|r| r.0 == 200 && r.2 == expected));
    assert_eq!(
        count(&results, "HIT"),
        0,
        "no-store is never served from cache"
    );
    let during = counts.private.load(Ordering::SeqCst);
    let again = burst(&url, 1).await;
    assert_eq!(again[0].1, "MISS");
    let after = counts.private.load(Ordering::SeqCst);
    eprintln!(
        "300 concurrent no-store requests: origin requests {during}; one more later: {after}"
    );
    // Requests arriving after the shared answer was handed out start a new fetch.
    assert!(during <= 3, "{during} origin requests for 300 waiters");
    assert_eq!(after, during + 1);
    edge.shutdown().await;
    origin_task.abort();
}

/// An origin whose `/trickle.ts` sends half of a segment, pauses for `pause`, then sends
/// the rest; counts the requests for it. Every other path is a 404 (health checks).
async fn trickling_origin(
    body: Vec<u8>,
    pause: Duration,
    requests: Arc<AtomicUsize>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = Arc::new(body);
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (body, requests) = (body.clone(), requests.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                if !request.starts_with(b"GET /trickle.ts ") {
                    let _ = tcp.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                    return;
                }
                requests.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let half = body.len() / 2;
                let _ = tcp.write_all(head.as_bytes()).await;
                let _ = tcp.write_all(&body[..half]).await;
                tokio::time::sleep(pause).await;
                let _ = tcp.write_all(&body[half..]).await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_receive_bytes_as_they_arrive_from_the_origin() {
    let requests = Arc::new(AtomicUsize::new(0));
    let expected = body(11);
    let (origin, origin_task) = trickling_origin(
        expected.clone(),
        Duration::from_millis(1500),
        requests.clone(),
    )
    .await;
    let edge = start(origin).await;
    let url = format!("http://{}/trickle.ts", edge.http_addr());
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut r = client.get(&url).send().await.expect("edge answers");
            assert_eq!(r.status(), 200);
            assert_eq!(r.content_length(), Some(BODY_LEN as u64));
            let mut got = Vec::new();
            let mut first_byte = None;
            while let Some(c) = r.chunk().await.expect("body") {
                first_byte.get_or_insert_with(|| started.elapsed());
                got.extend_from_slice(&c);
            }
            (first_byte.expect("some bytes"), started.elapsed(), got)
        });
    }
    let mut slowest_first_byte = Duration::ZERO;
    while let Some(r) = tasks.join_next().await {
        let (first_byte, done, got) = r.expect("viewer task");
        assert_eq!(got, expected);
        assert!(done >= Duration::from_millis(1400), "done after {done:?}");
        slowest_first_byte = slowest_first_byte.max(first_byte);
    }
    let origin_requests = requests.load(Ordering::SeqCst);
    eprintln!(
        "50 waiters on a trickling origin: origin requests {origin_requests}, slowest first byte {slowest_first_byte:?}"
    );
    assert_eq!(origin_requests, 1);
    assert!(
        slowest_first_byte < Duration::from_millis(1200),
        "first bytes reach waiters before the origin finishes"
    );
    edge.shutdown().await;
    origin_task.abort();
}
