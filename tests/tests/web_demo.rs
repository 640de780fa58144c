//! The web page in a real browser: headless Chromium, driven over WebDriver by Debian's
//! chromedriver, loads the viewer and host pages from the stack started in-process as
//! `livepulse demo` starts it (origin, edge, business server, the built-in sample published),
//! and checks what a viewer and a host see: video through the edge on HLS and HTTP-FLV, bullet
//! comments, likes, gifts, a flash sale bought from five pages at once, live charts, chat
//! shown as text, and recovery from a business server restart and a stream restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use livepulse_tests::browser::Browser;
use livepulse_tests::{require, wait_for};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The in-process stack of `livepulse demo`, on ephemeral ports.
struct Stack {
    origin: media_server::Running,
    edge: cdn_edge::Running,
    business: Option<business_server::Running>,
    business_addr: SocketAddr,
    web: business_server::config::WebPage,
    push: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
}

impl Stack {
    async fn start() -> Stack {
        let origin = livepulse_tests::start_origin(|_| {}).await;
        let edge = livepulse_tests::start_edge(&origin, |_| {}).await;
        let (o, e) = (origin.http_addr(), edge.http_addr());
        let web = business_server::config::WebPage {
            hls: format!("http://{e}/live/demo.m3u8"),
            llhls: format!("http://{e}/live/demo/ll.m3u8"),
            flv: format!("http://{e}/live/demo.flv"),
            origin: format!("http://{o}"),
            edge: format!("http://{e}"),
            ..business_server::config::WebPage::default()
        };
        let business = business_server::Server::bind(Self::business_config(
            "127.0.0.1:0".parse().expect("addr"),
            &web,
        ))
        .await
        .expect("business server starts");
        let mut stack = Stack {
            business_addr: business.http_addr(),
            business: Some(business),
            origin,
            edge,
            web,
            push: None,
        };
        stack.publish().await;
        stack
    }

    fn business_config(
        listen: SocketAddr,
        web: &business_server::config::WebPage,
    ) -> business_server::Config {
        business_server::Config {
            listen,
            ..livepulse_tests::demo_business_config(web.clone())
        }
    }

    /// Publishes the sample and waits until the edge serves its HLS playlist.
    async fn publish(&mut self) {
        let url = format!("rtmp://{}/live/demo", self.origin.rtmp_addr());
        self.push = Some(livepulse_tests::push_sample(&url));
        assert!(
            livepulse_tests::wait_publishing(&self.origin, "live/demo").await,
            "the sample is published"
        );
        let playlist = self.web.hls.clone();
        let ready = wait_for(Duration::from_secs(15), || async {
            let (status, body) = livepulse_tests::get(&playlist).await;
            (status == 200 && body.windows(4).any(|w| w == b".ts\n")).then_some(())
        })
        .await;
        assert!(ready.is_some(), "the edge serves the HLS playlist");
    }

    async fn stop_publishing(&mut self) {
        if let Some((stop, task)) = self.push.take() {
            stop.cancel();
            let _ = task.await;
        }
    }

    /// Stops the business server and starts a new one on the same address.
    async fn restart_business(&mut self) {
        if let Some(b) = self.business.take() {
            b.shutdown().await;
        }
        let config = Self::business_config(self.business_addr, &self.web);
        let started = wait_for(Duration::from_secs(10), || {
            let config = config.clone();
            async move { business_server::Server::bind(config).await.ok() }
        })
        .await;
        self.business = Some(started.expect("business server starts again on its address"));
    }

    fn page(&self, path: &str) -> String {
        format!("http://{}{path}", self.business_addr)
    }

    async fn shutdown(mut self) {
        self.stop_publishing().await;
        if let Some(b) = self.business.take() {
            b.shutdown().await;
        }
        self.edge.shutdown().await;
        self.origin.shutdown().await;
    }
}

/// Records, in the page, when bullets, purchase results, stock changes and connection states
/// appear, with wall-clock times, and counts alerts: what the checks read afterwards.
const WATCH: &str = r#"
window.seen = { bullets: [], results: [], stock0: null, conn: [], alerts: 0, loadId: Math.random() };
window.alert = () => { window.seen.alerts += 1; };
new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes)
  if (n.classList && n.classList.contains('bullet')) seen.bullets.push({ text: n.textContent, at: Date.now() }); })
  .observe(document.getElementById('danmaku'), { childList: true });
const r = document.getElementById('sale-result');
new MutationObserver(() => { const o = r.dataset.outcome;
  if (o && o !== 'retrying') seen.results.push({ outcome: o, at: Date.now() }); })
  .observe(r, { attributes: true, attributeFilter: ['data-outcome'] });
const card = document.getElementById('sale-card');
new MutationObserver(() => { if (card.dataset.remaining === '0' && !seen.stock0) seen.stock0 = Date.now(); })
  .observe(card, { attributes: true, attributeFilter: ['data-remaining'] });
const c = document.getElementById('conn');
new MutationObserver(() => seen.conn.push(c.dataset.state)).observe(c, { attributes: true });
return true;
"#;

