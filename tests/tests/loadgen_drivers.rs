//! Every loadgen driver end to end against our own servers on loopback: publishers feed the
//! origin that the players read in the same scenario; chat members and buyers use the business
//! server.

use livepulse_tests::start_origin;
use loadgen::report::WorkloadReport;
use loadgen::{run, RunOptions, Scenario};

fn workload<'a>(r: &'a loadgen::Report, name: &str) -> &'a WorkloadReport {
    r.workloads
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("workload {name} in report"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_drivers_against_the_origin() {
    let origin = start_origin(|_| {}).await;
    let rtmp = origin.rtmp_addr();
    let http = origin.http_addr();
    let scenario = Scenario::from_toml(&format!(
        r#"
name = "media"
duration = "12s"
grace = "2s"

[[workload]]
name = "publish"
driver = {{ kind = "rtmp-publish", url = "rtmp://{rtmp}/live/lg{{n}}" }}
model = {{ kind = "closed", users = 2 }}
thresholds = ["connect.p99 < 2s", "errors == 0"]

[[workload]]
name = "hls"
start = "4s"
driver = {{ kind = "hls-play", url = "http://{http}/live/lg{{n%2}}.m3u8" }}
model = {{ kind = "closed", users = 2 }}

[[workload]]
name = "flv"
start = "1s"
driver = {{ kind = "flv-play", url = "http://{http}/live/lg{{n%2}}.flv" }}
model = {{ kind = "closed", users = 3, ramp = "1s" }}
thresholds = ["startup.p99 < 3s", "stall_ratio < 5%"]

[[workload]]
name = "rtmp"
start = "1s"
driver = {{ kind = "rtmp-play", url = "rtmp://{rtmp}/live/lg{{n%2}}" }}
model = {{ kind = "closed", users = 2 }}

[[workload]]
name = "api"
driver = {{ kind = "http", url = "http://{http}/api/v1/streams" }}
model = {{ kind = "open", rate = 20 }}
thresholds = ["p99 < 1s", "error_rate < 1%"]
"#
    ))
    .expect("valid scenario");
    let report = run(&scenario, &RunOptions::default()).await.expect("run");
    let text = loadgen::text::render(&report);
    println!("{text}");

    let publish = workload(&report, "publish");
    assert_eq!(publish.operations["connect"].count, 2, "{text}");
    assert!(publish.errors.is_empty(), "{text}");
    assert!(publish.bytes > 500_000, "{text}");

    for name in ["hls", "flv", "rtmp"] {
        let w = workload(&report, name);
        let media = w.media.as_ref().expect("media metrics");
        assert!(media.sessions >= 2, "{name}: {text}");
        assert_eq!(media.startup_failures, 0, "{name}: {text}");
        assert!(w.operations["startup"].count >= 2, "{name}: {text}");
        assert!(
            media.latency_samples > 20 && w.operations["latency"].count == media.latency_samples,
            "{name}: end-to-end latency from the publishers' SEI stamps: {text}"
        );
        assert!(w.bytes > 100_000, "{name}: {text}");
        assert!(!w.timeline.is_empty() && w.timeline.iter().any(|s| s.active > 0));
    }
    assert!(workload(&report, "flv").operations["latency"].p50_ms < 1000.0);
    for name in ["flv", "rtmp"] {
        // Viewers join mid-GOP: the cached frames are the join burst, the rest live latency.
        let w = workload(&report, name);
        let media = w.media.as_ref().expect("media metrics");
        assert!(
            media.joins_caught_up >= media.sessions && media.never_caught_up == 0,
            "{name}: every viewer caught up with the live edge: {text}"
        );
        assert_eq!(w.operations["catch_up"].count, media.joins_caught_up);
        assert!(media.join_burst_frames > 0, "{name}: {text}");
        let live = &w.operations["live_latency"];
        assert_eq!(live.count, media.live_latency_samples, "{name}: {text}");
        assert!(
            live.count > 20 && live.count < media.latency_samples,
            "{name}: {text}"
        );
        assert!(
            live.p99_ms < 500.0,
            "{name}: live latency on loopback: {text}"
        );
    }

    let api = workload(&report, "api");
    // 20/s for 12 s, evenly spread.
    assert!((235..=241).contains(&api.arrivals.started), "{text}");
    assert_eq!(
        api.outcomes.get("2xx"),
        Some(&api.operations["request"].count)
    );
    assert!(report.passed, "{text}");
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_flash_sale_against_the_business_server() {
    let server = livepulse_tests::start_business("load-secret", "load-admin").await;
    let addr = server.http_addr();
    let scenario = Scenario::from_toml(&format!(
        r#"
name = "business"
duration = "6s"

[[workload]]
name = "chat"
driver = {{ kind = "ws-chat", url = "ws://{addr}/ws?room={{room}}&token={{token}}", rooms = 2, senders = 6, send_rate = 2, token_secret = "load-secret" }}
model = {{ kind = "closed", users = 40, ramp = "500ms" }}
thresholds = ["deliver.p99 < 2s", "errors == 0"]

[[workload]]
name = "buyers"
driver = {{ kind = "flash-sale", url = "http://{addr}", sale = "lg-drop", token_secret = "load-secret", create_stock = 50, admin_key = "load-admin" }}
model = {{ kind = "pulse", count = 400, window = "500ms", at = "2s" }}
thresholds = ["outcome.success == 50"]

[[workload]]
name = "ws-buyers"
driver = {{ kind = "flash-sale", url = "http://{addr}", sale = "lg-drop", via = "ws", buyer_prefix = "late", token_secret = "load-secret" }}
model = {{ kind = "pulse", count = 20, window = "0ms", at = "4s" }}
"#
    ))
    .expect("valid scenario");
    let report = run(&scenario, &RunOptions::default()).await.expect("run");
    let text = loadgen::text::render(&report);
    println!("{text}");

    let chat = workload(&report, "chat");
    assert_eq!(chat.operations["connect"].count, 40, "{text}");
    let sent = chat.outcomes["sent"];
    // 6 senders at 2/s for about 6 s; every message reaches the 20 members of its room.
    assert!((60..=80).contains(&sent), "{text}");
    let delivered = chat.operations["deliver"].count;
    assert!(
        delivered >= sent * 20 * 9 / 10 && delivered <= sent * 20,
        "{delivered} deliveries for {sent} messages: {text}"
    );
    assert!(chat.errors.is_empty(), "{text}");

    let buyers = workload(&report, "buyers");
    assert_eq!(buyers.outcomes["success"], 50, "{text}");
    assert_eq!(buyers.outcomes["sold_out"], 350, "{text}");
    assert_eq!(buyers.pulses.len(), 1);
    let late = workload(&report, "ws-buyers");
    assert_eq!(late.outcomes.get("sold_out"), Some(&20), "{text}");
    assert_eq!(late.operations["connect"].count, 20, "{text}");
    assert!(report.passed, "{text}");
    server.shutdown().await;
}
