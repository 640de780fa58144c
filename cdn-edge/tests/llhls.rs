//! LL-HLS through the edge against a counting fake origin that holds blocking playlist and
//! part requests until the test releases them: 1,000 viewers on the next part and the next
//! playlist version cost one origin request each, are answered together on release, and a
//! later wave is served from cache with a correct `Age`; viewers of a part the origin streams
//! chunk by chunk while it fills (chunked transfer, no length) share one origin request and
//! each get the chunks as they come; bad directives and a held 503 never reach or stay in the
//! cache.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::watch;

const VIEWERS: usize = 1000;
const PART_LEN: usize = 64 * 1024;
const PLAYLIST: &str = "/live/s/ll.m3u8?_HLS_msn=5&_HLS_part=2";
const PLAYLIST_REVERSED: &str = "/live/s/ll.m3u8?_HLS_part=2&_HLS_msn=5";
const PART: &str = "/live/s/ll-5.2.m4s";
/// A part the origin answers at once and streams as it fills.
const FILLING_PART: &str = "/live/filling/ll-7.3.m4s";
/// Its chunks, and the pause before each.
const FILLING_CHUNKS: usize = 10;
const CHUNK_PAUSE: Duration = Duration::from_millis(30);

/// The fake origin: counts every request by path and query, holds `/live/s/` requests until
/// `release` and sends a part's second half only after `finish`, answers `/live/slow/` after
/// 1.5 s, `/live/busy/` with a 503 after 300 ms the first time, and `/live/filling/` at once
/// with a body of [`FILLING_CHUNKS`] chunks [`CHUNK_PAUSE`] apart, noting when the last went.
struct Origin {
    counts: Mutex<HashMap<String, usize>>,
    release: watch::Sender<bool>,
    finish: watch::Sender<bool>,
    filled: Mutex<Option<Instant>>,
}

impl Origin {
    fn count(&self, target: &str) -> usize {
        self.counts.lock().get(target).copied().unwrap_or_default()
    }

    /// Requests for stream paths (health checks of `/` left out).
    fn stream_requests(&self) -> usize {
        let counts = self.counts.lock();
        counts
            .iter()
            .filter(|(t, _)| t.starts_with("/live/"))
            .map(|(_, n)| n)
            .sum()
    }
}

fn part_body() -> Vec<u8> {
    (0..PART_LEN).map(|i| (i % 251) as u8).collect()
}

/// Chunk `i` of [`FILLING_PART`].
fn filling_chunk(i: usize) -> Bytes {
    Bytes::from(vec![i as u8; 1000 + i])
}

fn playlist_body(target: &str) -> String {
    format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-VERSION:9\n# answer to {target}\n")
}

