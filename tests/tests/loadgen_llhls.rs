//! The `llhls-play` driver end to end: a publisher and three LL-HLS viewers in one scenario
//! against an in-process origin, and the report's LL-HLS request counters next to the QoE ones.

use livepulse_tests::start_origin;
use loadgen::{run, RunOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llhls_viewers_report_playlist_and_part_requests() {
    let origin = start_origin(|_| {}).await;
    let rtmp = origin.rtmp_addr();
    let http = origin.http_addr();
    let scenario = Scenario::from_toml(&format!(
        r#"
name = "llhls"
duration = "10s"
grace = "2s"

[[workload]]
name = "publish"
driver = {{ kind = "rtmp-publish", url = "rtmp://{rtmp}/live/ll" }}
model = {{ kind = "closed", users = 1 }}

[[workload]]
name = "viewers"
start = "3s"
driver = {{ kind = "llhls-play", url = "http://{http}/live/ll/ll.m3u8" }}
model = {{ kind = "closed", users = 3 }}
thresholds = ["startup.p99 < 2s", "stall_ratio < 1%", "live_latency.p99 < 2s"]
"#
    ))
    .expect("valid scenario");
    let report = run(&scenario, &RunOptions::default()).await.expect("run");
    let text = loadgen::text::render(&report);
    println!("{text}");

    let viewers = report
        .workloads
        .iter()
        .find(|w| w.name == "viewers")
        .expect("viewers in the report");
    assert_eq!(viewers.driver, "hls-play", "llhls-play is its other name");
    let media = viewers.media.as_ref().expect("media metrics");
    assert_eq!(
        (media.sessions, media.startup_failures, media.stalls),
        (3, 0, 0),
        "{text}"
    );
    assert!(media.live_latency_samples > 300, "{text}");
    let ll = media.llhls.as_ref().expect("LL-HLS request counters");
    // Seven seconds of three parts a second, each part after a blocking reload.
    assert_eq!(ll.sessions, 3, "{text}");
    assert!(ll.part_requests_per_viewer > 15.0, "{text}");
    assert!(ll.blocking_playlist_requests_per_viewer > 15.0, "{text}");
    assert!(ll.playlist_requests_per_viewer > ll.blocking_playlist_requests_per_viewer);
    assert!(ll.hinted_part_requests * 2 > ll.part_requests, "{text}");
    assert!(text.contains("ll-hls: 3 sessions; per viewer"), "{text}");
    assert!(viewers.errors.is_empty(), "{text}");
    assert!(report.passed, "{text}");
    origin.shutdown().await;
}
