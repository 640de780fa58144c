//! LL-HLS in a real browser: headless Chromium plays the viewer page's LL-HLS choice (the
//! vendored hls.js with `lowLatencyMode: true`) of an `ffmpeg` publish (H.264 with B-frames
//! and AAC) for 30 s, from the origin and through the edge, beside the same page on classic
//! MPEG-TS HLS through the edge as the baseline. No fatal hls.js error, `currentTime`
//! advancing, and a median `hls.latency` of at most 2.0 s on both LL-HLS rows.

use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use livepulse_tests::browser::Browser;
use livepulse_tests::{ffmpeg_publish_with_b_frames, get, require, wait_for};
use serde_json::{json, Value};

/// How long each player is watched once all of them play.
const WATCH: Duration = Duration::from_secs(30);

/// Playback position, hls.js's latency estimate and the page's fatal player errors.
const SAMPLE: &str = "const p = livepulse.player; const v = document.getElementById('video'); \
    const h = p.engine && p.engine.hls; \
    return { t: v.currentTime, latency: h ? h.latency : null, \
             errors: p.errors.map((e) => e.why), proto: p.proto }";

/// One player under watch.
struct Row {
    name: &'static str,
    window: WindowHandle,
    first_t: f64,
    last_t: f64,
    latencies: Vec<f64>,
    errors: Vec<String>,
}

impl Row {
    fn median_latency(&self) -> Option<f64> {
        let mut l = self.latencies.clone();
        l.sort_by(f64::total_cmp);
        l.get(l.len() / 2).copied()
    }
}

/// A business server whose viewer page plays `llhls` for LL-HLS and `hls` for HLS.
async fn page_server(llhls: String, hls: String) -> business_server::Running {
    let web = business_server::config::WebPage {
        llhls,
        hls,
        ..business_server::config::WebPage::default()
    };
    business_server::Server::bind(livepulse_tests::demo_business_config(web))
        .await
        .expect("business server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_ll_hls_from_the_origin_and_the_edge_within_two_seconds() {
    if !require("chromium") || !require("chromedriver") || !require("ffmpeg") {
        return;
    }
    // Classic HLS as the demo serves it (2 s segments), for a fair baseline.
    let origin = livepulse_tests::start_origin(|c| c.hls.target_duration_secs = 2.0).await;
    let edge = livepulse_tests::start_edge(&origin, |_| {}).await;
    let (o, e) = (origin.http_addr(), edge.http_addr());
    let _ffmpeg = ffmpeg_publish_with_b_frames(
        &format!("rtmp://{}/live/b", origin.rtmp_addr()),
        "640x360",
        60,
        2,
    );
    let ready = wait_for(Duration::from_secs(20), || async {
        let (status, body) = get(&format!("http://{e}/live/b.m3u8")).await;
        let ts = status == 200 && body.windows(4).any(|w| w == b".ts\n");
        let (status, body) = get(&format!("http://{e}/live/b/ll.m3u8")).await;
        (ts && status == 200 && body.windows(4).any(|w| w == b".m4s")).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the edge serves both playlists");

    let via_edge = page_server(
        format!("http://{e}/live/b/ll.m3u8"),
        format!("http://{e}/live/b.m3u8"),
    )
    .await;
    let via_origin = page_server(
        format!("http://{o}/live/b/ll.m3u8"),
        format!("http://{o}/live/b.m3u8"),
    )
    .await;
    let browser = Browser::start(json!({})).await;
    let mut rows = Vec::new();
    for (name, server, proto) in [
        ("LL-HLS, origin", &via_origin, "llhls"),
        ("LL-HLS, edge", &via_edge, "llhls"),
        ("TS-HLS, edge", &via_edge, "hls"),
    ] {
        let url = format!("http://{}/?proto={proto}", server.http_addr());
        let window = browser.open(&url).await;
        rows.push(Row {
            name,
            window,
            first_t: 0.0,
            last_t: 0.0,
            latencies: Vec::new(),
            errors: Vec::new(),
        });
    }
    // All three play before the watch starts.
    for row in &rows {
        let playing = "return document.getElementById('video').currentTime > 0";
        browser
            .until(&row.window, playing, Duration::from_secs(30))
            .await;
    }

    let start = Instant::now();
    let mut first = true;
    while start.elapsed() < WATCH {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for row in &mut rows {
            let s: Value = browser.js(&row.window, SAMPLE).await;
            let t = s["t"].as_f64().unwrap_or(0.0);
            if first {
                row.first_t = t;
            }
            row.last_t = t;
            if let Some(l) = s["latency"].as_f64().filter(|l| l.is_finite() && *l > 0.0) {
                row.latencies.push(l);
            }
            row.errors = s["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect();
        }
        first = false;
    }

    let mut failures = Vec::new();
    for row in &rows {
        let median = row.median_latency();
        let advanced = row.last_t - row.first_t;
        eprintln!(
            "{}: hls.latency median {} s, min {:.2}, max {:.2}, currentTime +{advanced:.1} s in {} s, fatal errors {:?}",
            row.name,
            median.map_or("-".into(), |m| format!("{m:.2}")),
            row.latencies.iter().copied().fold(f64::INFINITY, f64::min),
            row.latencies.iter().copied().fold(0.0, f64::max),
            WATCH.as_secs(),
            row.errors,
        );
        if !row.errors.is_empty() {
            failures.push(format!(
                "{}: fatal player errors {:?}",
                row.name, row.errors
            ));
        }
        if advanced < WATCH.as_secs_f64() * 0.8 {
            failures.push(format!(
                "{}: currentTime advanced {advanced:.1} s in {} s",
                row.name,
                WATCH.as_secs()
            ));
        }
        if row.name.starts_with("LL") && median.is_none_or(|m| m > 2.0) {
            failures.push(format!("{}: median hls.latency {median:?} s", row.name));
        }
    }
    browser.close().await;
    via_edge.shutdown().await;
    via_origin.shutdown().await;
    edge.shutdown().await;
    origin.shutdown().await;
    assert!(failures.is_empty(), "{failures:#?}");
}
