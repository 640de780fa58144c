//! Low-latency HLS from the origin: a client following the stream with blocking requests and
//! the spec checker over every playlist revision and delta update, the preload-hinted part
//! streamed chunk by chunk as it fills and ending at its completion, 400 for bad directives,
//! 503 after three target durations, the per-address cap on held requests, and ffprobe /
//! ffmpeg reading the LL playlist.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livepulse_tests::{
    codecs, ffmpeg_decode_errors, ffmpeg_publish_with_b_frames, ffprobe_streams, get, metric,
    metrics_page, push_sample, require, start_origin, wait_for,
};
use media_core::hls::ll::check::{first_video_sample_is_idr, Checker};
use media_core::hls::ll::parse::Playlist;
use media_core::hls::ll::{PartId, UriTemplate};
use media_server::llhls::PART_COMPLETED_HEADER;
use net_guard::unix_ms;

/// How long any one request may take before the test calls it a hang.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

fn uris() -> UriTemplate {
    media_server::config::LlHlsSettings::default()
        .packager_config()
        .expect("default settings are valid")
        .uris
}

/// The part a `ll-{msn}.{part}.m4s` URI names.
fn part_id(uri: &str) -> PartId {
    let (msn, part) = uri
        .strip_prefix("ll-")
        .and_then(|r| r.strip_suffix(".m4s"))
        .and_then(|r| r.split_once('.'))
        .unwrap_or_else(|| panic!("not a part URI: {uri}"));
    PartId {
        msn: msn.parse().expect("msn"),
        part: part.parse().expect("part"),
    }
}