const CONNECTED: &str = "return document.getElementById('conn').dataset.state === 'open'";

/// Playback position and fatal errors of the page's player.
const PLAYBACK: &str = "const v = document.getElementById('video'); \
    return { t: v.currentTime, errors: livepulse.player.errors.map((e) => e.why), \
             media_error: v.error ? v.error.message || String(v.error.code) : null, \
             proto: livepulse.player.proto }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_and_host_pages_work_in_chromium() {
    if !require("chromium") || !require("chromedriver") {
        return;
    }
    let started = Instant::now();
    let mut stack = Stack::start().await;
    let browser = Browser::start(json!({})).await;
    let b = &browser;

    // Five viewers (one on HTTP-FLV) and the host.
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let mut viewers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let proto = if i == 1 { "flv" } else { "hls" };
        let w = b
            .open(&stack.page(&format!("/?user={name}&proto={proto}")))
            .await;
        b.js(&w, WATCH).await;
        viewers.push(w);
    }
    let host = b.open(&stack.page("/host")).await;
    for w in viewers.iter().chain([&host]) {
        b.until(w, CONNECTED, Duration::from_secs(10)).await;
    }
    let (hls, flv) = (&viewers[0], &viewers[1]);

    // The video plays on both protocols: note where each starts.
    let mut start_at = Vec::new();
    for w in [hls, flv] {
        let v = b
            .until(
                w,
                "const v = document.getElementById('video'); return v.currentTime > 0 && v.currentTime",
                Duration::from_secs(20),
            )
            .await;
        start_at.push(v.as_f64().unwrap_or(0.0));
    }
    eprintln!("video playing after {:?}", started.elapsed());

    // A chat typed on page A flies over page B within a second, and every page shows
    // markup in chat as text.
    for text in ["hello from alice", "<img src=x onerror=alert(1)>"] {
        b.client
            .switch_to_window(hls.clone())
            .await
            .expect("switch");
        let input = b
            .client
            .find(fantoccini::Locator::Id("chat-input"))
            .await
            .expect("chat input");
        input.send_keys(text).await.expect("typed");
        let sent = b
            .js(
                hls,
                "const t = Date.now(); document.getElementById('send').click(); return t",
            )
            .await
            .as_u64()
            .expect("send time");
        let quoted = serde_json::to_string(text).expect("json");
        let seen = b
            .until(
                flv,
                &format!(
                    "const s = seen.bullets.find((x) => x.text === {quoted}); return s && s.at"
                ),
                Duration::from_secs(3),
            )
            .await
            .as_u64()
            .expect("bullet time");
        let delay = seen.saturating_sub(sent);
        eprintln!("bullet {text:?} on page B after {delay} ms");
        assert!(delay <= 1000, "bullet took {delay} ms");
    }
    for w in viewers.iter() {
        let check = b
            .until(
                w,
                "const texts = [...document.querySelectorAll('#messages .text')].map((e) => e.textContent); \
                 return texts.includes('<img src=x onerror=alert(1)>') && \
                   { imgs: document.querySelectorAll('#messages img, #danmaku img').length, alerts: seen.alerts }",
                Duration::from_secs(3),
            )
            .await;
        assert_eq!(
            check,
            json!({"imgs": 0, "alerts": 0}),
            "chat shown as text, no script ran"
        );
    }
    b.client
        .switch_to_window(hls.clone())
        .await
        .expect("switch");
    assert!(b.client.get_alert_text().await.is_err(), "no alert is open");

    // Likes from two pages add up on both.
    for (w, taps) in [(hls, 3), (flv, 2)] {
        b.js(
            w,
            &format!("for (let i = 0; i < {taps}; i++) document.getElementById('like').click(); return true"),
        )
        .await;
    }
    for w in [hls, flv] {
        b.until(
            w,
            "return document.getElementById('likes').textContent === '5'",
            Duration::from_secs(5),
        )
        .await;
    }

    // A gift moves the leaderboard on every page: alice's rocket, then bob's castle.
    for (w, gift, leader) in [(hls, "rocket", "alice"), (flv, "castle", "bob")] {
        b.js(
            w,
            &format!("document.querySelector('[data-gift={gift}]').click(); return true"),
        )
        .await;
        for page in &viewers {
            b.until(
                page,
                &format!(
                    "const f = document.querySelector('#leaderboard .who'); return !!f && f.textContent === '{leader}'"
                ),
                Duration::from_secs(5),
            )
            .await;
        }
    }

    // The host starts a sale of 3 on its page; five viewers press Buy at the same instant.
    b.js(
        &host,
        "document.getElementById('sale-item').value = 'Limited sneakers'; \
         document.getElementById('sale-stock').value = '3'; \
         document.getElementById('sale-limit').value = '1'; \
         document.getElementById('sale-delay').value = '0'; \
         document.querySelector('#sale-form button').click(); return true",
    )
    .await;
    for w in &viewers {
        b.until(
            w,
            "const c = document.getElementById('sale-card'); \
             return !c.hidden && c.dataset.phase === 'open' && c.dataset.remaining === '3' && !document.getElementById('buy').disabled",
            Duration::from_secs(5),
        )
        .await;
    }
    let at = b.js(hls, "return Date.now() + 1500").await;
    for w in &viewers {
        b.js(
            w,
            &format!("setTimeout(() => document.getElementById('buy').click(), {at} - Date.now()); return true"),
        )
        .await;
    }
    let mut outcomes = Vec::new();
    let mut last_result = 0;
    for w in &viewers {
        let r = b
            .until(w, "return seen.results[0]", Duration::from_secs(10))
            .await;
        outcomes.push(r["outcome"].as_str().unwrap_or_default().to_string());
        last_result = last_result.max(r["at"].as_u64().unwrap_or(0));
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["sold_out", "sold_out", "success", "success", "success"],
        "exactly three bought"
    );
    for w in &viewers {
        let stock0 = b
            .until(w, "return seen.stock0", Duration::from_secs(3))
            .await
            .as_u64()
            .unwrap_or(u64::MAX);
        let late = stock0.saturating_sub(last_result);
        assert!(
            late <= 1000,
            "stock 0 shown {late} ms after the last purchase"
        );
        let shown = b
            .js(
                w,
                "return document.getElementById('sale-remaining').textContent",
            )
            .await;
        assert_eq!(shown, json!("0"));
    }

    // The host's charts move: every chart's lines differ between two samples 2 s apart,
    // and the audience and edge charts have real values.
    const LINES: &str = "return [...document.querySelectorAll('.chart')].map((c) => \
        [...c.querySelectorAll('.series')].map((p) => p.getAttribute('d')).join('|'))";
    let first = b.js(&host, LINES).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = b.js(&host, LINES).await;
    let (first, second) = (
        first.as_array().cloned().unwrap_or_default(),
        second.as_array().cloned().unwrap_or_default(),
    );
    assert!(first.len() >= 7, "{} charts", first.len());
    for (i, (a, z)) in first.iter().zip(&second).enumerate() {
        assert_ne!(a, z, "chart {i} did not change in 2 s");
    }
    let health = b
        .js(
            &host,
            "return { hit: document.getElementById('v-hit').textContent, \
                      viewers: document.getElementById('h-viewers').textContent, \
                      gop: document.getElementById('h-gop').textContent, \
                      res: document.getElementById('h-res').textContent }",
        )
        .await;
    eprintln!("host page: {health}");
    assert_ne!(health["gop"], json!("–"), "keyframe interval shown");
    assert_eq!(health["res"], json!("640×360"));

    // The video played on for at least 10 s, without a player error, on both protocols.
    for (w, t0) in [hls, flv].into_iter().zip(start_at) {
        let v = b
            .until(
                w,
                &format!(
                    "const v = document.getElementById('video'); return v.currentTime - {t0} >= 10"
                ),
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(v, json!(true));
        let p = b.js(w, PLAYBACK).await;
        assert_eq!(p["errors"], json!([]), "{p}");
        assert_eq!(p["media_error"], Value::Null, "{p}");
        let latency = b
            .until(
                w,
                "const l = document.getElementById('latency');                  return l.dataset.secs !== '' && { secs: Number(l.dataset.secs), what: l.title }",
                Duration::from_secs(5),
            )
            .await;
        eprintln!("{} latency: {latency}", p["proto"]);
        let secs = latency["secs"].as_f64().unwrap_or(-1.0);
        assert!((0.0..30.0).contains(&secs), "latency shown: {latency}");
    }
    eprintln!("checks done after {:?}", started.elapsed());

    // The business server restarts: every page reconnects and says so.
    stack.restart_business().await;
    for w in viewers.iter() {
        b.until(
            w,
            "return seen.conn.includes('reconnecting') && document.getElementById('conn').dataset.state === 'open'",
            Duration::from_secs(15),
        )
        .await;
        b.until(
            w,
            "return [...document.querySelectorAll('.toast')].some((t) => t.textContent.includes('Reconnected'))",
            Duration::from_secs(3),
        )
        .await;
    }

    // The stream stops until both players notice, then comes back: both play again
    // without a reload.
    let mut load_ids = Vec::new();
    for w in [hls, flv] {
        load_ids.push(b.js(w, "return seen.loadId").await);
    }
    stack.stop_publishing().await;
    for w in [hls, flv] {
        b.until(
            w,
            "return document.body.dataset.player !== 'playing'",
            Duration::from_secs(30),
        )
        .await;
    }
    stack.publish().await;
    for (w, load_id) in [hls, flv].into_iter().zip(load_ids) {
        let t = b
            .until(
                w,
                "const v = document.getElementById('video'); \
                 return document.body.dataset.player === 'playing' && { t: v.currentTime }",
                Duration::from_secs(45),
            )
            .await;
        let t = t["t"].as_f64().unwrap_or(0.0);
        b.until(
            w,
            &format!("return document.getElementById('video').currentTime - {t} >= 3"),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(b.js(w, "return seen.loadId").await, load_id, "no reload");
    }
    eprintln!("all checks done after {:?}", started.elapsed());

    browser.close().await;
    stack.shutdown().await;
}