async fn handle(State(origin): State<Arc<Origin>>, uri: Uri) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let n = {
        let mut counts = origin.counts.lock();
        let n = counts.entry(target.clone()).or_default();
        *n += 1;
        *n
    };
    let path = uri.path();
    if path.starts_with("/live/busy/") {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if n == 1 {
            return (StatusCode::SERVICE_UNAVAILABLE, "held too long\n").into_response();
        }
        return playlist_body(&target).into_response();
    }
    if path.starts_with("/live/filling/") {
        let chunks = futures::stream::unfold(0, move |i| {
            let origin = origin.clone();
            async move {
                if i == FILLING_CHUNKS {
                    *origin.filled.lock() = Some(Instant::now());
                    return None;
                }
                tokio::time::sleep(CHUNK_PAUSE).await;
                Some((Ok::<_, Infallible>(filling_chunk(i)), i + 1))
            }
        });
        let kind = [(header::CONTENT_TYPE, "video/mp4")];
        return (kind, axum::body::Body::from_stream(chunks)).into_response();
    }
    if path.starts_with("/live/slow/") {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        return playlist_body(&target).into_response();
    }
    if !path.starts_with("/live/s/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let _ = origin.release.subscribe().wait_for(|r| *r).await;
    if path.ends_with(".m3u8") {
        let kind = [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")];
        return (kind, playlist_body(&target)).into_response();
    }
    let body = Bytes::from(part_body());
    let (first, second) = (body.slice(..PART_LEN / 2), body.slice(PART_LEN / 2..));
    let mut finish = origin.finish.subscribe();
    let rest = async move {
        let _ = finish.wait_for(|f| *f).await;
        Ok::<_, Infallible>(second)
    };
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(first) })
        .chain(futures::stream::once(rest));
    (
        [
            (header::CONTENT_TYPE, "video/mp4".to_string()),
            (header::CONTENT_LENGTH, PART_LEN.to_string()),
            (header::AGE, "2".to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

async fn start_origin() -> (Arc<Origin>, SocketAddr) {
    let origin = Arc::new(Origin {
        counts: Mutex::default(),
        release: watch::channel(false).0,
        finish: watch::channel(false).0,
        filled: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(origin.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (origin, addr)
}

async fn start_edge(origin: SocketAddr) -> cdn_edge::Running {
    start_edge_with(origin, |_| {}).await
}

async fn start_edge_with(
    origin: SocketAddr,
    tweak: impl FnOnce(&mut cdn_edge::Config),
) -> cdn_edge::Running {
    let mut config = cdn_edge::Config::ephemeral(vec![format!("http://{origin}")]);
    config.health_interval_ms = 60_000;
    config.listener.max_connections_per_ip = 4 * VIEWERS;
    tweak(&mut config);
    cdn_edge::Server::bind(config).await.expect("edge starts")
}

/// One viewer's answer, with when it asked, when the headers came and when its first and
/// last body bytes arrived.
struct Answer {
    status: u16,
    x_cache: String,
    age: Option<u64>,
    body: Vec<u8>,
    sent: Instant,
    headers: Instant,
    first_byte: Instant,
    done: Instant,
}

async fn fetch(client: reqwest::Client, url: String) -> Answer {
    let sent = Instant::now();
    let mut r = client.get(&url).send().await.expect("edge answers");
    let headers = Instant::now();
    let text = |name| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, x_cache) = (r.status().as_u16(), text("x-cache"));
    let age = text("age").parse().ok();
    let mut body = Vec::new();
    let mut first_byte = None;
    while let Some(c) = r.chunk().await.expect("body") {
        first_byte.get_or_insert_with(Instant::now);
        body.extend_from_slice(&c);
    }
    let done = Instant::now();
    Answer {
        status,
        x_cache,
        age,
        body,
        sent,
        headers,
        first_byte: first_byte.unwrap_or(done),
        done,
    }
}

/// Starts `n` viewers of each target, cycling through `targets`.
fn viewers(
    client: &reqwest::Client,
    edge: SocketAddr,
    targets: &[&str],
    n: usize,
) -> tokio::task::JoinSet<Answer> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let url = format!("http://{edge}{}", targets[i % targets.len()]);
        set.spawn(fetch(client.clone(), url));
    }
    set
}

async fn all(mut set: tokio::task::JoinSet<Answer>) -> Vec<Answer> {
    let mut out = Vec::new();
    while let Some(a) = set.join_next().await {
        out.push(a.expect("viewer task"));
    }
    out
}

async fn edge_metric(edge: SocketAddr, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{edge}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("livepulse_edge_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from metrics:\n{text}"))
}

/// The median and the largest of some durations.
fn spread(durations: impl Iterator<Item = Duration>) -> (Duration, Duration) {
    let mut all: Vec<_> = durations.collect();
    all.sort();
    let median = all.get(all.len() / 2).copied().unwrap_or_default();
    (median, all.last().copied().unwrap_or_default())
}

fn by_x_cache(answers: &[Answer]) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    for a in answers {
        *out.entry(a.x_cache.as_str()).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_playlist_and_part_cost_one_origin_request_each_and_are_then_cached() {
    let (origin, origin_addr) = start_origin().await;
    let edge = start_edge(origin_addr).await;
    let addr = edge.http_addr();
    let client = reqwest::Client::new();

    let playlists = viewers(&client, addr, &[PLAYLIST, PLAYLIST_REVERSED], VIEWERS);
    let parts = viewers(&client, addr, &[PART], VIEWERS);
    let deadline = Instant::now() + Duration::from_secs(30);
    while edge_metric(addr, "requests_total").await < 2 * VIEWERS as u64 {
        assert!(Instant::now() < deadline, "viewers did not all arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        edge_metric(addr, "llhls_held_upstream").await,
        2,
        "the playlist and the part"
    );
    assert_eq!(origin.count(PLAYLIST), 1, "one held playlist request");
    assert_eq!(origin.count(PART), 1, "one held part request");
    assert_eq!(origin.stream_requests(), 2);

    let released = Instant::now();
    origin.release.send_replace(true);
    let playlists = all(playlists).await;
    let expected = playlist_body(PLAYLIST);
    let (median_playlist, slowest_playlist) =
        spread(playlists.iter().map(|a| a.done.duration_since(released)));
    assert!(playlists
        .iter()
        .all(|a| a.status == 200 && a.body == expected.as_bytes()));
    let roles = by_x_cache(&playlists);
    assert_eq!(
        (roles.get("MISS"), roles.get("COALESCED")),
        (Some(&1), Some(&(VIEWERS - 1))),
        "{roles:?}"
    );

    // The part's first half reaches every waiter before the origin sends the rest.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let finished = Instant::now();
    origin.finish.send_replace(true);
    let parts = all(parts).await;
    let expected_part = part_body();
    assert!(parts
        .iter()
        .all(|a| a.status == 200 && a.body == expected_part));
    let (median_first_byte, slowest_first_byte) =
        spread(parts.iter().map(|a| a.first_byte.duration_since(released)));
    let (median_part, slowest_part) = spread(parts.iter().map(|a| a.done.duration_since(finished)));
    assert!(parts.iter().all(|a| a.first_byte < finished));
    eprintln!(
        "{VIEWERS} viewers each on a held playlist and a held part: origin requests {}, \
         playlists answered {median_playlist:?} (median) / {slowest_playlist:?} (last) after \
         release; parts' first bytes {median_first_byte:?} / {slowest_first_byte:?} after \
         release, whole parts {median_part:?} / {slowest_part:?} after the origin finished",
        origin.stream_requests()
    );
    assert!(slowest_playlist < Duration::from_secs(1));
    assert!(slowest_part < Duration::from_secs(1));
    assert_eq!(origin.stream_requests(), 2);
    assert_eq!(edge_metric(addr, "llhls_held_upstream").await, 0);
    assert_eq!(
        edge_metric(addr, "llhls_held_coalesced_total").await,
        2 * (VIEWERS as u64 - 1),
        "every playlist and part viewer but the two leaders"
    );

    // A second wave, a second later: all from cache, Age counted from the origin's answer
    // (plus the Age the origin sent with the part). The edge got each answer after the release
    // and before the first viewer did.
    let answered = |answers: &[Answer], at: fn(&Answer) -> Instant| {
        answers.iter().map(at).min().unwrap_or(released)
    };
    let playlist_answered = answered(&playlists, |a| a.done);
    let part_answered = answered(&parts, |a| a.first_byte);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let wave = all(viewers(
        &client,
        addr,
        &[PLAYLIST_REVERSED, PART, PLAYLIST],
        VIEWERS,
    ))
    .await;
    for a in &wave {
        assert_eq!((a.status, a.x_cache.as_str()), (200, "HIT"));
        let (answered, origin_age) = if a.body == expected.as_bytes() {
            (playlist_answered, 0)
        } else {
            assert_eq!(a.body, expected_part);
            (part_answered, 2)
        };
        let least = a.sent.duration_since(answered).as_secs() + origin_age;
        let most = a.headers.duration_since(released).as_secs() + origin_age;
        let age = a.age.expect("an Age header");
        assert!(
            (least..=most).contains(&age) && age > origin_age,
            "Age {age} outside {least}..={most}"
        );
    }
    assert_eq!(
        origin.stream_requests(),
        2,
        "the second wave never reaches the origin"
    );
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_of_a_part_streamed_while_it_fills_share_one_origin_request() {
    const WAITERS: usize = 40;
    let (origin, origin_addr) = start_origin().await;
    let edge = start_edge(origin_addr).await;
    let addr = edge.http_addr();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{FILLING_PART}");
    let started = Instant::now();
    // Half ask as the part starts, half once a few chunks have gone out.
    let waiters: Vec<_> = (0..WAITERS)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                if i % 2 == 1 {
                    tokio::time::sleep(3 * CHUNK_PAUSE + CHUNK_PAUSE / 2).await;
                }
                fetch(client, url).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for w in waiters {
        answers.push(w.await.expect("waiter task"));
    }
    let filled = origin
        .filled
        .lock()
        .expect("the origin sent the whole part");
    let expected: Vec<u8> = (0..FILLING_CHUNKS).flat_map(filling_chunk).collect();
    for a in &answers {
        assert_eq!((a.status, &a.body), (200, &expected));
        assert!(
            filled.duration_since(a.first_byte) >= 3 * CHUNK_PAUSE,
            "first bytes {:?} after the start, the part was complete after {:?}",
            a.first_byte.duration_since(started),
            filled.duration_since(started)
        );
        assert!(a.done >= filled);
    }
    let roles = by_x_cache(&answers);
    assert_eq!(
        (roles.get("MISS"), roles.get("COALESCED")),
        (Some(&1), Some(&(WAITERS - 1))),
        "{roles:?}"
    );
    assert_eq!(origin.count(FILLING_PART), 1, "one origin request");
    let (first_bytes, _) = spread(answers.iter().map(|a| a.first_byte.duration_since(started)));
    let (ends, _) = spread(answers.iter().map(|a| a.done.duration_since(started)));
    eprintln!(
        "{WAITERS} waiters on a part streamed over {:?}: first bytes after {first_bytes:?} \
         (median), whole part after {ends:?}",
        filled.duration_since(started)
    );

    let cached = client.get(&url).send().await.expect("edge answers");
    let text = |name| {
        cached
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(text("x-cache").as_deref(), Some("HIT"));
    assert_eq!(text("content-length"), Some(expected.len().to_string()));
    assert_eq!(cached.bytes().await.expect("body"), expected);
    assert_eq!(origin.count(FILLING_PART), 1);
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_directives_get_400_without_an_origin_request() {
    let (origin, origin_addr) = start_origin().await;
    origin.release.send_replace(true);
    let edge = start_edge(origin_addr).await;
    let addr = edge.http_addr();
    let bad = [
        "_HLS_msn=-1",
        "_HLS_msn=5&_HLS_part=abc",
        "_HLS_msn=999999999999999999999999",
        "_HLS_msn=5&_HLS_msn=6",
        "_HLS_part=1",
        "_HLS_msn=5&_HLS_skip=maybe",
    ];
    for query in bad {
        let r = reqwest::get(format!("http://{addr}/live/s/ll.m3u8?{query}"))
            .await
            .expect("edge answers");
        assert_eq!(r.status(), 400, "{query}");
    }
    assert_eq!(origin.stream_requests(), 0);
    assert_eq!(
        edge_metric(addr, "llhls_bad_directives_total").await,
        bad.len() as u64
    );
    // Parts ignore directives: the request reaches the origin without them.
    let r = reqwest::get(format!("http://{addr}{PART}?_HLS_msn=-1"))
        .await
        .expect("edge answers");
    assert_eq!(r.status(), 200);
    assert_eq!(origin.count(PART), 1);
    edge.shutdown().await;
}

/// A blocking playlist request or a part request the origin held too long: its 503 goes to
/// every waiter, once, and is not cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_503_reaches_every_waiter_and_is_not_cached() {
    let (origin, origin_addr) = start_origin().await;
    let edge = start_edge(origin_addr).await;
    let addr = edge.http_addr();
    let client = reqwest::Client::new();
    for target in ["/live/busy/ll.m3u8?_HLS_msn=9", "/live/busy/ll-9.1.m4s"] {
        let answers = all(viewers(&client, addr, &[target], 100)).await;
        assert!(answers.iter().all(|a| a.status == 503), "{target}");
        assert_eq!(
            origin.count(target),
            1,
            "{target}: no failover or retry on a held 503"
        );

        let again = fetch(client.clone(), format!("http://{addr}{target}")).await;
        assert_eq!((again.status, again.x_cache.as_str()), (200, "MISS"));
        assert_eq!(again.body, playlist_body(target).as_bytes());
        assert_eq!(origin.count(target), 2, "the 503 was not served from cache");
    }
    let summary: serde_json::Value = reqwest::get(format!("http://{addr}/api/v1/cache"))
        .await
        .expect("summary")
        .json()
        .await
        .expect("json");
    assert_eq!(summary["origins"][0]["healthy"], true, "{summary}");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_beyond_the_cap_get_503_without_an_origin_request() {
    let (origin, origin_addr) = start_origin().await;
    let edge = start_edge_with(origin_addr, |c| c.max_held_fetches = 2).await;
    let addr = edge.http_addr();
    let client = reqwest::Client::new();
    let targets: Vec<String> = (0..3)
        .map(|part| format!("/live/s/ll.m3u8?_HLS_msn=5&_HLS_part={part}"))
        .collect();
    let first: Vec<_> = targets[..2]
        .iter()
        .map(|t| tokio::spawn(fetch(client.clone(), format!("http://{addr}{t}"))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while origin.stream_requests() < 2 {
        assert!(
            Instant::now() < deadline,
            "held requests did not reach the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = fetch(client.clone(), format!("http://{addr}{}", targets[2])).await;
    assert_eq!(refused.status, 503);
    assert_eq!(origin.count(&targets[2]), 0);
    assert_eq!(edge_metric(addr, "llhls_held_refused_total").await, 1);
    origin.release.send_replace(true);
    for task in first {
        assert_eq!(task.await.expect("viewer task").status, 200);
    }
    let later = fetch(client, format!("http://{addr}{}", targets[2])).await;
    assert_eq!(later.status, 200, "a freed slot is used again");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_request_waits_the_held_timeout_once() {
    let (origin, origin_addr) = start_origin().await;
    let edge = start_edge_with(origin_addr, |c| c.held_timeout_ms = 1000).await;
    let addr = edge.http_addr();
    let target = "/live/slow/ll.m3u8?_HLS_msn=3";
    let started = Instant::now();
    let cut = all(viewers(&reqwest::Client::new(), addr, &[target], 50)).await;
    let waited = started.elapsed();
    assert!(cut.iter().all(|a| a.status == 502));
    assert!(
        (Duration::from_millis(1000)..Duration::from_millis(1500)).contains(&waited),
        "cut after {waited:?}"
    );
    assert_eq!(origin.count(target), 1, "no second hold after a timeout");
    edge.shutdown().await;
}