/// A response's status, `x-ll-part-completed-ms`, body, and when its headers, its first body
/// bytes and its last arrived (unix ms).
struct Fetched {
    status: u16,
    completed_ms: Option<u64>,
    received_ms: u64,
    first_byte_ms: u64,
    done_ms: u64,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

async fn fetch(client: &reqwest::Client, url: &str) -> Fetched {
    let mut r = tokio::time::timeout(REQUEST_DEADLINE, client.get(url).send())
        .await
        .unwrap_or_else(|_| panic!("{url} hung"))
        .expect("request sent");
    let received_ms = unix_ms();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let completed_ms = headers
        .get(PART_COMPLETED_HEADER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let mut body = Vec::new();
    let mut first_byte_ms = None;
    while let Some(chunk) = tokio::time::timeout(REQUEST_DEADLINE, r.chunk())
        .await
        .unwrap_or_else(|_| panic!("{url}: body hung"))
        .expect("body")
    {
        first_byte_ms.get_or_insert_with(unix_ms);
        body.extend_from_slice(&chunk);
    }
    let done_ms = unix_ms();
    Fetched {
        status,
        completed_ms,
        received_ms,
        first_byte_ms: first_byte_ms.unwrap_or(done_ms),
        done_ms,
        headers,
        body: Bytes::from(body),
    }
}

/// The top-level boxes of a part, by type: `moof` + `mdat` pairs.
fn box_types(mut data: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        assert!(size >= 8 && size <= data.len(), "box size {size}");
        found.push(String::from_utf8_lossy(&data[4..8]).into_owned());
        data = &data[size..];
    }
    assert!(data.is_empty(), "trailing bytes");
    found
}

fn text(body: &Bytes) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// Every part the playlist lists, by URI, with its `INDEPENDENT` flag and its segment's map.
fn listed_parts(pl: &Playlist) -> HashMap<String, (bool, Option<String>)> {
    pl.segments
        .iter()
        .chain(pl.open.as_ref())
        .flat_map(|s| {
            s.parts
                .iter()
                .map(|p| (p.uri.clone(), (p.independent, s.map.clone())))
        })
        .collect()
}

/// Waits until the stream's plain LL playlist answers 200.
async fn first_playlist(url: &str) -> String {
    let body = wait_for(Duration::from_secs(20), || async {
        let (status, body) = get(url).await;
        (status == 200).then_some(body)
    })
    .await
    .expect("the LL playlist never appeared");
    text(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_then_follow_with_blocking_requests_bad_directives_and_ffprobe() {
    if !require("ffmpeg") || !require("ffprobe") {
        return;
    }
    let origin = start_origin(|c| c.llhls.window = 16).await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let http = format!("http://{}", origin.http_addr());
    let _ffmpeg = ffmpeg_publish_with_b_frames(&rtmp, "640x360", 30, 2);
    let base = format!("{http}/live/cam");
    let playlist_url = format!("{base}/ll.m3u8");
    let client = reqwest::Client::new();

    let mut checker = Checker::new(uris());
    let first = first_playlist(&playlist_url).await;
    let mut pl = checker.check(&first).expect("first revision");

    // ffprobe and ffmpeg read the LL playlist while the client below follows it, once it
    // lists a few complete segments (they read segments, not parts).
    let mut tools = None;

    let mut inits: HashMap<String, Bytes> = HashMap::new();
    let mut held_latencies_ms = Vec::new();
    let (mut deltas, mut skipped, mut independent) = (0, 0, 0);
    let mut previous_part: Option<(String, Bytes)> = None;
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if tools.is_none() && pl.segments.len() >= 3 {
            let url = playlist_url.clone();
            tools = Some(tokio::task::spawn_blocking(move || {
                (ffprobe_streams(&url), ffmpeg_decode_errors(&url, 5))
            }));
        }
        let hint = pl.preload_hint.clone().expect("a preload hint");
        let id = part_id(&hint);
        let blocking = format!("{playlist_url}?_HLS_msn={}&_HLS_part={}", id.msn, id.part);
        let delta_url = format!("{blocking}&_HLS_skip=YES");
        let part_url = format!("{base}/{hint}");
        let sent_ms = unix_ms();
        let (full, delta, part) = tokio::join!(
            fetch(&client, &blocking),
            fetch(&client, &delta_url),
            fetch(&client, &part_url)
        );
        assert_eq!(full.status, 200, "{blocking}: {}", text(&full.body));
        assert_eq!(delta.status, 200, "{delta_url}: {}", text(&delta.body));
        assert_eq!(part.status, 200, "{part_url}: {}", text(&part.body));
        let cache = |f: &Fetched| {
            f.headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            cache(&full).contains("max-age="),
            "blocking response cacheable"
        );
        assert!(cache(&part).contains("immutable"), "parts immutable");
        assert_eq!(
            part.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("video/mp4")
        );
        // A hinted part being filled streams, without Content-Length or a completion time,
        // and its body ends when the part is complete, as the complete part's header says.
        let whole = fetch(&client, &part_url).await;
        assert_eq!(whole.status, 200);
        assert_eq!(
            whole.body, part.body,
            "{hint}: the streamed bytes are the part"
        );
        assert!(whole.headers.get("content-length").is_some());
        let completed = whole
            .completed_ms
            .expect("complete parts say when they were completed");
        if part.completed_ms.is_none() {
            assert!(part.headers.get("content-length").is_none(), "{hint}");
            if completed >= sent_ms {
                held_latencies_ms.push(part.done_ms.saturating_sub(completed));
            }
        }

        let next = checker
            .check(&text(&full.body))
            .unwrap_or_else(|e| panic!("revision {}: {e}", checker.revisions()));
        let listed = listed_parts(&next);
        assert!(listed.contains_key(&hint), "answered before {hint} existed");
        if let Some((uri, data)) = previous_part.take() {
            if let Some((true, Some(map))) = listed.get(&uri) {
                if !inits.contains_key(map) {
                    let init = fetch(&client, &format!("{base}/{map}")).await;
                    assert_eq!(init.status, 200, "{map}");
                    inits.insert(map.clone(), init.body);
                }
                let idr = first_video_sample_is_idr(&inits[map], &data).expect("part parses");
                assert_eq!(idr, Some(true), "independent part {uri} starts with an IDR");
                independent += 1;
            }
        }
        previous_part = Some((hint.clone(), part.body.clone()));
        let delta_text = text(&delta.body);
        if checker::hint_of(&delta_text) == next.preload_hint {
            let d = checker
                .check_delta(&next, &delta_text)
                .unwrap_or_else(|e| panic!("delta: {e}"));
            deltas += 1;
            skipped += d.skipped;
        }
        pl = next;
    }

    // `_HLS_msn` alone waits for the first part of that segment.
    let msn = pl.open_msn() + 1;
    let started = Instant::now();
    let r = fetch(&client, &format!("{playlist_url}?_HLS_msn={msn}")).await;
    assert_eq!(r.status, 200);
    let after = checker.check(&text(&r.body)).expect("revision");
    assert!(
        listed_parts(&after).contains_key(&uris().part(PartId { msn, part: 0 })),
        "answered with part 0 of segment {msn} (after {:?})",
        started.elapsed()
    );

    // Bad directives are refused at once with a reason.
    let last_msn = after.open_msn();
    for query in [
        "_HLS_msn=-1".to_string(),
        format!("_HLS_msn={last_msn}&_HLS_part=abc"),
        "_HLS_msn=99999999999999999999999".to_string(),
        "_HLS_msn=18446744073709551616".to_string(),
        format!("_HLS_msn={last_msn}&_HLS_msn={last_msn}"),
        format!("_HLS_msn={last_msn}&_HLS_part=0&_HLS_part=0"),
        "_HLS_skip=YES&_HLS_skip=YES".to_string(),
        "_HLS_skip=maybe".to_string(),
        "_HLS_part=1".to_string(),
        format!("_HLS_msn={}", last_msn + 3),
        format!("_HLS_msn={last_msn}&_HLS_part=40"),
    ] {
        let started = Instant::now();
        let r = fetch(&client, &format!("{playlist_url}?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", text(&r.body));
        assert!(!r.body.is_empty(), "{query}: a reason");
        assert_eq!(
            r.headers["access-control-allow-origin"], "*",
            "a page can read why"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{query} was held"
        );
    }
    let page = metrics_page(&format!("{http}/metrics")).await;
    assert!(
        metric(
            &page,
            "livepulse_origin_llhls_held_outcomes_total",
            "bad_request"
        ) >= 11,
        "{page}"
    );
    assert!(metric(&page, "livepulse_origin_llhls_parts_total", "") > 40);
    assert!(
        metric(
            &page,
            "livepulse_origin_llhls_held_outcomes_total",
            "answered"
        ) > 40,
        "{page}"
    );
    let master = fetch(&client, &format!("{base}/ll-master.m3u8")).await;
    assert_eq!(master.status, 200);
    assert!(
        text(&master.body).contains("\nll.m3u8\n"),
        "{}",
        text(&master.body)
    );
    let api: serde_json::Value =
        serde_json::from_slice(&get(&format!("{http}/api/v1/streams")).await.1).expect("json");
    let stats = &api["streams"][0]["llhls"];
    assert_eq!(stats["part_target_ms"], 334, "{api}");
    assert!(stats["last_msn"].as_u64().is_some(), "{api}");

    let (probe, errors) = tools
        .expect("three segments within 20 s")
        .await
        .expect("tools task");
    let mut found: Vec<String> = codecs(&probe).into_iter().map(|c| c.0).collect();
    found.sort();
    assert_eq!(found, ["aac", "h264"], "{probe}");
    assert!(errors.is_empty(), "ffmpeg -f null: {errors:#?}");

    held_latencies_ms.sort_unstable();
    let within = held_latencies_ms.iter().filter(|&&ms| ms <= 50).count();
    eprintln!(
        "{} revisions, {deltas} delta updates skipping {skipped} segments, {independent} \
         independent parts checked, streamed parts' ends after completion (ms): \
         {held_latencies_ms:?}",
        checker.revisions()
    );
    assert!(checker.revisions() > 40, "followed for 20 s");
    assert!(
        deltas > 20 && skipped > 0,
        "{deltas} deltas skipped {skipped}"
    );
    assert!(independent > 5);
    assert!(
        held_latencies_ms.len() > 20,
        "most hinted parts were streamed"
    );
    assert_eq!(
        within,
        held_latencies_ms.len(),
        "streamed parts ended within 50 ms of completion: {held_latencies_ms:?}"
    );
    origin.shutdown().await;
}

/// The preload-hinted part, asked for as soon as a blocking reload names it, answers at once
/// and streams: its first chunk arrives long before its last (a part of 334 ms at 30 fps is
/// ten chunks written over about 300 ms), the body is several `moof` + `mdat` pairs, and it is
/// byte for byte the complete part served afterwards with `Content-Length`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preload_hinted_part_streams_its_chunks_as_they_are_written() {
    let origin = start_origin(|_| {}).await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let http = format!("http://{}", origin.http_addr());
    let base = format!("{http}/live/cam");
    let playlist_url = format!("{base}/ll.m3u8");
    let (stop, publisher) = push_sample(&rtmp);
    let client = reqwest::Client::new();
    let mut pl =
        media_core::hls::ll::parse::parse(&first_playlist(&playlist_url).await).expect("playlist");
    let mut spreads_ms = Vec::new();
    let mut headers_ms = Vec::new();
    while spreads_ms.len() < 12 {
        let hint = pl.preload_hint.clone().expect("a preload hint");
        let id = part_id(&hint);
        let part_url = format!("{base}/{hint}");
        let blocking = format!("{playlist_url}?_HLS_msn={}&_HLS_part={}", id.msn, id.part);
        let sent_ms = unix_ms();
        let (part, next) = tokio::join!(fetch(&client, &part_url), fetch(&client, &blocking));
        assert_eq!(part.status, 200, "{hint}: {}", text(&part.body));
        assert_eq!(next.status, 200);
        assert!(part.headers.get("content-length").is_none(), "chunked");
        assert_eq!(part.completed_ms, None);
        let boxes = box_types(&part.body);
        assert!(boxes.len() >= 4, "{hint}: {boxes:?}");
        assert!(
            boxes.chunks(2).all(|pair| pair == ["moof", "mdat"]),
            "{boxes:?}"
        );
        let whole = fetch(&client, &part_url).await;
        assert_eq!(whole.status, 200);
        assert_eq!(whole.body, part.body, "{hint}: streamed bytes are the part");
        assert_eq!(
            whole
                .headers
                .get("content-length")
                .and_then(|v| v.to_str().ok()),
            Some(whole.body.len().to_string().as_str())
        );
        let completed = whole.completed_ms.expect("complete parts carry the header");
        assert!(
            part.done_ms + 5 >= completed && part.done_ms <= completed + 50,
            "{hint} ended at {} ms, completed at {completed}",
            part.done_ms
        );
        headers_ms.push(part.received_ms - sent_ms);
        spreads_ms.push(part.done_ms - part.first_byte_ms);
        pl = media_core::hls::ll::parse::parse(&text(&next.body)).expect("playlist");
    }
    spreads_ms.sort_unstable();
    headers_ms.sort_unstable();
    let median = spreads_ms[spreads_ms.len() / 2];
    eprintln!(
        "hinted parts: headers after (ms) {headers_ms:?}; first body bytes to end of body \
         (ms) {spreads_ms:?}, median {median}"
    );
    assert!(
        median >= 150,
        "first chunk well before the end: {spreads_ms:?}"
    );
    assert!(headers_ms[headers_ms.len() / 2] < 100, "answered at once");
    let page = metrics_page(&format!("{http}/metrics")).await;
    assert!(metric(&page, "livepulse_origin_llhls_part_streams_total", "") >= 12);
    stop.cancel();
    publisher.await.expect("publisher task").expect("published");
    origin.shutdown().await;
}

/// Viewers of the preload-hinted part through the edge, some asking as it starts and some
/// after its first chunks, share one origin request: each gets its first bytes long before the
/// part is complete and its last when it is, all get the origin's complete part byte for byte,
/// and the edge then serves it from its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_of_the_hinted_part_through_the_edge_share_one_streaming_origin_request() {
    const VIEWERS: usize = 8;
    let origin = start_origin(|_| {}).await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let origin_base = format!("http://{}/live/cam", origin.http_addr());
    let edge = livepulse_tests::start_edge(&origin, |c| c.health_interval_ms = 60_000).await;
    let edge_http = format!("http://{}", edge.http_addr());
    let base = format!("{edge_http}/live/cam");
    let (stop, publisher) = push_sample(&rtmp);
    let client = reqwest::Client::new();
    let mut pl =
        media_core::hls::ll::parse::parse(&first_playlist(&format!("{base}/ll.m3u8")).await)
            .expect("playlist");
    let origin_requests = || async {
        let page = metrics_page(&format!("{edge_http}/metrics")).await;
        metric(&page, "livepulse_edge_back_origin_requests_total", "")
    };
    let mut rounds = Vec::new();
    for _ in 0..4 {
        // A blocking reload through the edge for the hinted part answers when it is complete,
        // with a hint that has just started.
        let id = part_id(&pl.preload_hint.clone().expect("a preload hint"));
        let next = fetch(
            &client,
            &format!("{base}/ll.m3u8?_HLS_msn={}&_HLS_part={}", id.msn, id.part),
        )
        .await;
        assert_eq!(next.status, 200);
        pl = media_core::hls::ll::parse::parse(&text(&next.body)).expect("playlist");
        let hint = pl.preload_hint.clone().expect("a preload hint");
        let requests_before = origin_requests().await;
        let url = format!("{base}/{hint}");
        let viewers: Vec<_> = (0..VIEWERS)
            .map(|i| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    if i >= VIEWERS / 2 {
                        tokio::time::sleep(Duration::from_millis(60)).await;
                    }
                    fetch(&client, &url).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for v in viewers {
            answers.push(v.await.expect("viewer task"));
        }
        assert_eq!(
            origin_requests().await - requests_before,
            1,
            "one origin request for {hint}"
        );
        let whole = fetch(&client, &format!("{origin_base}/{hint}")).await;
        let completed = whole.completed_ms.expect("complete at the origin");
        let x_cache = |f: &Fetched| {
            f.headers
                .get("x-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let mut misses = 0;
        for a in &answers {
            assert_eq!(a.status, 200);
            assert_eq!(a.body, whole.body, "{hint}: every viewer gets the part");
            assert!(
                a.first_byte_ms + 100 <= completed,
                "{hint}: first bytes at {}, complete at {completed}",
                a.first_byte_ms
            );
            assert!(a.done_ms + 5 >= completed, "{hint} ended before completion");
            misses += usize::from(x_cache(a) == "MISS");
        }
        assert_eq!(misses, 1, "the others coalesced");
        let cached = fetch(&client, &url).await;
        assert_eq!(
            (x_cache(&cached).as_str(), &cached.body),
            ("HIT", &whole.body)
        );
        rounds.push(
            answers
                .iter()
                .map(|a| {
                    (
                        a.first_byte_ms.saturating_sub(a.received_ms),
                        a.done_ms - a.first_byte_ms,
                        a.done_ms.saturating_sub(completed),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    eprintln!(
        "through the edge, per viewer (headers to first bytes, first bytes to end, end after \
         completion) in ms: {rounds:?}"
    );
    stop.cancel();
    publisher.await.expect("publisher task").expect("published");
    edge.shutdown().await;
    origin.shutdown().await;
}

/// The preload hint of a playlist's text, to tell whether two responses are one revision.
mod checker {
    pub fn hint_of(text: &str) -> Option<String> {
        media_core::hls::ll::parse::parse(text).ok()?.preload_hint
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_requests_time_out_with_503_and_are_capped_per_address() {
    let origin = start_origin(|c| {
        c.llhls.target_duration_secs = 1;
        c.llhls.max_held_per_ip = 3;
    })
    .await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let http = format!("http://{}", origin.http_addr());
    let base = format!("{http}/live/cam");
    let (stop, publisher) = push_sample(&rtmp);
    first_playlist(&format!("{base}/ll.m3u8")).await;
    stop.cancel();
    publisher.await.expect("publisher task").expect("published");
    let gone = wait_for(Duration::from_secs(10), || async {
        origin.hub().get("live/cam").filter(|s| !s.is_live())
    })
    .await;
    assert!(gone.is_some(), "the publisher left");

    // Part 0 of the segment after the open one: only a new publish could bring it.
    let (_, body) = get(&format!("{base}/ll.m3u8")).await;
    let pl = media_core::hls::ll::parse::parse(&text(&body)).expect("playlist");
    let msn = pl.open_msn() + 1;
    let client = reqwest::Client::new();
    let held = [
        format!("{base}/ll.m3u8?_HLS_msn={msn}&_HLS_part=0"),
        format!("{base}/ll.m3u8?_HLS_msn={msn}"),
        format!("{base}/ll-{msn}.0.m4s"),
    ];
    let started = Instant::now();
    let tasks: Vec<_> = held
        .iter()
        .map(|url| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { (fetch(&client, &url).await, started.elapsed(), url) })
        })
        .collect();
    let metrics = format!("{http}/metrics");
    let all_held = wait_for(Duration::from_secs(2), || async {
        let page = metrics_page(&metrics).await;
        (metric(&page, "livepulse_origin_llhls_held_requests", "") == 3).then_some(())
    })
    .await;
    assert!(all_held.is_some(), "three requests held");

    let refused = fetch(&client, &held[0]).await;
    assert_eq!(refused.status, 429, "the fourth from one address");
    assert_eq!(refused.headers["access-control-allow-origin"], "*");
    for task in tasks {
        let (r, elapsed, url) = task.await.expect("request task");
        assert_eq!(r.status, 503, "{url}: {}", text(&r.body));
        assert_eq!(r.headers["access-control-allow-origin"], "*", "{url}");
        assert!(
            elapsed >= Duration::from_millis(2900) && elapsed < Duration::from_secs(5),
            "{url} answered after {elapsed:?}, not three target durations"
        );
    }
    let page = metrics_page(&metrics).await;
    let outcome = |o: &str| metric(&page, "livepulse_origin_llhls_held_outcomes_total", o);
    assert_eq!(outcome("timed_out"), 3, "{page}");
    assert_eq!(outcome("refused"), 1, "{page}");
    assert_eq!(metric(&page, "livepulse_origin_llhls_held_requests", ""), 0);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_requests_and_parts_through_the_edge_pass_the_checker() {
    let origin = start_origin(|_| {}).await;
    let rtmp = format!("rtmp://{}/live/cam", origin.rtmp_addr());
    let edge = livepulse_tests::start_edge(&origin, |_| {}).await;
    let (stop, publisher) = push_sample(&rtmp);
    let base = format!("http://{}/live/cam", edge.http_addr());
    let playlist_url = format!("{base}/ll.m3u8");
    let client = reqwest::Client::new();
    let mut checker = Checker::new(uris());
    let mut pl = checker
        .check(&first_playlist(&playlist_url).await)
        .expect("first revision");
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let hint = pl.preload_hint.clone().expect("a preload hint");
        let id = part_id(&hint);
        let blocking = format!("{playlist_url}?_HLS_msn={}&_HLS_part={}", id.msn, id.part);
        let part_url = format!("{base}/{hint}");
        let (full, part) = tokio::join!(fetch(&client, &blocking), fetch(&client, &part_url));
        assert_eq!(full.status, 200, "{blocking}: {}", text(&full.body));
        assert_eq!(part.status, 200, "{hint}: {}", text(&part.body));
        assert!(!part.body.is_empty());
        pl = checker
            .check(&text(&full.body))
            .unwrap_or_else(|e| panic!("revision {}: {e}", checker.revisions()));
        assert!(listed_parts(&pl).contains_key(&hint));
    }
    assert!(checker.revisions() > 10, "followed through the edge");
    stop.cancel();
    publisher.await.expect("publisher task").expect("published");
    edge.shutdown().await;
    origin.shutdown().await;
}
